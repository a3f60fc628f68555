"""AsyncConnectionPool: acquire/release, limits, waiting, ordering, lifetimes, health, close.

The source of ``test_pool.py`` (``scripts/gen_sync.py``): every test here runs
against both twins. Tests of threads only are in ``test_pool_threads.py``,
of the event loop only (cancellation, loop binding) in ``test_async_pool_loop.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

import poolkit
from poolkit import AsyncConnectionPool, PoolClosed, PoolOverload, PoolTimeout, ReleaseError
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection
from tests.connections.twins import async_run, async_settle, async_spawn, async_wait_until


def make(
    connector: AsyncFakeConnector | None = None, **kw: Any
) -> tuple[AsyncConnectionPool[FakeConnection], AsyncFakeConnector]:
    fake = connector if connector is not None else AsyncFakeConnector()
    kw.setdefault("timeout", 5.0)
    return AsyncConnectionPool(fake, **kw), fake


def test_connection_context_returns_the_connection_for_reuse() -> None:
    async def main() -> None:
        pool, fake = make(max_size=2)
        async with pool.connection() as conn:
            assert conn.use() == 1
        async with pool.connection() as conn:
            assert conn.raw.id == 1
        assert len(fake.connections) == 1
        await pool.close()
        assert fake.open_connections == []

    async_run(main)


def test_proxy_close_returns_it_to_the_pool() -> None:
    """fatih/pool: PoolConn.Close() puts the connection back instead of closing it."""

    async def main() -> None:
        pool, fake = make()
        conn = await pool.acquire()
        await conn.close()
        assert pool.stats().idle == 1
        assert [c for c in fake.connections if c.closed] == []
        await pool.close()

    async_run(main)


def test_proxy_is_detached_after_release() -> None:
    async def main() -> None:
        pool, _ = make()
        conn = await pool.acquire()
        await pool.release(conn)
        with pytest.raises(poolkit.ConnectionDetached, match="already returned"):
            conn.use()
        with pytest.raises(poolkit.ConnectionDetached):
            _ = conn.raw
        assert conn.released
        await pool.close()

    async_run(main)


def test_discard_closes_instead_of_returning() -> None:
    """fatih/pool MarkUnusable: the connection is closed, not pooled."""

    async def main() -> None:
        pool, _fake = make()
        conn = await pool.acquire()
        raw = conn.raw
        await conn.discard()
        await async_settle()
        assert raw.closed
        assert pool.stats().closed_by_reason["discarded"] == 1
        assert pool.stats().total == 0
        await pool.close()

    async_run(main)


def test_double_release_raises() -> None:
    async def main() -> None:
        pool, _ = make()
        conn = await pool.acquire()
        await conn.close()
        with pytest.raises(ReleaseError, match="already released"):
            await pool.release(conn)
        with pytest.raises(ReleaseError, match="already released"):
            await conn.close()
        await pool.close()

    async_run(main)


def test_a_racing_second_release_of_one_proxy_raises_and_files_it_once() -> None:
    """Two releases of one proxy that both pass the proxy's own test (two
    threads at once): the second raises, and the connection is idle once."""

    async def main() -> None:
        pool, _ = make()
        conn = await pool.acquire()
        entry = conn._bound
        assert entry is not None
        await pool.release(conn)
        entry.proxy = None  # as the racing release saw it: still leased
        with pytest.raises(ReleaseError, match="released twice"):
            await pool.release(conn)
        assert pool.stats().idle == 1
        async with pool.connection() as again:
            assert again.raw.id == 1
            assert pool.stats().idle == 0  # not a second copy of it
        await pool.close()

    async_run(main)


def test_release_of_foreign_connection_raises() -> None:
    async def main() -> None:
        pool, _ = make()
        other, _ = make()
        conn = await other.acquire()
        with pytest.raises(ReleaseError, match="another pool"):
            await pool.release(conn)
        with pytest.raises(ReleaseError, match="PooledConnection"):
            await pool.release(object())  # type: ignore[arg-type]
        await other.release(conn)
        await pool.close()
        await other.close()

    async_run(main)


def test_max_size_is_never_exceeded_and_timeout_zero_fails_fast() -> None:
    async def main() -> None:
        pool, fake = make(max_size=2)
        a, b = await pool.acquire(), await pool.acquire()
        with pytest.raises(
            PoolTimeout, match=r"2 in use \(max_size=2\).*out \d+\.\d s.*leak_timeout="
        ):
            await pool.acquire(timeout=0)
        assert len(fake.connections) == 2
        await pool.release(a)
        await pool.release(b)
        await pool.close()

    async_run(main)


def test_timeout_message_names_holders_with_leak_tracking() -> None:
    async def main() -> None:
        pool, _ = make(max_size=1, leak_timeout=1000.0)
        held = await pool.acquire()
        with pytest.raises(PoolTimeout, match=r"longest holders: .*FakeConnection 1.* held"):
            await pool.acquire(timeout=0.01)
        await pool.release(held)
        await pool.close()

    async_run(main)


def test_max_waiting_overloads() -> None:
    async def main() -> None:
        pool, _ = make(max_size=1, max_waiting=1)
        held = await pool.acquire()

        async def use() -> int:
            async with pool.connection(timeout=30) as c:
                return c.raw.id

        waiter = async_spawn(use)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolOverload, match="max_waiting=1"):
            await pool.acquire()
        assert pool.stats().overloads == 1
        await pool.release(held)
        assert await waiter.join() == 1
        await pool.close()

    async_run(main)


def test_waiters_are_served_in_arrival_order_and_time_out() -> None:
    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()
        with pytest.raises(PoolTimeout, match="1 in use"):
            await pool.acquire(timeout=0)
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.01)
        served: list[int] = []

        async def wait_for(i: int) -> None:
            async with pool.connection(timeout=30):
                served.append(i)

        # Start them one by one, each queued before the next arrives.
        waiters = []
        for i in range(3):
            waiters.append(async_spawn(wait_for, i))
            await async_wait_until(lambda: pool.stats().waiting >= len(waiters))
        await held.close()
        for waiter in waiters:
            await waiter.join()
        assert served == [0, 1, 2]
        await pool.close()

    async_run(main)


def test_lifo_reuses_the_most_recent_and_fifo_rotates() -> None:
    async def main() -> None:
        for order, expected in (("lifo", [2, 2, 2]), ("fifo", [1, 2, 1])):
            pool, _ = make(max_size=2, order=order)
            a, b = await pool.acquire(), await pool.acquire()
            await a.close()
            await b.close()
            seen = []
            for _ in range(3):
                async with pool.connection() as c:
                    seen.append(c.raw.id)
            assert expected == seen, order
            await pool.close()

    async_run(main)


def test_max_idle_closes_surplus_on_return() -> None:
    """database/sql MaxIdleConns: returns beyond the idle cap are closed."""

    async def main() -> None:
        pool, _ = make(max_size=3, max_idle=1)
        conns = [await pool.acquire() for _ in range(3)]
        for c in conns:
            await c.close()
        stats = pool.stats()
        assert (stats.idle, stats.closed_by_reason["max_idle"]) == (1, 2)
        # Below the cap again, returns are kept; at the cap, closed.
        first, second = await pool.acquire(), await pool.acquire()
        await first.close()
        assert (pool.stats().idle, pool.stats().closed_by_reason["max_idle"]) == (1, 2)
        await second.close()
        stats = pool.stats()
        assert (stats.idle, stats.closed_by_reason["max_idle"]) == (1, 3)
        await pool.close()

    async_run(main)


def test_min_size_is_prewarmed_in_the_background() -> None:
    async def main() -> None:
        pool, fake = make(min_size=2, max_size=4)
        await pool.open()  # async-only
        async with pool.connection(), pool.connection():
            pass
        assert len(fake.connections) == 2
        assert pool.stats().idle == 2
        await pool.close()

    async_run(main)


def test_max_idle_time_closes_idle_connections_but_keeps_min_size() -> None:
    """database/sql ConnMaxIdleTime, enforced by the cleaner pass."""

    async def main() -> None:
        clock = FakeClock()
        pool, _fake = make(max_size=3, min_size=1, max_idle_time=60, clock=clock)
        conns = [await pool.acquire() for _ in range(3)]
        for c in conns:
            await c.close()
        clock.advance(61)
        pool.maintain()
        stats = pool.stats()
        assert (stats.idle, stats.closed_by_reason["idle_time"]) == (1, 2)
        await pool.close()

    async_run(main)


def test_max_lifetime_closes_at_checkout_and_on_return() -> None:
    """database/sql ConnMaxLifetime: expired connections are never handed out."""

    async def main() -> None:
        clock = FakeClock()
        pool, _fake = make(max_lifetime=100, lifetime_jitter=0, clock=clock)
        c = await pool.acquire()
        clock.advance(101)
        await c.close()  # returned after its lifetime: closed
        assert pool.stats().closed_by_reason["lifetime"] == 1
        async with pool.connection() as c2:
            assert c2.raw.id == 2
        await pool.close()

    async_run(main)


def test_checkout_retires_a_connection_past_its_deadlines_without_the_cleaner() -> None:
    """net/http's wall-clock check at checkout: the cleaner never ran (a machine
    resuming from suspend), yet nothing past its lifetime or idle deadline is
    handed out; past the idle deadline, one is kept only for min_size."""

    async def main() -> None:
        clock = FakeClock()
        pool, fake = make(
            max_size=3,
            min_size=1,
            max_idle_time=60,
            max_lifetime=100,
            lifetime_jitter=0,
            clock=clock,
        )
        conns = [await pool.acquire() for _ in range(3)]
        for c in conns:
            await c.close()
        clock.advance(61)  # past the idle deadline of all three, no maintain()
        async with pool.connection() as c:
            # LIFO: 3 and 2 retire (above min_size), 1 stays for min_size.
            assert c.raw.id == 1
        stats = pool.stats()
        assert (stats.closed_by_reason["idle_time"], stats.idle) == (2, 1)
        clock.advance(40)  # past its lifetime now
        async with pool.connection() as c:
            assert c.raw.id == 4
        assert pool.stats().closed_by_reason["lifetime"] == 1
        await async_settle()
        assert [c.id for c in fake.connections if c.closed] == [1, 2, 3]
        await pool.close()

    async_run(main)


def test_lifetime_jitter_spreads_deadlines() -> None:
    async def main() -> None:
        clock = FakeClock()
        pool, _ = make(max_size=20, max_lifetime=1000, lifetime_jitter=0.1, clock=clock)
        conns = [await pool.acquire() for _ in range(20)]
        deadlines = {c._entry.expires_at for c in conns if c._entry is not None}
        assert len(deadlines) > 1
        assert all(clock() + 900 <= d <= clock() + 1000 for d in deadlines)
        for c in conns:
            await c.close()
        await pool.close()

    async_run(main)


def test_check_failure_discards_and_hands_out_a_fresh_connection() -> None:
    async def main() -> None:
        pool, fake = make()
        c = await pool.acquire()
        raw = c.raw
        await c.close()
        fake.break_connection(raw)
        async with pool.connection() as c2:
            assert c2.raw.id == 2
        await async_settle()
        assert raw.closed
        assert pool.stats().closed_by_reason["check_failed"] == 1
        await pool.close()

    async_run(main)


def test_ping_only_after_idle_longer_than_ping_after() -> None:
    async def main() -> None:
        clock = FakeClock()
        pool, fake = make(ping_after=5, clock=clock)
        async with pool.connection():
            pass
        async with pool.connection():
            pass
        assert fake.pings == 0
        clock.advance(6)
        async with pool.connection():
            pass
        assert fake.pings == 1
        fake.fail_pings = True
        clock.advance(6)
        async with pool.connection() as c:
            assert c.raw.id == 2
        assert pool.stats().closed_by_reason["ping_failed"] == 1
        await pool.close()

    async_run(main)


def test_reset_on_return_and_failure_discards() -> None:
    async def main() -> None:
        pool, fake = make()
        async with pool.connection() as c:
            raw = c.raw
        assert raw.resets == 1
        fake.fail_resets = True
        async with pool.connection():
            pass
        await async_settle()
        assert raw.closed
        assert pool.stats().closed_by_reason["reset_failed"] == 1
        await pool.close()

    async_run(main)


def test_broken_error_in_block_discards_other_errors_keep() -> None:
    """database/sql ErrBadConn discards; gomemcache's resumable errors keep the conn."""

    async def main() -> None:
        pool, _ = make()
        with pytest.raises(KeyError):
            async with pool.connection():
                raise KeyError("a cache miss is not a broken connection")
        assert pool.stats().idle == 1
        with pytest.raises(ConnectionResetError):
            async with pool.connection():
                raise ConnectionResetError("peer reset")
        stats = pool.stats()
        assert (stats.idle, stats.closed_by_reason["broken"]) == (0, 1)
        await pool.close()

    async_run(main)


