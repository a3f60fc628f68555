"""ConnectionPool: acquire/release, limits, waiting, ordering, lifetimes, health, close."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest

import poolkit
from poolkit import ConnectionPool, PoolClosed, PoolOverload, PoolTimeout, ReleaseError
from poolkit.testing import FakeClock, FakeConnection, FakeConnector


def make(
    connector: FakeConnector | None = None, **kw: Any
) -> tuple[ConnectionPool[FakeConnection], FakeConnector]:
    conn = connector if connector is not None else FakeConnector()
    kw.setdefault("timeout", 5.0)
    return ConnectionPool(conn, **kw), conn


def test_connection_context_returns_the_connection_for_reuse() -> None:
    pool, fake = make(max_size=2)
    with pool.connection() as conn:
        assert conn.use() == 1
    with pool.connection() as conn:
        assert conn.raw.id == 1
    assert len(fake.connections) == 1
    pool.close()
    assert fake.open_connections == []


def test_proxy_close_returns_it_to_the_pool() -> None:
    """fatih/pool: PoolConn.Close() puts the connection back instead of closing it."""
    pool, fake = make()
    conn = pool.acquire()
    conn.close()
    assert pool.stats().idle == 1
    assert [c for c in fake.connections if c.closed] == []
    pool.close()


def test_proxy_is_detached_after_release() -> None:
    pool, _ = make()
    conn = pool.acquire()
    pool.release(conn)
    with pytest.raises(poolkit.ConnectionDetached, match="already returned"):
        conn.use()
    with pytest.raises(poolkit.ConnectionDetached):
        _ = conn.raw
    assert conn.released
    pool.close()


def test_discard_closes_instead_of_returning() -> None:
    """fatih/pool MarkUnusable: the connection is closed, not pooled."""
    pool, _fake = make()
    conn = pool.acquire()
    raw = conn.raw
    conn.discard()
    assert raw.closed
    assert pool.stats().closed_by_reason["discarded"] == 1
    assert pool.stats().size == 0
    pool.close()


def test_double_release_raises() -> None:
    pool, _ = make()
    conn = pool.acquire()
    pool.release(conn)
    with pytest.raises(ReleaseError, match="already released"):
        pool.release(conn)
    pool.close()


def test_release_of_foreign_connection_raises() -> None:
    pool, _ = make()
    other, _ = make()
    conn = other.acquire()
    with pytest.raises(ReleaseError, match="another pool"):
        pool.release(conn)
    with pytest.raises(ReleaseError, match="PooledConnection"):
        pool.release(object())  # type: ignore[arg-type]
    other.release(conn)
    pool.close()
    other.close()


def test_max_size_is_never_exceeded_and_timeout_zero_fails_fast() -> None:
    pool, fake = make(max_size=2)
    a, b = pool.acquire(), pool.acquire()
    with pytest.raises(PoolTimeout, match=r"2 in use \(max_size=2\).*out \d+\.\d s.*leak_timeout="):
        pool.acquire(timeout=0)
    assert len(fake.connections) == 2
    pool.release(a)
    pool.release(b)
    pool.close()


def test_timeout_message_names_holders_with_leak_tracking() -> None:
    pool, _ = make(max_size=1, leak_timeout=1000.0)
    held = pool.acquire()
    with pytest.raises(PoolTimeout, match=r"longest holders: .*FakeConnection 1.* held"):
        pool.acquire(timeout=0.01)
    pool.release(held)
    pool.close()


def test_max_waiting_overloads() -> None:
    pool, _ = make(max_size=1, max_waiting=1)
    held = pool.acquire()
    waiting = threading.Event()
    results: list[object] = []

    def waiter() -> None:
        waiting.set()
        with pool.connection(timeout=30) as c:
            results.append(c.raw.id)

    t = threading.Thread(target=waiter)
    t.start()
    waiting.wait()
    while pool.stats().waiting < 1:
        threading.Event().wait(0.001)
    with pytest.raises(PoolOverload, match="max_waiting=1"):
        pool.acquire()
    assert pool.stats().overloads == 1
    pool.release(held)
    t.join()
    assert results == [1]
    pool.close()


def test_waiters_are_served_in_arrival_order() -> None:
    pool, _ = make(max_size=1)
    held = pool.acquire()
    # Start them one by one, each queued before the next arrives.
    served: list[int] = []

    def wait_for(i: int) -> None:
        with pool.connection(timeout=30):
            served.append(i)

    threads = [threading.Thread(target=wait_for, args=(i,)) for i in range(3)]
    for i, t in enumerate(threads):
        t.start()
        while pool.stats().waiting < i + 1:
            threading.Event().wait(0.001)
    pool.release(held)
    for t in threads:
        t.join()
    assert served == [0, 1, 2]
    pool.close()


def test_lifo_reuses_the_most_recent_and_fifo_rotates() -> None:
    for order, expected in (("lifo", [2, 2, 2]), ("fifo", [1, 2, 1])):
        pool, _ = make(max_size=2, order=order)
        a, b = pool.acquire(), pool.acquire()
        a.close()
        b.close()
        seen = []
        for _ in range(3):
            with pool.connection() as c:
                seen.append(c.raw.id)
        assert expected == seen, order
        pool.close()


def test_max_idle_closes_surplus_on_return() -> None:
    """database/sql MaxIdleConns: returns beyond the idle cap are closed."""
    pool, _ = make(max_size=3, max_idle=1)
    conns = [pool.acquire() for _ in range(3)]
    for c in conns:
        c.close()
    stats = pool.stats()
    assert (stats.idle, stats.closed_by_reason["max_idle"]) == (1, 2)
    pool.close()


def test_min_size_is_prewarmed_in_the_background() -> None:
    pool, fake = make(min_size=2, max_size=4)
    with pool.connection(), pool.connection():
        pass
    assert len(fake.connections) == 2
    assert pool.stats().idle == 2
    pool.close()


def test_max_idle_time_closes_idle_connections_but_keeps_min_size() -> None:
    """database/sql ConnMaxIdleTime, enforced by the cleaner pass."""
    clock = FakeClock()
    pool, _fake = make(max_size=3, min_size=1, max_idle_time=60, clock=clock)
    conns = [pool.acquire() for _ in range(3)]
    for c in conns:
        c.close()
    clock.advance(61)
    pool.maintain()
    stats = pool.stats()
    assert (stats.idle, stats.closed_by_reason["idle_time"]) == (1, 2)
    pool.close()


def test_max_lifetime_closes_at_checkout_and_on_return() -> None:
    """database/sql ConnMaxLifetime: expired connections are never handed out."""
    clock = FakeClock()
    pool, _fake = make(max_lifetime=100, lifetime_jitter=0, clock=clock)
    c = pool.acquire()
    clock.advance(101)
    c.close()  # returned after its lifetime: closed
    assert pool.stats().closed_by_reason["lifetime"] == 1
    with pool.connection() as c2:
        assert c2.raw.id == 2
    pool.close()


def test_lifetime_jitter_spreads_deadlines() -> None:
    clock = FakeClock()
    pool, _ = make(max_size=20, max_lifetime=1000, lifetime_jitter=0.1, clock=clock)
    conns = [pool.acquire() for _ in range(20)]
    deadlines = {c._entry.expires_at for c in conns if c._entry is not None}
    assert len(deadlines) > 1
    assert all(clock() + 900 <= d <= clock() + 1000 for d in deadlines)
    for c in conns:
        c.close()
    pool.close()


def test_check_failure_discards_and_hands_out_a_fresh_connection() -> None:
    pool, fake = make()
    c = pool.acquire()
    raw = c.raw
    c.close()
    fake.break_connection(raw)
    with pool.connection() as c2:
        assert c2.raw.id == 2
    assert raw.closed
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


def test_ping_only_after_idle_longer_than_ping_after() -> None:
    clock = FakeClock()
    pool, fake = make(ping_after=5, clock=clock)
    with pool.connection():
        pass
    with pool.connection():
        pass
    assert fake.pings == 0
    clock.advance(6)
    with pool.connection():
        pass
    assert fake.pings == 1
    fake.fail_pings = True
    clock.advance(6)
    with pool.connection() as c:
        assert c.raw.id == 2
    assert pool.stats().closed_by_reason["ping_failed"] == 1
    pool.close()


def test_reset_on_return_and_failure_discards() -> None:
    pool, fake = make()
    with pool.connection() as c:
        raw = c.raw
    assert raw.resets == 1
    fake.fail_resets = True
    with pool.connection():
        pass
    assert raw.closed
    assert pool.stats().closed_by_reason["reset_failed"] == 1
    pool.close()


def test_broken_error_in_block_discards_other_errors_keep() -> None:
    """database/sql ErrBadConn discards; gomemcache's resumable errors keep the conn."""
    pool, _ = make()
    with pytest.raises(KeyError), pool.connection():
        raise KeyError("a cache miss is not a broken connection")
    assert pool.stats().idle == 1
    with pytest.raises(ConnectionResetError), pool.connection():
        raise ConnectionResetError("peer reset")
    stats = pool.stats()
    assert (stats.idle, stats.closed_by_reason["broken"]) == (0, 1)
    pool.close()


