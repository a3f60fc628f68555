"""The objects on the hot paths keep their attributes fast to reach.

CPython (3.11 to 3.13) shares one key table among a class's instances only
while they have fewer than 30 attributes. From the 30th on, an instance keeps
a dict of its own: attribute reads go through a hint, and every method call
on it is looked up the slow way (measured: an AsyncWorkerPool go() with eager
start, 700 -> 750 ns, for one attribute more). Each object every task,
acquisition or buffer passes through stays below that, or has slots.
"""

from __future__ import annotations

import asyncio
from typing import Any

from poolkit import (
    AsyncConnectionPool,
    AsyncWorkerPool,
    BufferPool,
    ConnectionPool,
    ProcessPool,
    WorkerPool,
)
from poolkit.buffers import ByteBufferPool
from poolkit.connections._core import PoolCore
from poolkit.testing import AsyncFakeConnector, FakeConnector

# Instances with fewer attributes than this share their class's key table.
SHARED_KEYS_LIMIT = 30


def attributes(obj: Any) -> int:
    return len(vars(obj))


async def anoop() -> None:
    pass


def test_the_connection_pools_stay_below_the_limit_and_the_core_has_slots() -> None:
    pool: ConnectionPool[Any] = ConnectionPool(FakeConnector(), max_size=2, leak_timeout=60)
    pool.release(pool.acquire())
    assert attributes(pool) < SHARED_KEYS_LIMIT
    assert not hasattr(pool._core, "__dict__")
    assert isinstance(pool._core, PoolCore)
    pool.close()

    async def main() -> None:
        apool: AsyncConnectionPool[Any] = AsyncConnectionPool(AsyncFakeConnector(), max_size=2)
        await apool.release(await apool.acquire())
        assert attributes(apool) < SHARED_KEYS_LIMIT
        await apool.close()

    asyncio.run(main())


def test_the_worker_crews_stay_below_the_limit() -> None:
    pool = WorkerPool(2)
    pool.go(print, end="")
    pool.wait()
    assert attributes(pool._crew) < SHARED_KEYS_LIMIT
    pool.stop()

    async def main() -> None:
        for options in ({}, {"eager": True}, {"queue_size": 4}, {"timings": False}):
            apool = AsyncWorkerPool(2, **options)
            await apool.go(anoop)
            await apool.wait()
            assert attributes(apool._crew) < SHARED_KEYS_LIMIT, options
            await apool.stop()

    asyncio.run(main())


def test_the_buffer_pools_stay_below_the_limit_or_have_slots() -> None:
    pool = BufferPool()
    with pool.borrow(4096) as view:
        view[0] = 1
    assert not hasattr(pool, "__dict__")
    buffers = ByteBufferPool()
    buf = buffers.get()
    buf.write(b"x")
    buffers.put(buf)
    assert attributes(buffers) < SHARED_KEYS_LIMIT


def test_the_process_pool_state_stays_below_the_limit() -> None:
    with ProcessPool(1) as pool:
        assert pool.submit(abs, -1).result() == 1
        assert attributes(pool._state) < SHARED_KEYS_LIMIT
