"""A waiter that starves is handed the next connection that comes back.

Callers that release and re-acquire in a loop run while a woken waiter is
still being scheduled, so without a hand-off they take every connection ahead
of it and it times out while connections cycle. Once the first waiter has
waited ``HANDOFF_AFTER`` on the pool's clock, a returned connection goes to it
directly; before that, whoever runs first may take it (no lock convoy on a
short queue). The clock is a FakeClock: which side of the threshold a release
falls on is the test's choice, not the scheduler's.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool, PoolTimeout
from poolkit.connections._core import HANDOFF_AFTER
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection, FakeConnector


def wait_until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


def start_waiter(
    pool: ConnectionPool[FakeConnection],
) -> tuple[threading.Thread, list[FakeConnection]]:
    got: list[FakeConnection] = []

    def wait() -> None:
        conn = pool.acquire(timeout=30)
        got.append(conn.raw)
        conn.close()

    t = threading.Thread(target=wait)
    t.start()
    wait_until(lambda: pool.stats().waiting == 1)
    return t, got


def test_a_starved_waiter_is_handed_the_returned_connection_ahead_of_a_newcomer() -> None:
    clock = FakeClock()
    pool: ConnectionPool[FakeConnection] = ConnectionPool(FakeConnector(), max_size=1, clock=clock)
    held = pool.acquire()
    raw = held.raw
    t, got = start_waiter(pool)
    clock.advance(2 * HANDOFF_AFTER)
    held.close()
    # The connection went to the waiter, not back to idle: a newcomer finds none.
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0)
    t.join(30)
    assert got == [raw]
    stats = pool.stats()
    assert (stats.acquired, stats.timeouts, stats.in_use, stats.idle) == (2, 1, 0, 1)
    pool.close()


def test_before_the_threshold_a_returned_connection_goes_to_whoever_runs_first() -> None:
    clock = FakeClock()
    pool: ConnectionPool[FakeConnection] = ConnectionPool(FakeConnector(), max_size=1, clock=clock)
    held = pool.acquire()
    t, got = start_waiter(pool)
    held.close()  # the waiter waited 0 s on the pool's clock: no hand-off
    barger = pool.acquire(timeout=0)
    barger.close()  # and the woken waiter is served next
    t.join(30)
    assert len(got) == 1
    pool.close()


def test_a_cancelled_waiter_gives_back_the_connection_it_was_handed() -> None:
    async def main() -> None:
        clock = FakeClock()
        connector = AsyncFakeConnector()
        pool = AsyncConnectionPool(connector, max_size=1, clock=clock)
        held = await pool.acquire()
        raw = held.raw
        first = asyncio.create_task(pool.acquire(timeout=30))
        await asyncio.sleep(0)
        second = asyncio.create_task(pool.acquire(timeout=30))
        await asyncio.sleep(0)
        assert pool.stats().waiting == 2
        clock.advance(2 * HANDOFF_AFTER)
        await held.close()  # handed to the first waiter, which has not run yet...
        first.cancel()  # ...and is cancelled before it does
        with pytest.raises(asyncio.CancelledError):
            await first
        conn = await asyncio.wait_for(second, 10)  # the connection went on to the next waiter
        assert conn.raw is raw
        await conn.close()
        stats = pool.stats()
        assert (stats.acquired, stats.in_use, stats.idle, stats.total) == (2, 0, 1, 1)
        # Two holds: the first caller's and the second waiter's, not the abandoned hand-off.
        assert stats.hold_time is not None
        assert stats.hold_time.count == 2
        await pool.close()
        assert connector.open_connections == []

    asyncio.run(main())


def test_a_handed_connection_of_a_waiter_that_gives_up_after_a_drain_is_closed() -> None:
    async def main() -> None:
        clock = FakeClock()
        connector = AsyncFakeConnector()
        pool = AsyncConnectionPool(connector, max_size=1, clock=clock)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire(timeout=30))
        await asyncio.sleep(0)
        clock.advance(2 * HANDOFF_AFTER)
        await held.close()  # handed over
        pool.drain()  # the handed connection belongs to the old generation
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        stats = pool.stats()
        assert (stats.in_use, stats.idle, stats.closed_by_reason["drained"]) == (0, 0, 1)
        await pool.close()
        assert connector.open_connections == []

    asyncio.run(main())