def test_drain_closes_idle_now_and_busy_on_return() -> None:
    async def main() -> None:
        pool, _ = make(max_size=3)
        busy = await pool.acquire()
        idle = await pool.acquire()
        await idle.close()
        pool.drain()
        assert pool.stats().idle == 0
        await busy.close()
        assert pool.stats().closed_by_reason["drained"] == 2
        await pool.close()

    async_run(main)


def test_resize_grows_for_waiters_and_shrinks_on_return() -> None:
    async def main() -> None:
        pool, _ = make(max_size=2)
        a, b = await pool.acquire(), await pool.acquire()
        pool.resize(max_size=3)
        c = await pool.acquire(timeout=5)
        pool.resize(max_size=1)
        for conn in (a, b, c):
            await conn.close()
        await async_settle()
        stats = pool.stats()
        assert (stats.total, stats.closed_by_reason["resized"]) == (1, 2)
        with pytest.raises(ValueError, match="min_size must be <= max_size"):
            pool.resize(min_size=3)
        await pool.close()

    async_run(main)


def test_close_fails_waiters_closes_idle_and_busy_on_return() -> None:
    async def main() -> None:
        pool, fake = make(max_size=1)
        held = await pool.acquire()
        waiter = async_spawn(pool.acquire, timeout=30)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        closer = async_spawn(pool.close, timeout=30)
        with pytest.raises(PoolClosed):
            await waiter.join()
        await held.close()
        await closer.join()
        assert fake.open_connections == []
        await pool.close()  # idempotent
        with pytest.raises(PoolClosed):
            await pool.acquire()
        assert pool.closed

    async_run(main)