def test_drain_closes_idle_now_and_busy_on_return() -> None:
    pool, _ = make(max_size=3)
    busy = pool.acquire()
    pool.acquire().close()
    pool.drain()
    assert pool.stats().idle == 0
    busy.close()
    assert pool.stats().closed_by_reason["drained"] == 2
    pool.close()


def test_resize_grows_for_waiters_and_shrinks_on_return() -> None:
    pool, _ = make(max_size=2)
    a, b = pool.acquire(), pool.acquire()
    pool.resize(max_size=3)
    c = pool.acquire(timeout=5)
    pool.resize(max_size=1)
    for conn in (a, b, c):
        conn.close()
    stats = pool.stats()
    assert (stats.size, stats.closed_by_reason["resized"]) == (1, 2)
    with pytest.raises(ValueError, match="min_size must be <= max_size"):
        pool.resize(min_size=3)
    pool.close()


def test_close_fails_waiters_closes_idle_and_busy_on_return() -> None:
    pool, fake = make(max_size=1)
    held = pool.acquire()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            pool.acquire(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    while pool.stats().waiting < 1:
        threading.Event().wait(0.001)
    closer = threading.Thread(target=pool.close, kwargs={"timeout": 30})
    closer.start()
    t.join()
    assert [PoolClosed] == [type(e) for e in errors]
    held.close()
    closer.join()
    assert fake.open_connections == []
    pool.close()  # idempotent
    with pytest.raises(PoolClosed):
        pool.acquire()
    assert pool.closed


def test_close_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    pool, _ = make(min_size=2, max_lifetime=100, max_idle_time=10)
    with pool.connection():
        pass
    pool.close()
    assert set() == {t for t in threading.enumerate() if t not in before and t.is_alive()}


def test_stats_count_and_pop_resets_counters() -> None:
    pool, _ = make(max_size=1)
    with pool.connection():
        pass
    with pytest.raises(PoolTimeout), pool.connection(), pool.connection(timeout=0):
        pass
    stats = pool.pop_stats()
    assert (stats.acquired, stats.created, stats.timeouts, stats.size) == (2, 1, 1, 1)
    assert pool.stats().acquired == 0
    assert pool.stats().size == 1
    pool.close()


def test_event_hooks_see_create_acquire_release_discard() -> None:
    events: list[tuple[str, int]] = []
    pool, _ = make(
        on_create=lambda c: events.append(("create", c.id)),
        on_acquire=lambda c: events.append(("acquire", c.id)),
        on_release=lambda c: events.append(("release", c.id)),
        on_discard=lambda c, reason: events.append((reason, c.id)),
    )
    with pool.connection():
        pass
    pool.close()
    assert events == [("create", 1), ("acquire", 1), ("release", 1), ("pool_closed", 1)]


def test_repr_shows_live_state() -> None:
    pool, _ = make(max_size=3, name="db")
    c = pool.acquire()
    assert (repr(pool)) == (
        "<ConnectionPool 'db' open [size 1/3: 0 idle, 1 in use, 0 creating, 0 closing | 0 waiting]>"
    )
    c.close()
    pool.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_size": 0}, ValueError, "max_size must be >= 1"),
        ({"max_size": "3"}, TypeError, "max_size must be an int"),
        ({"min_size": 3, "max_size": 2}, ValueError, "min_size must be <= max_size"),
        ({"min_size": 2, "max_idle": 1}, ValueError, "max_idle must be >= min_size"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0"),
        ({"max_waiting": 0}, ValueError, "max_waiting must be >= 1"),
        ({"max_lifetime": 0}, ValueError, "max_lifetime must be > 0"),
        ({"lifetime_jitter": 1.0}, ValueError, "lifetime_jitter must be a fraction"),
        ({"max_idle_time": float("nan")}, ValueError, "max_idle_time must be a finite"),
        ({"order": "random"}, ValueError, "order must be 'lifo' or 'fifo'"),
        ({"ping_after": -1}, ValueError, "ping_after must be >= 0"),
        ({"leak_timeout": 0}, ValueError, "leak_timeout must be > 0"),
        ({"clock": 3}, TypeError, "clock must be callable"),
        ({"on_create": "x"}, TypeError, "on_create must be callable"),
        ({"name": 3}, TypeError, "name must be a str"),
    ],
)
def test_bad_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ConnectionPool(FakeConnector(), **kwargs)


