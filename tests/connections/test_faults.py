"""Fault tests: create raising or hanging, checks failing, a restarted server."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool, PoolTimeout
from poolkit.testing import AsyncFakeConnector, FakeConnection, FakeConnector


def test_create_raising_is_retried_with_backoff_and_serves_the_waiter() -> None:
    fake = FakeConnector()
    fake.fail_next_creates(2)
    pool = ConnectionPool(fake, timeout=30)
    with pool.connection() as c:
        assert c.raw.id == 1
    stats = pool.stats()
    assert (stats.create_errors, stats.created) == (2, 1)
    pool.close()


def test_create_always_failing_times_out_and_reports_the_error() -> None:
    fake = FakeConnector()
    fake.fail_next_creates(1000)
    pool = ConnectionPool(fake, timeout=0.01)
    with pytest.raises(PoolTimeout):
        pool.acquire()  # starts the creator; it may not have failed yet
    while pool.stats().create_errors < 1:
        threading.Event().wait(0.001)
    with pytest.raises(PoolTimeout, match=r"couldn.t connect: ConnectionRefusedError") as info:
        pool.acquire()
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    pool.close()
    assert pool.stats().creating == 0


def test_create_hanging_times_out_waiters_then_stocks_the_pool() -> None:
    fake = FakeConnector()
    fake.hang_creates()
    pool = ConnectionPool(fake, max_size=1, timeout=0.05)
    with pytest.raises(PoolTimeout, match="1 being created"):
        pool.acquire()
    fake.hanging.acquire()  # the create is really stuck in the connector
    fake.release_creates()
    with pool.connection(timeout=30) as c:
        assert c.raw.id == 1
    pool.close()
    assert fake.open_connections == []


def test_every_waiter_is_served_or_times_out_and_nothing_leaks() -> None:
    fake = FakeConnector()
    pool = ConnectionPool(fake, max_size=2, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            with pool.connection(timeout=30 if i % 2 else 0.001) as c:
                c.use()
            result = "served"
        except PoolTimeout:
            result = "timeout"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 16
    assert outcomes.count("served") >= 8  # every patient waiter got one
    stats = pool.stats()
    assert (stats.in_use, stats.waiting) == (0, 0)
    pool.close()
    assert fake.open_connections == []


def test_check_failing_on_every_idle_connection_after_server_restart() -> None:
    """A restarted server breaks every idle connection; checkout replaces them all."""
    fake = FakeConnector()
    pool = ConnectionPool(fake, max_size=3)
    conns = [pool.acquire() for _ in range(3)]
    for c in conns:
        c.close()
    for raw in list(fake.connections):
        fake.break_connection(raw)
    with pool.connection() as c:
        assert c.raw.id == 4
    assert pool.stats().closed_by_reason["check_failed"] == 3
    pool.close()
    assert fake.open_connections == []


def test_close_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(FakeConnector):
        def close(self, conn: object) -> None:
            raise OSError("already gone")

    pool = ConnectionPool(Failing())
    with pool.connection():
        pass
    pool.close()
    assert "closing a connection (pool_closed) failed" in caplog.text


class Interrupting(FakeConnector):
    """Raises KeyboardInterrupt once, inside the named hook."""

    def __init__(self, hook: str) -> None:
        super().__init__()
        self.armed = hook

    def _interrupt(self, hook: str) -> None:
        if self.armed == hook:
            self.armed = ""
            raise KeyboardInterrupt

    def _check(self, conn: FakeConnection) -> bool:
        self._interrupt("check")
        return super()._check(conn)

    def _ping(self, conn: FakeConnection) -> bool:
        self._interrupt("ping")
        return super()._ping(conn)

    def _reset(self, conn: FakeConnection) -> None:
        self._interrupt("reset")
        super()._reset(conn)


@pytest.mark.parametrize("hook", ["reset", "check", "ping"])
def test_keyboard_interrupt_in_a_hook_closes_the_connection_instead_of_leaking_it(
    hook: str,
) -> None:
    """A BaseException in reset/check/ping: the connection is closed, counts stay
    right, the exception goes on, and a max_size=1 pool serves the next caller."""
    fake = Interrupting("")
    pool = ConnectionPool(fake, max_size=1, timeout=5, ping_after=0)
    pool.acquire().close()  # connection 1 is idle
    fake.armed = hook
    with pytest.raises(KeyboardInterrupt):
        pool.acquire().close()  # check and ping run in acquire(), reset in close()
    stats = pool.stats()
    assert (stats.in_use, stats.total) == (0, 0)
    assert fake.connections[0].closed
    with pool.connection(timeout=5) as c:
        assert c.raw.id == 2
    pool.close()
    assert fake.open_connections == []


@pytest.mark.parametrize("on_acquire", [None, lambda conn: None])
def test_keyboard_interrupt_in_the_check_closes_the_connection_with_or_without_other_extras(
    on_acquire: Any,
) -> None:
    """The check alone runs inline in acquire(), with a hook beside it in the
    checkout's slow path: either way an interrupted check closes the connection."""
    fake = Interrupting("")
    pool = ConnectionPool(fake, max_size=1, timeout=5, on_acquire=on_acquire)
    pool.acquire().close()
    fake.armed = "check"
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()
    stats = pool.stats()
    assert (stats.in_use, stats.total, stats.closed_by_reason["check_failed"]) == (0, 0, 1)
    with pool.connection(timeout=5) as c:
        assert c.raw.id == 2
    pool.close()
    assert fake.open_connections == []


