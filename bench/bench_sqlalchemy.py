"""``poolkit bench sqlalchemy``: one ORM workload on SQLAlchemy's QueuePool and on PoolkitPool.

Each operation is an ORM ``Session`` that inserts a row, commits, and reads the
row back (two checkouts from the pool: one per transaction), from 1 thread and
from 8 threads on ``pool_size=4, max_overflow=2``; a second row times the pool
alone (``engine.pool.connect()`` and ``close()``: SQLAlchemy's checkout and
checkin with the reset on return, no statement). The engines differ only in
``poolclass``. Two databases: a SQLite file (``synchronous=OFF``, so the
figures are not the disk's) and the machine's PostgreSQL (``POOLKIT_BENCH_PG``,
``synchronous_commit=off``), skipped with a note when it does not answer;
there, through asyncpg, ``AsyncPoolkitPool`` against ``AsyncAdaptedQueuePool``
from 8 tasks.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poolkit._bench import BenchContext, peer_installed, repeat, time_threads

FAMILY = "sqlalchemy"
PG_DSN = os.environ.get("POOLKIT_BENCH_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
POOL_SIZE = 4
MAX_OVERFLOW = 2
THREADS = 8
SUBJECTS = ("poolkit", "SQLAlchemy QueuePool")
ASYNC_SUBJECTS = ("poolkit", "SQLAlchemy AsyncAdaptedQueuePool")


def _note(text: str) -> None:
    print(f"bench sqlalchemy: {text}", file=sys.stderr)


def _orm_op(engine: Any, model: Any) -> Callable[[], object]:
    """Insert a row in a Session, commit, read it back: the workload."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    def op() -> object:
        with Session(engine) as session:
            row = model(name="bench")
            session.add(row)
            session.commit()
            return session.scalar(select(model.name).where(model.id == row.id))

    return op


def _checkout_op(engine: Any) -> Callable[[], object]:
    """The pool alone: checkout, then checkin (reset on return included)."""
    pool = engine.pool

    def op() -> object:
        conn = pool.connect()
        conn.close()
        return conn

    return op


def _rates(
    ctx: BenchContext, bench: str, threads: int, ops: dict[str, Callable[[], object]], n: int
) -> None:
    """Best-of-repeat operations per second of each subject, run in turns."""
    best: dict[str, float] = {}
    for op in ops.values():
        for _ in range(2 * threads):
            op()  # warm: connections opened, statements compiled
    for _ in range(ctx.repeat):
        for subject, op in ops.items():
            per_thread = max(1, n // threads)
            rate = per_thread * threads / time_threads(threads, repeat(per_thread, op))
            best[subject] = max(best.get(subject, 0.0), rate)
    for subject in SUBJECTS:
        ctx.record(bench, subject, "ops_per_s", best[subject])


def _compare(ctx: BenchContext, label: str, make_engine: Callable[[str], Any]) -> None:
    """Both pools on ``label``'s database, 1 and 8 threads, subjects in turns."""
    from sqlalchemy import Column, Integer, String, Table
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    class Row(Base):
        # A table of its own per run (the PostgreSQL database is shared).
        __table__ = Table(
            f"poolkit_bench_{uuid.uuid4().hex[:10]}",
            Base.metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String(16)),
        )

    engines = {subject: make_engine(subject) for subject in SUBJECTS}
    Base.metadata.create_all(engines["poolkit"])
    n = 400 if ctx.quick else 3000
    try:
        orm_ops = {subject: _orm_op(engine, Row) for subject, engine in engines.items()}
        pool_ops = {subject: _checkout_op(engine) for subject, engine in engines.items()}
        for threads in (1, THREADS):
            plural = f"{threads} thread{'s' if threads > 1 else ''}"
            _rates(ctx, f"ORM insert+select, {label}, {plural}", threads, orm_ops, n)
            _rates(ctx, f"pool checkout+checkin, {label}, {plural}", threads, pool_ops, 20 * n)
    finally:
        Base.metadata.drop_all(engines["poolkit"])
        for engine in engines.values():
            engine.dispose()


