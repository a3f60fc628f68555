"""Leak diagnostics: held too long, dropped without release, holders()."""

from __future__ import annotations

import asyncio

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool, LeakWarning
from poolkit.connections import AsyncPooledConnection, PooledConnection
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection, FakeConnector


def acquire_here(pool: ConnectionPool[FakeConnection]) -> PooledConnection[FakeConnection]:
    return pool.acquire()


def test_leak_warning_carries_the_holders_stack() -> None:
    clock = FakeClock()
    pool = ConnectionPool(FakeConnector(), leak_timeout=30, clock=clock)
    conn = acquire_here(pool)
    clock.advance(31)
    with pytest.warns(LeakWarning, match=r"held for 31\.0 s(.|\n)*acquire_here"):
        pool.maintain()
    pool.maintain()  # warned once per acquisition
    holders = pool.holders()
    assert len(holders) == 1
    assert holders[0].stack is not None
    assert "acquire_here" in holders[0].stack
    assert holders[0].thread == "MainThread"
    assert holders[0].where is not None
    assert holders[0].where.endswith("in acquire_here")
    pool.release(conn)
    assert pool.holders() == []
    pool.close()


def test_leak_warning_is_a_resource_warning() -> None:
    assert issubclass(LeakWarning, ResourceWarning)


def test_dropped_proxy_is_warned_about_and_closed() -> None:
    fake = FakeConnector()
    pool = ConnectionPool(fake, leak_timeout=100)
    box = [pool.acquire()]
    raw = box[0].raw
    with pytest.warns(LeakWarning, match="garbage-collected without being released"):
        box.clear()  # the only reference: the proxy is finalized here
    pool.maintain()
    assert raw.closed
    assert pool.stats().closed_by_reason["dropped"] == 1
    pool.close()


def test_holders_without_leak_tracking_still_show_the_time_held() -> None:
    clock = FakeClock()
    pool = ConnectionPool(FakeConnector(), clock=clock)
    conn = pool.acquire()
    clock.advance(5)
    [holder] = pool.holders()
    assert (holder.held_for, holder.stack) == (5.0, None)
    conn.close()
    pool.close()


def test_async_leak_warning_names_the_task() -> None:
    async def main() -> None:
        clock = FakeClock()
        pool = AsyncConnectionPool(AsyncFakeConnector(), leak_timeout=10, clock=clock)

        async def hold() -> AsyncPooledConnection[FakeConnection]:
            return await pool.acquire()

        conn = await asyncio.create_task(hold(), name="the-holder")
        clock.advance(11)
        with pytest.warns(LeakWarning, match="task the-holder"):
            pool.maintain()
        [holder] = pool.holders()
        assert holder.where is not None
        assert holder.where.endswith("in hold")
        await conn.close()
        await pool.close()

    asyncio.run(main())
