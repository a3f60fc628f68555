"""Waits of any length, and a cleaner that can never die quietly.

Any timeout a pool accepts must work: ``acquire(timeout=1e10)``,
``close(timeout=1e300)``, ``math.inf`` for "no limit", and options such as
``max_idle_time=1e300`` that make the cleaner's next deadline astronomically
far. And if the cleaner dies anyway, for whatever reason, the pool says so:
``acquire()`` raises ``PoolBroken`` chained from the cause, waiters fail with
it, ``repr()`` and ``stats()`` say broken.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time
from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    KeyedConnectionPool,
    LeakWarning,
    PoolBroken,
)
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection, FakeConnector


def collect(box: list[Any]) -> None:
    """Drop the proxies in ``box`` without release and let the GC find them."""
    box.clear()
    gc.collect()


def eventually(condition: Any, seconds: float = 10.0) -> None:
    """Wait (bounded) for state the test does not control to change."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        threading.Event().wait(0.002)


@pytest.mark.parametrize("timeout", [1e10, 1e300, math.inf])
def test_acquire_waits_with_a_huge_or_infinite_timeout(timeout: float) -> None:
    pool = ConnectionPool(FakeConnector(), max_size=1)
    held = pool.acquire()
    got: list[int] = []

    def waiter() -> None:
        with pool.connection(timeout=timeout) as c:
            got.append(c.raw.id)

    t = threading.Thread(target=waiter)
    t.start()
    eventually(lambda: pool.stats().waiting == 1)
    held.close()
    t.join(30)
    assert got == [1]
    pool.close(timeout=1e300)
    pool.close(timeout=math.inf)


def test_pool_timeout_option_takes_infinity_as_no_limit() -> None:
    pool = ConnectionPool(FakeConnector(), timeout=math.inf, max_lifetime=math.inf)
    with pool.connection():
        pass
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.acquire(timeout=-1.0)
    pool.close(timeout=1e300)


def test_async_acquire_and_close_take_huge_and_infinite_timeouts() -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(AsyncFakeConnector(), max_size=1, timeout=math.inf)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire(timeout=1e10))
        await asyncio.sleep(0)
        await held.close()
        conn = await waiter
        await conn.close()
        await pool.close(timeout=1e300)

    asyncio.run(main())


@pytest.mark.parametrize(
    "options",
    [
        {"max_idle_time": 1e300, "max_lifetime": None},
        {"max_lifetime": 1e300, "max_idle_time": None},
        {"leak_timeout": 1e300, "max_lifetime": None, "max_idle_time": None},
    ],
)
def test_cleaner_survives_a_deadline_far_beyond_what_waits_accept(
    options: dict[str, Any],
) -> None:
    """Once its next deadline is 1e300 s away, the cleaner still does its work:
    here, closing connections whose proxies were dropped without release."""
    fake = FakeConnector()
    pool: ConnectionPool[FakeConnection] = ConnectionPool(fake, max_size=4, **options)
    held = pool.acquire()
    pool.acquire().close()  # an idle connection with a far deadline
    eventually(lambda: pool._core.next_wake > 1e299)  # the cleaner planned its sleep
    for _ in range(2):
        dropped = [pool.acquire()]
        raw: FakeConnection = dropped[0].raw
        with pytest.warns(LeakWarning):
            collect(dropped)
        # Only the cleaner closes a dropped connection here.
        eventually(lambda raw=raw: raw.closed)
    assert not pool.stats().broken
    held.close()
    pool.close()


class ArmedClock(FakeClock):
    """Raises ``error`` once, on the first call from the cleaner after arming."""

    def __init__(self, in_cleaner: Any) -> None:
        super().__init__()
        self.in_cleaner = in_cleaner
        self.error: BaseException | None = None

    def __call__(self) -> float:
        error = self.error
        if error is not None and self.in_cleaner():
            self.error = None
            raise error
        return super().__call__()


def in_cleaner_thread() -> bool:
    name = threading.current_thread().name
    return name.startswith("poolkit-") and "cleaner" in name


def test_a_base_exception_in_a_cleaner_pass_is_logged_and_the_cleaner_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook raising SystemExit (``sys.exit()``) in the cleaner thread: the
    pass is logged, and the next one does what it left undone."""
    clock = ArmedClock(in_cleaner_thread)
    fake = FakeConnector()
    pool = ConnectionPool(fake, max_size=2, clock=clock, name="db")
    held = pool.acquire()
    dropped = [pool.acquire()]
    got: list[int] = []

    def waiter() -> None:
        with pool.connection(timeout=30) as c:
            got.append(c.raw.id)

    t = threading.Thread(target=waiter)
    t.start()
    eventually(lambda: pool.stats().waiting == 1)
    clock.error = SystemExit(3)
    with caplog.at_level("ERROR", logger="poolkit.connections"):
        with pytest.warns(LeakWarning):
            collect(dropped)  # rouses the cleaner: its pass fails, the next one flushes
        t.join(30)
    assert got == [3]  # the dropped connection was closed and a new one opened
    assert any("cleaner pass failed" in r.getMessage() for r in caplog.records)
    assert not pool.stats().broken
    held.close()
    pool.close()
    assert fake.open_connections == []


def die_once_in_cleaner(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make the cleaner thread itself fail once (a bug outside any hook)."""
    from poolkit.connections._driver import cleaner_pass as real

    armed = [error]

    def failing(*args: Any, **kwargs: Any) -> float | None:
        if armed and in_cleaner_thread():
            raise armed.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr("poolkit.connections._compat.cleaner_pass", failing)