def test_stats_count_and_pop_resets_counters() -> None:
    async def main() -> None:
        pool, _ = make(max_size=1)
        async with pool.connection():
            pass
        with pytest.raises(PoolTimeout):
            async with pool.connection(), pool.connection(timeout=0):
                pass
        stats = pool.pop_stats()
        assert (stats.acquired, stats.created, stats.timeouts, stats.total) == (2, 1, 1, 1)
        assert pool.stats().acquired == 0
        assert pool.stats().total == 1
        await pool.close()

    async_run(main)


@pytest.mark.parametrize("with_hook", [False, True])
def test_a_failed_reset_discards_with_or_without_an_on_release_hook(with_hook: bool) -> None:
    """The reset alone runs inline in release(), beside an on_release hook in
    the release's slow path: either way a reset that raises closes the
    connection, and the hook still runs."""

    async def main() -> None:
        released: list[int] = []
        options: dict[str, Any] = {}
        if with_hook:
            options["on_release"] = lambda c: released.append(c.id)
        pool, fake = make(**options)
        fake.fail_resets = True
        async with pool.connection() as c:
            raw = c.raw
        await async_settle()
        assert raw.closed
        assert pool.stats().closed_by_reason["reset_failed"] == 1
        assert released == ([1] if with_hook else [])
        await pool.close()

    async_run(main)