def test_bad_connector_and_bad_timeout_are_refused() -> None:
    with pytest.raises(TypeError, match="callable create"):
        ConnectionPool(object())  # type: ignore[arg-type]
    pool, _ = make()
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.acquire(timeout=-1)
    with pytest.raises(TypeError, match="timeout must be a number"):
        pool.acquire(timeout="1")  # type: ignore[arg-type]
    pool.close()


def test_stats_count_waits_like_dbstats() -> None:
    """database/sql DBStats WaitCount: only waits at the limit count in ``waited``;
    waiting for a connection being opened counts in ``waited_for_create``."""
    pool, _ = make(max_size=1)
    held = pool.acquire()  # waits for the first connection to open
    before = pool.pop_stats()
    assert (before.waited, before.waited_for_create) == (0, 1)
    got = threading.Event()

    def waiter() -> None:
        with pool.connection(timeout=30):
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    while pool.stats().waiting < 1:
        threading.Event().wait(0.001)
    held.close()
    t.join()
    stats = pool.stats()
    assert got.is_set()
    assert (stats.waited, stats.waited_for_create) == (1, 0)
    assert stats.wait_time > 0
    pool.close()


def test_pool_dropped_without_close_is_collected_and_its_cleaner_ends() -> None:
    pool, _ = make(max_lifetime=100)
    with pool.connection():
        pass
    cleaner = pool._runner.cleaner
    assert cleaner is not None
    ref = weakref.ref(pool)
    del pool
    # The creator thread or a cleaner pass may hold the pool for a moment.
    for _ in range(1000):
        gc.collect()
        if ref() is None:
            break
        threading.Event().wait(0.005)
    assert ref() is None
    cleaner.join(30)
    assert not cleaner.is_alive()


