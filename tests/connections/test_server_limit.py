"""A connection being closed counts against max_size until its close returns.

A server with a ``max_connections`` budget counts a connection until it has
processed the close. The "server" here counts open connections (created minus
closes that returned) and remembers the peak; closes are slow, so a pool that
frees a slot when it *decides* to close would open a replacement meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import threading

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    KeyedConnectionPool,
)
from tests.connections.recording import AsyncServerConnector, ServerConnector


def test_sync_pool_never_has_more_than_max_size_open_at_the_server() -> None:
    server = ServerConnector(close_delay=0.003)
    pool: ConnectionPool[int] = ConnectionPool(server, max_size=3, max_idle=1, timeout=30)
    barrier = threading.Barrier(6)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(40):
            conn = pool.acquire()
            if rng.random() < 0.3:
                conn.discard()
            else:
                conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stats = pool.stats()
    pool.close()
    assert server.peak <= 3
    assert stats.in_use == 0
    assert server.open == set()


def test_async_pool_never_has_more_than_max_size_open_at_the_server() -> None:
    async def main() -> None:
        server = AsyncServerConnector(close_delay=0.005)
        pool: AsyncConnectionPool[int] = AsyncConnectionPool(
            server, max_size=3, max_idle=1, timeout=30
        )

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(20):
                conn = await pool.acquire()
                await asyncio.sleep(0)
                if rng.random() < 0.3:
                    await conn.discard()
                else:
                    await conn.close()

        await asyncio.gather(*(worker(i) for i in range(12)))
        assert pool.stats().in_use == 0
        await pool.close()
        assert server.peak <= 3
        assert server.open == set()
        assert pool.stats().closing == 0

    asyncio.run(main())


def test_a_retired_connection_holds_its_slot_until_its_close_returns() -> None:
    """The waiter is served only once the server has seen the close."""

    async def main() -> None:
        server = AsyncServerConnector(close_delay=0.05)
        pool: AsyncConnectionPool[int] = AsyncConnectionPool(server, max_size=1, timeout=30)
        conn = await pool.acquire()
        await conn.discard()
        assert (pool.stats().closing, pool.stats().total) == (1, 1)
        async with pool.connection() as fresh:
            assert server.open == {fresh.raw}
        await pool.close()

    asyncio.run(main())


def test_keyed_pools_never_exceed_the_global_cap_at_the_server() -> None:
    server = ServerConnector(close_delay=0.003)
    kpool: KeyedConnectionPool[str, int] = KeyedConnectionPool(
        lambda key: server, max_size_per_key=3, max_size=3, timeout=30
    )

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(30):
            with kpool.connection(rng.choice("abc")):
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert kpool.stats().in_use == 0
    kpool.close()
    assert server.peak <= 3
    assert server.open == set()


def test_async_keyed_pools_never_exceed_the_global_cap_at_the_server() -> None:
    async def main() -> None:
        server = AsyncServerConnector(close_delay=0.005)
        kpool: AsyncKeyedConnectionPool[str, int] = AsyncKeyedConnectionPool(
            lambda key: server, max_size_per_key=3, max_size=3, timeout=30
        )

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(15):
                async with kpool.connection(rng.choice("abc")):
                    await asyncio.sleep(0)

        await asyncio.gather(*(worker(i) for i in range(10)))
        assert kpool.stats().in_use == 0
        await kpool.close()
        assert server.peak <= 3
        assert server.open == set()

    asyncio.run(main())
