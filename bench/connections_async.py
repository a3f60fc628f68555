"""Async part of ``poolkit bench connections``: uncontended acquire+release.

poolkit's AsyncConnectionPool over fake connections beside an asyncio.Queue
floor, psycopg_pool's AsyncConnectionPool and asyncpg's pool (reset stubbed, so
no query runs on release); the last two need the local PostgreSQL and are
skipped when it does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from poolkit import AsyncConnectionPool
from poolkit._bench import BenchContext, peer_installed
from poolkit.testing import AsyncFakeConnector

FAMILY = "connections"
# The local PostgreSQL psycopg_pool and asyncpg need (their pools take only real connections).
PG_DSN = os.environ.get("POOLKIT_BENCH_PG", "host=127.0.0.1 port=5432 dbname=test")
PG_URL = os.environ.get("POOLKIT_BENCH_PG_URL", "postgresql://127.0.0.1:5432/test")
SIZE = 4
BENCH = "connections: async acquire+release, uncontended"

Pair = tuple[Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[Any]]]


def _time(ctx: BenchContext, loop: asyncio.AbstractEventLoop, pair: Pair) -> float:
    acquire, release = pair

    async def cycles(n: int) -> None:
        for _ in range(n):
            await release(await acquire())

    return ctx.time_ns_per_op(
        lambda n: loop.run_until_complete(cycles(n)), 5_000 if ctx.quick else 50_000
    )


async def _asyncpg_pool() -> Any:
    import asyncpg

    async def no_reset(conn: Any) -> None:
        return None

    return await asyncpg.create_pool(PG_URL, min_size=SIZE, max_size=SIZE, reset=no_reset)


async def _psycopg_pool() -> Any:
    from psycopg_pool import AsyncConnectionPool as PsycopgAsyncPool

    pool = PsycopgAsyncPool(PG_DSN, min_size=SIZE, max_size=SIZE, open=False)
    await pool.open(wait=True, timeout=30)
    return pool


def run(ctx: BenchContext) -> None:
    """Time each async pool on one event loop."""
    loop = asyncio.new_event_loop()
    try:
        # With and without the stats' timings, in turn (see bench_connections).
        pools = [
            AsyncConnectionPool(
                AsyncFakeConnector(check=False, ping=False, reset=False),
                max_size=SIZE,
                timings=timings,
            )
            for timings in (True, False)
        ]
        best = [float("inf")] * 2
        for _ in range(3):
            for i, pool in enumerate(pools):
                best[i] = min(best[i], _time(ctx, loop, (pool.acquire, pool.release)))
        for pool in pools:
            loop.run_until_complete(pool.close())
        ctx.record(BENCH, "poolkit", "ns_per_op", best[0])
        ctx.record(BENCH, "poolkit (timings=False)", "ns_per_op", best[1])

        q: asyncio.LifoQueue[object] = asyncio.LifoQueue()
        for _ in range(SIZE):
            q.put_nowait(object())

        async def put(item: object) -> None:
            q.put_nowait(item)

        ctx.record(BENCH, "asyncio.LifoQueue", "ns_per_op", _time(ctx, loop, (q.get, put)))

        pg = None
        if peer_installed("psycopg_pool async", "psycopg_pool"):
            with contextlib.suppress(Exception):  # no server: no figure
                pg = loop.run_until_complete(_psycopg_pool())
        if pg is not None:
            pair = (pg.getconn, pg.putconn)
            ctx.record(
                BENCH, "psycopg_pool async (real PostgreSQL)", "ns_per_op", _time(ctx, loop, pair)
            )
            loop.run_until_complete(pg.close())
        apg = None
        if peer_installed("asyncpg Pool", "asyncpg"):
            with contextlib.suppress(Exception):  # no server: no figure
                apg = loop.run_until_complete(_asyncpg_pool())
        if apg is not None:
            ctx.record(
                BENCH, "asyncpg Pool (real PostgreSQL, reset stubbed)", "ns_per_op",
                _time(ctx, loop, (apg.acquire, apg.release)),
            )  # fmt: skip
            loop.run_until_complete(apg.close())
    finally:
        loop.close()