def test_one_cleaner_thread_per_pool_even_when_threads_race_to_start_it() -> None:
    """Flushes run in callers, connect threads and the cleaner at once; only the
    first may start the cleaner (a pool with three cleaners was seen before)."""
    pool = ConnectionPool(FakeConnector(), max_size=4, max_idle_time=60.0, name="solo")
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for _ in range(50):
            with pool.connection():
                pass

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cleaners = [t for t in threading.enumerate() if t.name == "poolkit-cleaner-solo"]
    assert len(cleaners) == 1
    pool.close()
    assert not [t for t in threading.enumerate() if t.name.endswith("-solo")]


def test_a_cleaner_pass_while_all_are_busy_does_not_make_every_return_rouse_it() -> None:
    """The cleaner plans for busy connections' earliest possible deadline, so
    giving one back does not wake it again (it used to, on every cycle)."""
    clock = FakeClock()
    pool = ConnectionPool(FakeConnector(), max_size=1, max_idle_time=60.0, clock=clock)
    conn = pool.acquire()
    pool.maintain()  # the cleaner's pass, with the only connection busy
    pool._runner.wake.clear()
    pool.release(conn)
    assert not pool._runner.wake.is_set()
    clock.advance(61.0)  # the deadlines still hold: the idle one retires on time
    pool.maintain()
    assert pool.stats().closed_by_reason["idle_time"] == 1
    pool.close()


def test_a_wait_ended_by_close_is_still_timed() -> None:
    """wait_time counts every queued wait, however it ends (as the async pool does)."""
    pool, _ = make(max_size=1)
    held = pool.acquire()
    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            pool.acquire(timeout=30)
        except PoolClosed as exc:
            outcome.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    while pool.stats().waiting < 1:
        threading.Event().wait(0.001)
    before = pool.stats().wait_time
    pool.close(timeout=0)
    t.join(30)
    assert len(outcome) == 1
    assert pool.stats().wait_time > before
    held.close()