def test_event_hooks_see_create_acquire_release_discard() -> None:
    async def main() -> None:
        events: list[tuple[str, int]] = []
        pool, _ = make(
            on_create=lambda c: events.append(("create", c.id)),
            on_acquire=lambda c: events.append(("acquire", c.id)),
            on_release=lambda c: events.append(("release", c.id)),
            on_discard=lambda c, reason: events.append((reason, c.id)),
        )
        async with pool.connection():
            pass
        await pool.close()
        assert events == [("create", 1), ("acquire", 1), ("release", 1), ("pool_closed", 1)]

    async_run(main)


def test_repr_shows_live_state() -> None:
    async def main() -> None:
        pool, _ = make(max_size=3, name="db")
        c = await pool.acquire()
        assert (repr(pool)) == (
            "<AsyncConnectionPool 'db' open [size 1/3: 0 idle, 1 in use, 0 creating, 0 closing "
            "| 0 waiting]>"
        )
        await c.close()
        await pool.close()

    async_run(main)


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
        AsyncConnectionPool(AsyncFakeConnector(), **kwargs)


def test_bad_connector_and_bad_timeout_are_refused() -> None:
    with pytest.raises(TypeError, match="callable create"):
        AsyncConnectionPool(object())  # type: ignore[call-overload]

    async def main() -> None:
        pool, _ = make()
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await pool.acquire(timeout=-1)
        with pytest.raises(TypeError, match="timeout must be a number"):
            await pool.acquire(timeout="1")  # type: ignore[arg-type]
        await pool.close()

    async_run(main)