def _pool_args(subject: str) -> dict[str, Any]:
    from sqlalchemy.pool import QueuePool

    from poolkit.integrations.sqlalchemy import PoolkitPool

    poolclass = PoolkitPool if subject == "poolkit" else QueuePool
    return {"poolclass": poolclass, "pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW}


def _sqlite(ctx: BenchContext) -> None:
    import sqlalchemy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"

        def make(subject: str) -> Any:
            engine = sqlalchemy.create_engine(f"sqlite:///{path}", **_pool_args(subject))

            @sqlalchemy.event.listens_for(engine, "connect")
            def fast(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                dbapi_connection.execute("PRAGMA synchronous=OFF")

            return engine

        _compare(ctx, "SQLite file", make)


def _postgres(ctx: BenchContext) -> None:
    if not peer_installed("psycopg", "psycopg"):
        _note("PostgreSQL part skipped: psycopg not installed")
        return
    import psycopg
    import sqlalchemy

    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except Exception as exc:
        _note(f"PostgreSQL part skipped ({exc!r})")
        return

    def connect() -> Any:
        conn = psycopg.connect(PG_DSN)
        conn.execute("SET synchronous_commit = off")
        conn.commit()
        return conn

    def make(subject: str) -> Any:
        return sqlalchemy.create_engine(
            "postgresql+psycopg://", creator=connect, **_pool_args(subject)
        )

    _compare(ctx, "PostgreSQL", make)


async def _async_main(ctx: BenchContext) -> None:
    import asyncpg
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    from poolkit.integrations.sqlalchemy import AsyncPoolkitPool

    table = Table(
        f"poolkit_bench_{uuid.uuid4().hex[:10]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(16)),
    )
    params = conninfo_to_dict(PG_DSN)
    connect_args = {
        "host": params.get("host"),
        "port": int(params.get("port") or 5432),
        "user": params.get("user"),
        "database": params.get("dbname"),
        "server_settings": {"synchronous_commit": "off"},
    }
    engines = {
        subject: create_async_engine(
            "postgresql+asyncpg://",
            async_creator=lambda: asyncpg.connect(**connect_args),
            poolclass=AsyncPoolkitPool if subject == "poolkit" else AsyncAdaptedQueuePool,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )
        for subject in ASYNC_SUBJECTS
    }
    n = 400 if ctx.quick else 3000
    per_task = max(1, n // THREADS)

    async def op(engine: Any) -> None:
        async with AsyncSession(engine) as session:
            key = (
                await session.execute(insert(table).values(name="bench").returning(table.c.id))
            ).scalar_one()
            await session.commit()
            await session.scalar(select(table.c.name).where(table.c.id == key))

    async def worker(engine: Any) -> None:
        for _ in range(per_task):
            await op(engine)

    async with engines["poolkit"].begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    try:
        best: dict[str, float] = {}
        for engine in engines.values():
            await asyncio.gather(*(op(engine) for _ in range(THREADS)))  # warm
        for _ in range(ctx.repeat):
            for subject, engine in engines.items():
                start = time.perf_counter()
                await asyncio.gather(*(worker(engine) for _ in range(THREADS)))
                rate = per_task * THREADS / (time.perf_counter() - start)
                best[subject] = max(best.get(subject, 0.0), rate)
        bench = f"ORM insert+select, PostgreSQL asyncpg, {THREADS} tasks"
        for subject in ASYNC_SUBJECTS:
            ctx.record(bench, subject, "ops_per_s", best[subject])
    finally:
        async with engines["poolkit"].begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
        for engine in engines.values():
            await engine.dispose()


def _postgres_async(ctx: BenchContext) -> None:
    for subject, module in (
        ("asyncpg", "asyncpg"),
        ("greenlet", "greenlet"),
        ("psycopg", "psycopg"),
    ):
        if not peer_installed(subject, module):
            _note(f"async PostgreSQL part skipped: {module} not installed")
            return
    try:
        asyncio.run(_async_main(ctx))
    except OSError as exc:
        _note(f"async PostgreSQL part skipped ({exc!r})")


def run(ctx: BenchContext) -> None:
    """Both databases, in one process, so the ratios compare like with like."""
    if not peer_installed("SQLAlchemy QueuePool", "sqlalchemy"):
        return
    _sqlite(ctx)
    _postgres(ctx)
    _postgres_async(ctx)
