"""PoolkitPool under SQLAlchemy on the machine's PostgreSQL: ORM from threads, dead backends."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.adapters.conftest import eventually
from tests.optional import in_ci

try:
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import orm

    from poolkit.integrations.sqlalchemy import PoolkitPool
except ImportError as _exc:  # pragma: no cover - an extra is missing
    _why = f"needs poolkit[sqlalchemy,postgres]: {_exc}"
    if in_ci():
        pytest.fail(f"{_why}; CI (CI=true) installs both", pytrace=False)
    pytest.skip(_why, allow_module_level=True)


@pytest.fixture
def items(pg_dsn: str) -> Iterator[sa.Table]:
    """A fresh table ``(id int PRIMARY KEY, name text)``, dropped afterwards."""
    table = sa.Table(
        f"poolkit_sa_{uuid.uuid4().hex[:12]}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table.name} (id int PRIMARY KEY, name text NOT NULL)")
    yield table
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE relation = %s::regclass AND pid <> pg_backend_pid()",
            (table.name,),
        )
        conn.execute(f"DROP TABLE IF EXISTS {table.name}")


@pytest.fixture
def app_name() -> str:
    """The application_name of this test's connections: others' are never touched."""
    return f"poolkit-sa-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_engine(pg_dsn: str, app_name: str) -> Iterator[Callable[..., sa.Engine]]:
    engines: list[sa.Engine] = []

    def make(**kw: Any) -> sa.Engine:
        engine = sa.create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(pg_dsn, application_name=app_name),
            poolclass=PoolkitPool,
            **kw,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def pool_of(engine: sa.Engine) -> PoolkitPool:
    pool = engine.pool
    assert isinstance(pool, PoolkitPool)
    return pool


def backend_pid(conn: sa.Connection) -> int:
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert isinstance(pid, int)
    return pid


def terminate(dsn: str, pid: int) -> None:
    """End backend ``pid`` from a connection of its own; return once it is gone."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def gone() -> bool:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            found = row.fetchone()
            return found is not None and found[0] == 0

        eventually(gone, f"backend {pid} ended")


def test_core_and_orm_session_on_postgresql(
    make_engine: Callable[..., sa.Engine], items: sa.Table
) -> None:
    engine = make_engine(pool_size=2, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(sa.insert(items), [{"id": 1, "name": "core"}])
    with orm.Session(engine) as session:
        session.execute(sa.insert(items).values(id=2, name="orm"))
        session.commit()
    with orm.Session(engine) as session:
        session.execute(sa.insert(items).values(id=3, name="never committed"))
    with engine.connect() as conn:
        assert list(conn.execute(sa.select(items.c.name).order_by(items.c.id)).scalars()) == [
            "core",
            "orm",
        ]


def test_pre_ping_hands_out_a_working_connection_after_its_backend_was_terminated(
    make_engine: Callable[..., sa.Engine], pg_dsn: str
) -> None:
    engine = make_engine(pool_size=2, max_overflow=0, pool_pre_ping=True)
    with engine.connect() as conn:
        pid = backend_pid(conn)
    terminate(pg_dsn, pid)
    with engine.connect() as conn:  # no error: the ping found it dead, a new one came
        assert backend_pid(conn) != pid
    stats = pool_of(engine).stats()
    assert stats.closed_by_reason["ping_failed"] == 1
    assert stats.created == 2


def test_without_pre_ping_a_disconnect_invalidates_and_poolkit_drops_the_others(
    make_engine: Callable[..., sa.Engine], pg_dsn: str
) -> None:
    engine = make_engine(pool_size=2, max_overflow=0)
    first, second = engine.connect(), engine.connect()
    pid, other_pid = backend_pid(first), backend_pid(second)
    second.close()  # idle in the pool
    terminate(pg_dsn, pid)
    with pytest.raises(sa_exc.OperationalError) as caught:
        first.exec_driver_sql("SELECT 1")
    assert caught.value.connection_invalidated
    first.close()
    stats = pool_of(engine).stats()
    # The dead one discarded, the idle one (opened before the disconnect) drained.
    assert (stats.closed_by_reason["discarded"], stats.closed_by_reason["drained"]) == (1, 1)
    with engine.connect() as conn:
        assert backend_pid(conn) not in (pid, other_pid)


def test_eight_threads_orm_with_a_backend_terminated_mid_run_lose_nothing(
    make_engine: Callable[..., sa.Engine], items: sa.Table, pg_dsn: str, app_name: str
) -> None:
    """Every row is written exactly once; the writes that hit the dead backend are retried.

    No overflow, so the terminated connection stays in the pool until it is met.
    """
    engine = make_engine(pool_size=6, max_overflow=0, pool_pre_ping=True, pool_timeout=30)
    threads, per_thread = 8, 30
    half_done = threading.Event()
    done = threading.Lock()
    written = 0
    retried: list[BaseException] = []
    errors: list[BaseException] = []
    stmt = sa.text(
        f"INSERT INTO {items.name} (id, name) VALUES (:id, :name) ON CONFLICT DO NOTHING"
    )

    def write(key: int) -> None:
        nonlocal written
        for _attempt in range(3):
            try:
                with orm.Session(engine) as session:
                    session.execute(stmt, {"id": key, "name": str(key)})
                    session.commit()
                break
            except sa_exc.DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                retried.append(exc)  # the terminated backend: the pool gives a new one
        else:
            raise AssertionError(f"row {key} failed three times")
        with done:
            written += 1
            if written == threads * per_thread // 2:
                half_done.set()

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                write(t * 1000 + i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    assert half_done.wait(30)
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        pids = [
            r[0]
            for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " ORDER BY backend_start LIMIT 1",
                (app_name,),
            )
        ]
    assert pids, "no backend of the pool to terminate"
    terminate(pg_dsn, pids[0])
    for w in workers:
        w.join()
    assert errors == []
    # Check every pooled connection out at once: each is pinged, so a dead
    # one still idle is met now if no writer met it.
    held = [engine.connect() for _ in range(6)]
    for conn in held:
        conn.close()
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(items.c.id).order_by(items.c.id)).scalars())
    assert ids == sorted(t * 1000 + i for t in range(threads) for i in range(per_thread))
    stats = pool_of(engine).stats()
    assert stats.in_use == 0
    assert stats.total <= 6
    # The terminated backend was met once, by a ping or by a statement; a
    # failed ping drains the others, so no second one fails.
    assert stats.closed_by_reason["ping_failed"] + len(retried) == 1
