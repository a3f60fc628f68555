"""AsyncConnectionPool: same semantics as the sync pool, cancellation at every await."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, EventLoopMismatch, PoolClosed, PoolTimeout, ReleaseError
from poolkit.connections import AsyncPooledConnection
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection


def make(**kw: Any) -> tuple[AsyncConnectionPool[FakeConnection], AsyncFakeConnector]:
    fake = AsyncFakeConnector()
    kw.setdefault("timeout", 5.0)
    return AsyncConnectionPool(fake, **kw), fake


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(fn())  # type: ignore[arg-type]


def test_connection_context_reuses_and_close_closes_everything() -> None:
    async def main() -> None:
        pool, fake = make(max_size=2)
        async with pool.connection() as c:
            assert c.use() == 1
        async with pool.connection() as c:
            assert c.raw.id == 1
        await pool.close()
        assert fake.open_connections == []

    run(main)


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


def test_proxy_detached_double_release_and_foreign_release() -> None:
    async def main() -> None:
        pool, _ = make()
        other, _ = make()
        conn = await pool.acquire()
        await conn.close()
        with pytest.raises(ReleaseError, match="already released"):
            await pool.release(conn)
        conn2 = await other.acquire()
        with pytest.raises(ReleaseError, match="another pool"):
            await pool.release(conn2)
        await other.release(conn2)
        await pool.close()
        await other.close()

    run(main)


def test_timeout_and_waiters_served_in_order() -> None:
    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()
        with pytest.raises(PoolTimeout, match="1 in use"):
            await pool.acquire(timeout=0)
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.01)
        served: list[int] = []

        async def waiter(i: int) -> None:
            async with pool.connection(timeout=30):
                served.append(i)

        tasks = []
        for i in range(3):
            tasks.append(asyncio.create_task(waiter(i)))
            await asyncio.sleep(0)
        await held.close()
        await asyncio.gather(*tasks)
        assert served == [0, 1, 2]
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


def test_close_fails_waiters_and_is_idempotent() -> None:
    async def main() -> None:
        pool, fake = make(max_size=1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire(timeout=30))
        await asyncio.sleep(0)
        closing = asyncio.create_task(pool.close(timeout=30))
        with pytest.raises(PoolClosed):
            await waiter
        await held.close()
        await closing
        await pool.close()
        assert fake.open_connections == []
        with pytest.raises(PoolClosed):
            await pool.acquire()

    run(main)


def test_lifetimes_health_drain_resize_stats_match_the_sync_pool() -> None:
    async def main() -> None:
        clock = FakeClock()
        pool, fake = make(
            max_size=2, max_idle_time=60, max_lifetime=1000, lifetime_jitter=0, clock=clock
        )
        a, b = await pool.acquire(), await pool.acquire()
        await a.close()
        await b.close()
        clock.advance(61)
        pool.maintain()
        assert pool.stats().closed_by_reason["idle_time"] == 2
        async with pool.connection() as c:
            fake.break_connection(c.raw)
        async with pool.connection() as c:
            assert c.raw.id == 4
        assert pool.stats().closed_by_reason["check_failed"] == 1
        pool.drain()
        pool.resize(max_size=3)
        stats = pool.pop_stats()
        assert (stats.max_size, stats.closed_by_reason["drained"]) == (3, 1)
        assert "AsyncConnectionPool" in repr(pool)
        await pool.close()

    run(main)


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="max_size must be >= 1"):
        AsyncConnectionPool(AsyncFakeConnector(), max_size=0)
    with pytest.raises(TypeError, match="callable create"):
        AsyncConnectionPool(object())  # type: ignore[arg-type]

    async def main() -> None:
        pool, _ = make()
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await pool.acquire(timeout=-1)
        await pool.close()

    run(main)


def test_hanging_create_times_out_then_stocks_the_pool() -> None:
    async def main() -> None:
        pool, fake = make(max_size=1)
        fake.hang("create")
        with pytest.raises(PoolTimeout, match="1 being created"):
            await pool.acquire(timeout=0.01)
        fake.release("create")
        async with pool.connection(timeout=5) as c:
            assert c.raw.id == 1
        await pool.close()
        assert fake.open_connections == []

    run(main)


def test_create_failures_are_retried_and_reported() -> None:
    async def main() -> None:
        pool, fake = make()
        fake.fail_next_creates(1)
        async with pool.connection(timeout=30) as c:
            assert c.raw.id == 1
        assert pool.stats().create_errors == 1
        fake.fail_next_creates(1000)
        pool.drain()
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.01)  # starts the creator
        while pool.stats().create_errors < 2:
            await asyncio.sleep(0.001)
        with pytest.raises(PoolTimeout, match=r"couldn.t connect: ConnectionRefusedError"):
            await pool.acquire(timeout=0.01)
        await pool.close()

    run(main)


def test_min_size_is_prewarmed_on_open() -> None:
    async def main() -> None:
        pool, fake = make(min_size=2, max_size=4)
        await pool.open()
        async with pool.connection(), pool.connection():
            pass
        assert len(fake.connections) == 2
        await pool.close()

    run(main)


def test_waited_counts_only_waits_at_the_limit() -> None:
    """database/sql WaitCount: opening the first connection is not a wait at the limit."""

    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()
        stats = pool.stats()
        assert (stats.waited, stats.waited_for_create) == (0, 1)
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        await held.close()
        await (await waiter).close()
        stats = pool.stats()
        assert (stats.waited, stats.waited_for_create) == (1, 1)
        await pool.close()

    run(main)