def test_stats_count_waits_like_dbstats() -> None:
    """database/sql DBStats WaitCount: only waits at the limit count in ``waited``;
    waiting for a connection being opened counts in ``waited_for_create``."""

    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()  # waits for the first connection to open
        before = pool.pop_stats()
        assert (before.waited, before.waited_for_create) == (0, 1)

        async def use() -> None:
            async with pool.connection(timeout=30):
                pass

        waiter = async_spawn(use)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await held.close()
        await waiter.join()
        stats = pool.stats()
        assert (stats.waited, stats.waited_for_create) == (1, 0)
        assert stats.wait_time > 0
        await pool.close()

    async_run(main)


def test_a_cleaner_pass_while_all_are_busy_does_not_make_every_return_rouse_it() -> None:
    """The cleaner plans for busy connections' earliest possible deadline, so
    giving one back does not wake it again (it used to, on every cycle)."""

    async def main() -> None:
        clock = FakeClock()
        pool, _ = make(max_size=1, max_idle_time=60.0, clock=clock)
        conn = await pool.acquire()
        pool.maintain()  # the cleaner's pass, with the only connection busy
        wake = pool._runner.wake
        assert wake is not None
        wake.clear()
        await pool.release(conn)
        assert not wake.is_set()
        clock.advance(61.0)  # the deadlines still hold: the idle one retires on time
        pool.maintain()
        assert pool.stats().closed_by_reason["idle_time"] == 1
        await pool.close()

    async_run(main)


def test_a_wait_ended_by_close_is_still_timed() -> None:
    """wait_time counts every queued wait, however it ends."""

    async def main() -> None:
        pool, _ = make(max_size=1)
        held = await pool.acquire()
        waiter = async_spawn(pool.acquire, timeout=30)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        before = pool.stats().wait_time
        await pool.close(timeout=0)
        with pytest.raises(PoolClosed):
            await waiter.join()
        assert pool.stats().wait_time > before
        await held.close()

    async_run(main)


def test_lifetimes_health_drain_resize_and_stats_together() -> None:
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

    async_run(main)


def test_hanging_create_times_out_then_stocks_the_pool() -> None:
    async def main() -> None:
        pool, fake = make(max_size=1)
        fake.hang_creates()
        with pytest.raises(PoolTimeout, match="1 being created"):
            await pool.acquire(timeout=0.01)
        fake.release_creates()
        async with pool.connection(timeout=5) as c:
            assert c.raw.id == 1
        await pool.close()
        assert fake.open_connections == []

    async_run(main)


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
            await pool.acquire(timeout=0.01)  # starts a creator
        await async_wait_until(lambda: pool.stats().create_errors >= 2)
        with pytest.raises(PoolTimeout, match=r"couldn.t connect: ConnectionRefusedError"):
            await pool.acquire(timeout=0.01)
        await pool.close()

    async_run(main)


# -- psycopg_pool parity: open(wait=True), wait(), reconnect_timeout, check= --------


def test_open_wait_returns_once_min_size_connections_are_open() -> None:
    """psycopg_pool open(wait=True): the pool is full when open() returns."""

    async def main() -> None:
        pool, fake = make(min_size=3, max_size=5)
        await pool.open(wait=True, timeout=30)
        assert pool.stats().idle == 3
        assert len(fake.open_connections) == 3
        await pool.wait(timeout=0)  # already full: returns at once
        await pool.close()

    async_run(main)


