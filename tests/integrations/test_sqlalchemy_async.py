"""AsyncPoolkitPool under create_async_engine on the machine's PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from tests.adapters.conftest import eventually
from tests.integrations.test_sqlalchemy_pg import terminate
from tests.optional import in_ci

try:
    import asyncpg
    import psycopg
    import sqlalchemy as sa
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

    from poolkit import PoolTimeout
    from poolkit.integrations.sqlalchemy import AsyncPoolkitPool
except ImportError as _exc:  # pragma: no cover - an extra is missing
    _why = f"needs poolkit[sqlalchemy,postgres,bench] (asyncpg): {_exc}"
    if in_ci():
        pytest.fail(f"{_why}; CI (CI=true) installs them", pytrace=False)
    pytest.skip(_why, allow_module_level=True)

EngineFactory = Callable[..., AsyncEngine]


@pytest.fixture
def app_name() -> str:
    """The application_name of this test's connections: others' are never touched."""
    return f"poolkit-sa-async-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table(pg_dsn: str) -> Iterator[sa.Table]:
    """A fresh table ``(id int PRIMARY KEY, name text)``, dropped afterwards."""
    name = f"poolkit_sa_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, name text NOT NULL)")
    yield sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def make_engine(pg_dsn: str, app_name: str) -> EngineFactory:
    """Async engines on PostgreSQL through asyncpg, with AsyncPoolkitPool."""
    params = conninfo_to_dict(pg_dsn)
    connect_args: dict[str, Any] = {
        "host": params.get("host"),
        "port": int(params.get("port") or 5432),
        "user": params.get("user"),
        "database": params.get("dbname"),
        "server_settings": {"application_name": app_name},
    }

    def make(**kw: Any) -> AsyncEngine:
        return create_async_engine(
            "postgresql+asyncpg://",
            async_creator=lambda: asyncpg.connect(**connect_args),
            poolclass=AsyncPoolkitPool,
            **kw,
        )

    return make


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def pool_of(engine: AsyncEngine) -> AsyncPoolkitPool:
    pool = engine.pool
    assert isinstance(pool, AsyncPoolkitPool)
    return pool


async def backend_pid(conn: Any) -> int:
    pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
    assert isinstance(pid, int)
    return pid


def sessions(dsn: str, app_name: str) -> int:
    """Backends of this test's connections, as the server sees them."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_async_engine_core_and_async_session_with_events(
    make_engine: EngineFactory, table: sa.Table
) -> None:
    seen: list[str] = []

    async def main() -> None:
        engine = make_engine(pool_size=2, max_overflow=0)
        for name in ("connect", "checkout", "reset", "checkin"):
            sa.event.listen(engine.sync_engine, name, lambda *a, name=name: seen.append(name))
        async with engine.begin() as conn:
            await conn.execute(sa.insert(table), [{"id": 1, "name": "core"}])
        async with AsyncSession(engine) as session:
            await session.execute(sa.insert(table).values(id=2, name="orm"))
            await session.commit()
        async with AsyncSession(engine) as session:  # never committed: rolled back
            await session.execute(sa.insert(table).values(id=3, name="dropped"))
        async with engine.connect() as conn:
            names = (await conn.execute(sa.select(table.c.name).order_by(table.c.id))).scalars()
            assert list(names) == ["core", "orm"]
        stats = pool_of(engine).stats()
        assert (stats.created, stats.in_use) == (1, 0)
        await engine.dispose()

    run(main)
    assert seen[:4] == ["connect", "checkout", "reset", "checkin"]


def test_async_eight_tasks_on_four_plus_two_lose_no_row(
    make_engine: EngineFactory, table: sa.Table
) -> None:
    async def main() -> None:
        engine = make_engine(pool_size=4, max_overflow=2, pool_timeout=30)
        peak = 0

        async def work(t: int) -> None:
            nonlocal peak
            for i in range(20):
                async with AsyncSession(engine) as session:
                    await session.execute(sa.insert(table).values(id=t * 1000 + i, name="x"))
                    peak = max(peak, pool_of(engine).checkedout())
                    await session.commit()

        await asyncio.gather(*(work(t) for t in range(8)))
        async with engine.connect() as conn:
            ids = set((await conn.execute(sa.select(table.c.id))).scalars())
        assert ids == {t * 1000 + i for t in range(8) for i in range(20)}
        stats = pool_of(engine).stats()
        assert stats.in_use == 0
        assert stats.total <= 6
        assert peak <= 6
        await engine.dispose()

    run(main)


def test_async_pool_timeout_raises_sqlalchemys_timeout_error(make_engine: EngineFactory) -> None:
    async def main() -> None:
        engine = make_engine(pool_size=1, max_overflow=0, pool_timeout=0.05)
        async with engine.connect():
            with pytest.raises(sa_exc.TimeoutError) as caught:
                await engine.connect()
        error: BaseException = caught.value
        assert isinstance(error, PoolTimeout)
        assert "AsyncPoolkitPool limit of size 1 overflow 0 reached" in str(error)
        await engine.dispose()

    run(main)


def test_async_pre_ping_replaces_a_terminated_backend_and_invalidate_discards(
    make_engine: EngineFactory, pg_dsn: str
) -> None:
    async def main() -> None:
        engine = make_engine(pool_size=2, max_overflow=0, pool_pre_ping=True)
        async with engine.connect() as conn:
            pid = await backend_pid(conn)
        terminate(pg_dsn, pid)  # returns once the server has ended it
        async with engine.connect() as conn:  # no error: the ping found it dead
            new_pid = await backend_pid(conn)
            assert new_pid != pid
            await conn.invalidate()
        stats = pool_of(engine).stats()
        assert (stats.closed_by_reason["ping_failed"], stats.closed_by_reason["discarded"]) == (
            1,
            1,
        )
        async with engine.connect() as conn:
            assert await backend_pid(conn) not in (pid, new_pid)
        await engine.dispose()

    run(main)


def test_async_dispose_closes_the_idle_connections_before_it_returns(
    make_engine: EngineFactory, pg_dsn: str, app_name: str
) -> None:
    async def main() -> None:
        engine = make_engine(pool_size=3, max_overflow=0)
        conns = [await engine.connect() for _ in range(3)]
        for conn in conns:
            await conn.exec_driver_sql("SELECT 1")
            await conn.close()
        assert pool_of(engine).stats().idle == 3
        old = pool_of(engine)
        await engine.dispose()
        assert (old.stats().total, old.stats().closed_by_reason["drained"]) == (0, 3)

    run(main)
    eventually(lambda: sessions(pg_dsn, app_name) == 0, "the server saw the closes")