def test_a_dead_cleaner_breaks_the_pool_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeConnector()
    pool = ConnectionPool(fake, max_size=2, name="db")
    held = pool.acquire()
    dropped = [pool.acquire()]
    failures: list[BaseException] = []

    def waiter() -> None:
        try:
            pool.acquire(timeout=30)
        except BaseException as exc:
            failures.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    eventually(lambda: pool.stats().waiting == 1)
    die_once_in_cleaner(monkeypatch, SystemExit(3))
    with pytest.warns(LeakWarning):
        collect(dropped)  # rouses the cleaner
    t.join(30)
    assert [type(e) for e in failures] == [PoolBroken]
    assert isinstance(failures[0].__cause__, SystemExit)
    with pytest.raises(PoolBroken, match="cleaner died") as info:
        pool.acquire(timeout=0)
    assert isinstance(info.value.__cause__, SystemExit)
    assert pool.stats().broken
    assert "broken" in repr(pool)
    held.close()  # connections still come back and close
    pool.close()
    assert fake.open_connections == []


def test_a_dead_keyed_cleaner_breaks_the_keyed_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeConnector()
    kpool: KeyedConnectionPool[str, FakeConnection] = KeyedConnectionPool(lambda key: fake)
    dropped = [kpool.acquire("a")]
    die_once_in_cleaner(monkeypatch, SystemExit(3))
    with pytest.warns(LeakWarning):
        collect(dropped)
    eventually(lambda: kpool.stats().broken)
    with pytest.raises(PoolBroken) as info:
        kpool.acquire("b", timeout=0)
    assert isinstance(info.value.__cause__, SystemExit)
    assert "broken" in repr(kpool)
    kpool.close()


class Fatal(BaseException):
    """An error no ``except Exception`` catches."""


def test_a_dead_async_cleaner_breaks_the_pool() -> None:
    async def main() -> None:
        box: list[AsyncConnectionPool[FakeConnection]] = []
        clock = ArmedClock(lambda: asyncio.current_task() is box[0]._runner.cleaner)
        pool = AsyncConnectionPool(AsyncFakeConnector(), clock=clock, timeout=30)
        box.append(pool)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        clock.error = Fatal("cleaner killed")
        pool._rouse_cleaner()
        with pytest.raises(PoolBroken) as info:
            await waiter
        assert isinstance(info.value.__cause__, Fatal)
        with pytest.raises(PoolBroken):
            await pool.acquire(timeout=0)
        assert pool.stats().broken
        assert "broken" in repr(pool)
        await held.close()
        await pool.close()

    asyncio.run(main())


def test_no_limit_waiter_is_served_once_connecting_recovers() -> None:
    fake = FakeConnector()
    fake.fail_next_creates(2)
    pool = ConnectionPool(fake, timeout=math.inf)
    with pool.connection() as c:  # retried with backoff until it opens
        assert c.raw.id == 1
    pool.close()


def test_keyed_cleaner_survives_a_far_deadline() -> None:
    fake = FakeConnector()
    kpool: KeyedConnectionPool[str, FakeConnection] = KeyedConnectionPool(
        lambda key: fake, max_idle_time=1e300, max_lifetime=None
    )
    held = kpool.acquire("a")
    kpool.acquire("a").close()  # idle, due in 1e300 s: the cleaner's next deadline
    for _ in range(2):
        dropped = [kpool.acquire("b")]
        raw: FakeConnection = dropped[0].raw
        with pytest.warns(LeakWarning):
            collect(dropped)  # rouses the keyed cleaner, which closes it
        eventually(lambda raw=raw: raw.closed)
    assert not kpool.stats().broken
    held.close()
    kpool.close()


def test_a_dead_async_keyed_cleaner_breaks_the_keyed_pool() -> None:
    async def main() -> None:
        box: list[AsyncKeyedConnectionPool[str, FakeConnection]] = []
        clock = ArmedClock(lambda: asyncio.current_task() is box[0]._runner.cleaner)
        fake = AsyncFakeConnector()
        kpool: AsyncKeyedConnectionPool[str, FakeConnection] = AsyncKeyedConnectionPool(
            lambda key: fake, clock=clock, timeout=30
        )
        box.append(kpool)
        held = await kpool.acquire("a")
        clock.error = Fatal("cleaner killed")
        assert kpool._runner.wake is not None
        kpool._runner.wake.set()
        for _ in range(20):
            if kpool.stats().broken:
                break
            await asyncio.sleep(0)
        with pytest.raises(PoolBroken) as info:
            await kpool.acquire("b", timeout=0)
        assert isinstance(info.value.__cause__, Fatal)
        assert "broken" in repr(kpool)
        await held.close()
        await kpool.close()

    asyncio.run(main())