def test_open_wait_fails_fast_when_the_server_is_down_and_closes_the_pool() -> None:
    """psycopg_pool wait(): PoolTimeout (from the connection error) and the pool closed."""

    async def main() -> None:
        fake = AsyncFakeConnector()
        fake.fail_next_creates(10_000, ConnectionRefusedError("server down"))
        pool, _ = make(fake, min_size=2)
        with pytest.raises(PoolTimeout, match=r"0 of min_size=2 .*server down") as info:
            await pool.open(wait=True, timeout=0.2)
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
        assert pool.closed
        with pytest.raises(PoolClosed, match="cannot be reopened"):
            await pool.open()
        with pytest.raises(PoolClosed):
            await pool.wait(timeout=1)

    async_run(main)


def test_wait_sees_connections_that_open_after_failed_attempts() -> None:
    async def main() -> None:
        fake = AsyncFakeConnector()
        fake.fail_next_creates(2, ConnectionRefusedError("starting up"))
        pool, _ = make(fake, min_size=1)
        await pool.open()
        await pool.wait(timeout=30)
        stats = pool.stats()
        assert (stats.idle, stats.create_errors, stats.created) == (1, 2, 1)
        await pool.close()

    async_run(main)


def test_reconnect_timeout_gives_up_and_calls_reconnect_failed() -> None:
    """psycopg_pool: attempts back off until reconnect_timeout, then reconnect_failed(pool)."""

    async def main() -> None:
        clock = FakeClock()
        calls: list[tuple[object, int]] = []
        down = True

        class Flaky(AsyncFakeConnector):
            async def create(self) -> FakeConnection:
                if down:
                    clock.advance(10.0)  # each failed attempt takes 10 s of the clock
                    raise ConnectionRefusedError("server down")
                return await super().create()

        def failed(pool: object) -> None:
            calls.append((pool, pool_ref[0].stats().create_errors))

        pool_ref: list[AsyncConnectionPool[FakeConnection]] = []
        pool = AsyncConnectionPool(
            Flaky(), min_size=1, timeout=5.0, clock=clock,
            reconnect_timeout=15.0, reconnect_failed=failed,
        )  # fmt: skip
        pool_ref.append(pool)
        await pool.open()
        await async_wait_until(lambda: calls)
        # Failed at 10 s (retried), failed at 20 s >= 15 s: gave up after two attempts.
        assert calls[0] == (pool, 2)
        assert pool.stats().reconnects_failed >= 1
        # A caller still gets a connection once the server is back.
        down = False
        async with pool.connection() as conn:
            assert conn.use() == 1
        await pool.close()

    async_run(main)


def test_pool_check_replaces_the_connectors_and_discards_what_it_rejects() -> None:
    """psycopg_pool check=: run at checkout; raising (or False) discards the connection."""

    async def main() -> None:
        checked: list[int] = []

        def check(conn: FakeConnection) -> None:
            checked.append(conn.id)
            if conn.id == 1:
                raise ConnectionResetError("stale")

        pool, fake = make(check=check)
        async with pool.connection() as conn:
            assert conn.raw.id == 2
        assert pool.stats().closed_by_reason["check_failed"] == 1
        # The connector's own check (it fails for a broken connection) is not used.
        fake.break_connection(fake.connections[1])
        conn = await pool.acquire()
        assert conn.raw.id == 2
        await pool.release(conn)
        assert checked == [1, 2, 2]
        await pool.close()

    async_run(main)


def test_pool_check_returning_false_discards() -> None:
    async def main() -> None:
        pool, _fake = make(check=lambda conn: conn.id != 1)
        async with pool.connection() as conn:
            assert conn.raw.id == 2
        await pool.close()

    async_run(main)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"check": 1}, TypeError, "check"),
        ({"reconnect_failed": "log"}, TypeError, "reconnect_failed"),
        ({"reconnect_timeout": 0}, ValueError, "reconnect_timeout"),
        ({"reconnect_timeout": -1.0}, ValueError, "reconnect_timeout"),
        ({"reconnect_timeout": "5"}, TypeError, "reconnect_timeout"),
    ],
)
def test_parity_options_reject_bad_values(
    kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        make(**kwargs)


def test_open_and_wait_reject_bad_arguments() -> None:
    async def main() -> None:
        pool, _ = make()
        with pytest.raises(TypeError, match="wait"):
            await pool.open(wait="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            await pool.open(wait=True, timeout=-1)
        with pytest.raises(ValueError, match="timeout"):
            await pool.wait(timeout=float("nan"))
        await pool.close()

    async_run(main)
