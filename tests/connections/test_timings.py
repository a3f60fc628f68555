"""Connection pools' timings: acquire wait, hold and creation histograms, on_timeout."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool, KeyedConnectionPool, PoolTimeout
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnector


def _pool(**options: Any) -> ConnectionPool[Any]:
    return ConnectionPool(FakeConnector(check=False, ping=False, reset=False), **options)


def test_hold_time_is_checkout_to_give_back_on_the_pool_clock() -> None:
    clock = FakeClock()
    with _pool(max_size=2, clock=clock) as pool:
        with pool.connection():
            clock.advance(2.0)
        with pool.connection():
            clock.advance(0.003)
        hold = pool.stats().hold_time
    assert hold is not None
    assert (hold.count, hold.max) == (2, 2.0)
    assert hold.sum == pytest.approx(2.003)
    assert 1.0 < hold.percentile(99) <= 2.0


def test_acquisitions_that_found_an_idle_connection_count_as_zero_waits() -> None:
    with _pool(max_size=1) as pool:
        for _ in range(3):
            with pool.connection():
                pass
        stats = pool.stats()
    assert stats.acquire_wait is not None
    assert stats.create_time is not None
    # The first one waited for the connection being opened for it.
    assert stats.acquire_wait.count == stats.acquired == 3
    assert stats.acquire_wait.counts[0] >= 2
    assert stats.create_time.count == stats.created == 1


def test_a_queued_acquisition_records_its_wait() -> None:
    with _pool(max_size=1) as pool:
        held = pool.acquire()
        got = threading.Event()

        def wait_for_it() -> None:
            with pool.connection(timeout=30):
                got.set()

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        while pool.stats().waiting == 0:
            threading.Event().wait(0.001)
        pool.release(held)
        waiter.join()
        stats = pool.stats()
    assert got.is_set()
    assert stats.acquire_wait is not None
    assert stats.acquire_wait.count == stats.acquired == 2
    assert stats.acquire_wait.max > 0
    assert stats.waited == 1


def test_on_timeout_gets_the_seconds_waited_and_timeouts_are_not_waits() -> None:
    seen: list[float] = []
    with _pool(max_size=1, on_timeout=seen.append) as pool, pool.connection():
        with pytest.raises(PoolTimeout):
            pool.acquire(timeout=0)
        stats = pool.stats()
    assert seen == [0.0]
    assert stats.timeouts == 1
    assert stats.acquire_wait is not None
    assert stats.acquire_wait.count == 1


def test_timings_false_leaves_the_histograms_out() -> None:
    with _pool(timings=False) as pool:
        with pool.connection():
            pass
        data = pool.stats().to_dict()
    assert (data["acquire_wait"], data["hold_time"], data["create_time"]) == (None, None, None)
    assert data["acquired"] == 1


@pytest.mark.parametrize("bad", ["yes", 1])
def test_timings_must_be_a_bool(bad: object) -> None:
    with pytest.raises(TypeError, match="timings"):
        _pool(timings=bad)


def test_pop_stats_resets_the_histograms() -> None:
    with _pool() as pool:
        with pool.connection():
            pass
        first = pool.pop_stats()
        second = pool.stats()
    assert first.hold_time is not None
    assert first.hold_time.count == 1
    assert second.hold_time is not None
    assert second.hold_time.count == 0


def test_a_keyed_pool_adds_its_keys_histograms() -> None:
    clock = FakeClock()
    kpool: KeyedConnectionPool[str, Any] = KeyedConnectionPool(
        lambda key: FakeConnector(), clock=clock
    )
    with kpool as pool:
        for key in ("a", "b"):
            with pool.connection(key):
                clock.advance(1.0)
        hold = pool.stats().hold_time
    assert hold is not None
    assert (hold.count, hold.sum) == (2, 2.0)


def test_the_async_pool_records_the_same_histograms() -> None:
    clock = FakeClock()

    async def main() -> None:
        pool = AsyncConnectionPool(AsyncFakeConnector(), clock=clock)
        async with pool:
            async with pool.connection():
                clock.advance(0.5)
            stats = pool.stats()
        assert stats.hold_time is not None
        assert stats.acquire_wait is not None
        assert (stats.hold_time.count, stats.hold_time.max) == (1, 0.5)
        assert stats.acquire_wait.count == 1

    asyncio.run(main())


def test_hold_counts_include_short_holds_and_holds_across_pop_stats() -> None:
    """Short holds are counted from the checkouts: one per give-back, none twice."""
    clock = FakeClock()
    with _pool(clock=clock) as pool:
        held = pool.acquire()
        for _ in range(3):
            with pool.connection():
                pass  # 0 s: the first bucket
        with pool.connection():
            clock.advance(0.5)
        first = pool.pop_stats()
        pool.release(held)  # held across the reset: counted after it
        second = pool.stats()
        with pool.connection():
            clock.advance(2.0)
        third = pool.stats()
    assert first.hold_time is not None
    assert (first.hold_time.count, first.hold_time.counts[0]) == (4, 3)
    assert first.hold_time.max == 0.5
    assert second.hold_time is not None
    assert (second.hold_time.count, second.hold_time.sum) == (1, 0.5)
    assert third.hold_time is not None
    assert (third.hold_time.count, third.hold_time.max) == (2, 2.0)
    assert third.hold_time.counts[0] == 0