class AsyncInterrupting(AsyncFakeConnector):
    def __init__(self) -> None:
        super().__init__()
        self.armed = ""

    def _check(self, conn: FakeConnection) -> bool:
        if self.armed == "check":
            self.armed = ""
            raise KeyboardInterrupt
        return super()._check(conn)


def test_async_keyboard_interrupt_in_the_check_closes_the_connection() -> None:
    async def main() -> None:
        fake = AsyncInterrupting()
        pool = AsyncConnectionPool(fake, max_size=1, timeout=5)
        await (await pool.acquire()).close()
        fake.armed = "check"
        with pytest.raises(KeyboardInterrupt):
            await pool.acquire()
        assert pool.stats().in_use == 0
        async with pool.connection() as c:
            assert c.raw.id == 2
        await pool.close()
        assert fake.open_connections == []

    asyncio.run(main())


def test_timeout_while_connecting_fails_names_the_connect_error_and_stops_there() -> None:
    """A bad address is not a leak: no advice to raise max_size or hunt leaks."""
    fake = FakeConnector()
    fake.fail_next_creates(1000)
    pool = ConnectionPool(fake, max_size=2, timeout=0.01)
    with pytest.raises(PoolTimeout):
        pool.acquire()
    while pool.stats().create_errors < 1:
        threading.Event().wait(0.001)
    with pytest.raises(PoolTimeout) as info:
        pool.acquire()
    message = str(info.value)
    assert "couldn't connect: ConnectionRefusedError('fake server refused')" in message
    assert "leak" not in message
    assert "max_size or" not in message
    pool.close()


def test_timeout_at_the_limit_keeps_the_leak_advice() -> None:
    pool = ConnectionPool(FakeConnector(), max_size=1, timeout=0.01)
    held = pool.acquire()
    with pytest.raises(PoolTimeout, match="raise max_size or timeout, or look for leaks"):
        pool.acquire()
    held.close()
    pool.close()


def test_keyboard_interrupt_in_an_event_hook_gives_the_connection_back() -> None:
    """on_acquire / on_release raising a BaseException never strands a connection."""
    armed = {"acquire": True, "release": True}

    def hook(name: str) -> Any:
        def run(conn: object) -> None:
            if armed[name]:
                armed[name] = False
                raise KeyboardInterrupt

        return run

    pool: ConnectionPool[FakeConnection] = ConnectionPool(
        FakeConnector(),
        max_size=1,
        timeout=5,
        on_acquire=hook("acquire"),
        on_release=hook("release"),
    )
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()
    conn = pool.acquire()
    with pytest.raises(KeyboardInterrupt):
        conn.close()
    assert pool.stats().in_use == 0
    with pool.connection() as c:  # the connection is still there, pooled
        assert c.raw.id == 1
    pool.close()


class InterruptingClose(FakeConnector):
    """Raises KeyboardInterrupt once, inside close()."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def close(self, conn: FakeConnection) -> None:
        super().close(conn)
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt


def test_keyboard_interrupt_closing_another_connection_during_acquire_loses_nothing() -> None:
    """An acquire that retires an expired connection closes it before returning; a
    KeyboardInterrupt out of that close reaches the caller, and the connection the
    caller was about to get goes back to the pool instead of staying "in use"."""
    now = [0.0]
    fake = InterruptingClose()
    pool = ConnectionPool(
        fake, max_size=2, max_lifetime=10, lifetime_jitter=0, timeout=5, clock=lambda: now[0]
    )
    a = pool.acquire()  # opened at t=0, expires at t=10
    now[0] = 5.0
    b = pool.acquire()  # opened at t=5, expires at t=15
    b.close()
    a.close()  # LIFO: a (expired by t=12) is on top, b under it
    now[0] = 12.0
    fake.armed = True
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()  # retires a, takes b, then closing a raises
    stats = pool.stats()
    assert (stats.in_use, stats.idle) == (0, 1)
    with pool.connection(timeout=5) as c:
        assert c.raw is fake.connections[1]  # b, served again
    pool.close()
    assert fake.open_connections == []
