"""The psycopg checkout check across a PostgreSQL restart, on a private cluster.

The pool sits idle while the server restarts (fast mode: every backend gets
FATAL 57P01, then the server comes back). The tests wait only for each FATAL to
reach its socket (a poll that reads nothing), then assert that the pool's own
first checkout discarded every dead connection and that the first query on the
connection it handed out succeeds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters import psycopg as pg
from tests.adapters._pgcluster import PgCluster
from tests.adapters.conftest import wait_readable


def test_idle_connections_are_discarded_by_the_first_checkout_after_a_restart(
    pg_cluster: PgCluster,
) -> None:
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        pg.connector(pg_cluster.dsn), max_size=3, timeout=10.0
    )
    held = [pool.acquire() for _ in range(3)]
    sockets = [c.pgconn.socket for c in held]
    for c in held:
        c.close()
    pg_cluster.restart()
    wait_readable(sockets)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    stats = pool.stats()
    assert stats.closed_by_reason["check_failed"] == 3
    assert stats.created == 4
    pool.close()


def test_async_idle_connections_are_discarded_by_the_first_checkout_after_a_restart(
    pg_cluster: PgCluster,
) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(pg.async_connector(pg_cluster.dsn), max_size=3, timeout=10.0)
        async with pool:
            held = [await pool.acquire() for _ in range(3)]
            sockets = [c.pgconn.socket for c in held]
            for c in held:
                await c.close()
            await asyncio.to_thread(pg_cluster.restart)
            wait_readable(sockets)
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1")
                assert await cur.fetchone() == (1,)
            stats = pool.stats()
            assert stats.closed_by_reason["check_failed"] == 3
            assert stats.created == 4

    asyncio.run(main())
