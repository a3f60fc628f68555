"""AsyncConnectionPool on the event loop: cancellation at every await, loop binding.

The tests both twins share are in ``test_async_pool.py`` (and the
``test_pool.py`` generated from it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, EventLoopMismatch, PoolTimeout
from poolkit.connections import AsyncPooledConnection
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection


def make(**kw: Any) -> tuple[AsyncConnectionPool[FakeConnection], AsyncFakeConnector]:
    fake = AsyncFakeConnector()
    kw.setdefault("timeout", 5.0)
    return AsyncConnectionPool(fake, **kw), fake


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(fn())  # type: ignore[arg-type]


def test_uncontended_acquire_does_not_yield_to_the_loop() -> None:
    """A hit is served without an event-loop round trip."""

    async def main() -> None:
        pool, _ = make()
        async with pool.connection():
            pass
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        for _ in range(100):
            conn = await pool.acquire()
            await pool.release(conn)
        assert before == ticks
        task.cancel()
        await pool.close()

    run(main)


def test_waiter_timeout_never_swallows_a_connection() -> None:
    """A waiter woken for a connection that then gives up passes it on."""

    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()
        first = asyncio.create_task(pool.acquire(timeout=30))
        second = asyncio.create_task(pool.acquire(timeout=30))
        await asyncio.sleep(0)
        await held.close()  # wakes `first`...
        first.cancel()  # ...which is cancelled before it runs
        conn = await asyncio.wait_for(second, 5)
        assert conn.raw.id == 1
        with pytest.raises(asyncio.CancelledError):
            await first
        await conn.close()
        assert pool.stats().idle == 1
        await pool.close()

    run(main)


@pytest.mark.parametrize("point", ["create", "ping", "reset", "wait"])
def test_cancellation_at_every_await_point_leaks_nothing(point: str) -> None:
    async def main() -> None:
        clock = FakeClock()
        pool, fake = make(max_size=1, ping_after=1, clock=clock)
        if point in ("ping", "reset", "wait"):
            async with pool.connection():
                pass
            clock.advance(2)
        holder = await pool.acquire() if point == "wait" else None
        if point != "wait":
            fake.hang(point)

        async def use() -> None:
            async with pool.connection():
                pass

        task = asyncio.create_task(use())
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        fake.release(point)
        if holder is not None:
            await holder.close()
        for _ in range(5):
            await asyncio.sleep(0)
        stats = pool.stats()
        assert (stats.in_use, stats.waiting) == (0, 0)
        async with pool.connection(timeout=5) as c:
            assert not c.raw.closed
        await pool.close()
        assert fake.open_connections == []

    run(main)


def test_second_event_loop_raises_a_clear_error() -> None:
    pool, _ = make()

    async def use() -> None:
        async with pool.connection():
            pass

    async def use_then_hold() -> AsyncPooledConnection[FakeConnection]:
        await use()
        return await pool.acquire()

    held = asyncio.run(use_then_hold())
    with pytest.raises(EventLoopMismatch, match="one pool per event loop"):
        asyncio.run(use())

    async def release_elsewhere() -> None:
        await pool.release(held)

    with pytest.raises(EventLoopMismatch):
        asyncio.run(release_elsewhere())
    assert not held.released  # refused, so still attached (and still counted in use)
    assert pool.stats().in_use == 1
    held._entry = None  # its loop is gone: let it go without a LeakWarning


def test_async_check_and_reconnect_failed_may_be_coroutine_functions() -> None:
    """psycopg_pool's AsyncConnectionPool takes async check and reconnect_failed callables."""

    async def main() -> None:
        clock = FakeClock()
        gave_up = asyncio.Event()

        async def check(conn: FakeConnection) -> None:
            await asyncio.sleep(0)
            if conn.id == 1:
                raise ConnectionResetError("stale")

        async def reconnect_failed(pool: object) -> None:
            await asyncio.sleep(0)
            gave_up.set()

        fake = AsyncFakeConnector()
        pool = AsyncConnectionPool(
            fake, check=check, reconnect_failed=reconnect_failed, reconnect_timeout=5.0,
            clock=clock, timeout=5.0,
        )  # fmt: skip
        async with pool.connection() as conn:
            assert conn.raw.id == 2
        assert pool.stats().closed_by_reason["check_failed"] == 1
        # A waiter's attempt that fails past reconnect_timeout gives up and awaits the hook.
        real_create = fake.create

        async def failing_create() -> FakeConnection:
            clock.advance(10.0)
            raise ConnectionRefusedError("down")

        fake.create = failing_create  # type: ignore[method-assign]
        async with pool.connection():  # the idle one; the next caller needs a new one
            with pytest.raises(PoolTimeout):
                await pool.acquire(timeout=0.05)
        await asyncio.wait_for(gave_up.wait(), 30)
        fake.create = real_create  # type: ignore[method-assign]
        await pool.close()

    asyncio.run(main())
