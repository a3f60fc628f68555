"""Stress: cancellation storms and thread hammers with faults in every hook.

Each test runs for a bounded time (about a second of load) and then checks
that nothing was lost: every connection the "server" saw created was closed
exactly once by the end (the recording connector fails on a double close),
nothing is left in use or waiting, and the server never had more than
``max_size`` connections open at once (closes are slow, so a connection being
closed still counts).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    KeyedConnectionPool,
    PoolError,
)
from tests.connections.recording import AsyncServerConnector, ServerConnector

pytestmark = pytest.mark.stress

# Seconds of load per test: enough for thousands of cycles on a 2-core machine.
LOAD_SECONDS = 1.0


class Fatal(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


class RandomFaults:
    """Raise, now and then, an Exception or a BaseException inside a hook."""

    ERRORS: tuple[type[BaseException], ...] = (
        ConnectionResetError,  # broken (the default is_broken: OSError)
        RuntimeError,  # not broken
        KeyboardInterrupt,
        Fatal,
    )

    def __init__(self, seed: int, rate: float) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.rate = rate
        self.raised = 0

    def __call__(self, hook: str) -> None:
        with self._lock:
            if self._rng.random() >= self.rate:
                return
            error = self._rng.choice(self.ERRORS)
            self.raised += 1
        raise error(f"injected into {hook}")

    def stop(self) -> None:
        self.rate = 0.0


def assert_nothing_lost(server: ServerConnector, max_size: int) -> None:
    assert server.open == set(), "connections left open at the server"
    assert server.bad_closes == [], "a connection closed twice (or never opened)"
    assert sorted(server.closed) == sorted(set(server.closed)), "a connection closed twice"
    assert len(server.closed) == server.created
    assert server.peak <= max_size


def hammer(target: Any, threads: int) -> None:
    """Run ``target(seed, stop_at)`` in threads; each must finish (no stuck waiter)."""
    stop_at = time.monotonic() + LOAD_SECONDS
    workers = [threading.Thread(target=target, args=(i, stop_at)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
        assert not t.is_alive(), "a worker is stuck"


def test_thread_hammer_with_exceptions_and_base_exceptions_in_every_hook() -> None:
    faults = RandomFaults(seed=1, rate=0.05)
    server = ServerConnector(close_delay=0.0005, faults=faults)
    pool: ConnectionPool[int] = ConnectionPool(server, max_size=4, timeout=10, ping_after=0)
    cycles = [0]
    pool_errors: list[PoolError] = []  # a timeout would mean a lost connection

    def worker(seed: int, stop_at: float) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            try:
                if rng.random() < 0.5:
                    with pool.connection() as conn:
                        if rng.random() < 0.1:
                            raise ConnectionResetError("broken in use")
                else:
                    conn = pool.acquire()
                    if rng.random() < 0.2:
                        conn.discard()
                    else:
                        conn.close()
                cycles[0] += 1
            except PoolError as exc:
                pool_errors.append(exc)
            except (Exception, KeyboardInterrupt, Fatal):
                pass  # injected: the pool must have put the connection back or closed it

    hammer(worker, threads=8)
    faults.stop()
    assert pool_errors == []
    stats = pool.stats()
    assert (stats.in_use, stats.waiting) == (0, 0)
    assert faults.raised > 10
    assert cycles[0] > 100
    pool.close()
    assert pool.stats().total == 0
    assert_nothing_lost(server, 4)


def test_keyed_thread_hammer_with_faults_stays_under_the_global_cap() -> None:
    faults = RandomFaults(seed=2, rate=0.05)
    server = ServerConnector(close_delay=0.0005, faults=faults)
    kpool: KeyedConnectionPool[str, int] = KeyedConnectionPool(
        lambda key: server, max_size_per_key=3, max_size=4, timeout=10
    )
    pool_errors: list[PoolError] = []

    def worker(seed: int, stop_at: float) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            try:
                with kpool.connection(rng.choice("abc")):
                    if rng.random() < 0.1:
                        raise ConnectionResetError("broken in use")
            except PoolError as exc:
                pool_errors.append(exc)
            except (Exception, KeyboardInterrupt, Fatal):
                pass

    hammer(worker, threads=6)
    faults.stop()
    assert pool_errors == []
    stats = kpool.stats()
    assert (stats.in_use, stats.waiting) == (0, 0)
    kpool.close()
    assert_nothing_lost(server, 4)


def test_async_cancellation_storm_loses_nothing() -> None:
    async def main() -> None:
        server = AsyncServerConnector(close_delay=0.001)
        pool: AsyncConnectionPool[int] = AsyncConnectionPool(
            server, max_size=4, timeout=10, ping_after=0
        )
        rng = random.Random(3)
        outcomes = {"served": 0, "cancelled": 0, "timeout": 0}

        async def user(delay: float, timeout: float) -> None:
            try:
                async with pool.connection(timeout=timeout):
                    await asyncio.sleep(delay)
                outcomes["served"] += 1
            except TimeoutError:
                outcomes["timeout"] += 1

        stop_at = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < stop_at:
            tasks = [
                asyncio.create_task(user(rng.random() * 0.002, rng.choice([0.001, 0.01, 5])))
                for _ in range(40)
            ]
            await asyncio.sleep(rng.random() * 0.003)
            for task in tasks:
                if rng.random() < 0.3:
                    task.cancel()
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, asyncio.CancelledError):
                    outcomes["cancelled"] += 1
                elif result is not None:
                    raise result
        stats = pool.stats()
        assert (stats.in_use, stats.waiting) == (0, 0)
        assert outcomes["served"] > 100
        assert outcomes["cancelled"] > 10
        await pool.close()
        assert pool.stats().total == 0
        assert_nothing_lost(server, 4)

    asyncio.run(main())


def test_async_keyed_cancellation_storm_loses_nothing() -> None:
    async def main() -> None:
        server = AsyncServerConnector(close_delay=0.001)
        kpool: AsyncKeyedConnectionPool[str, int] = AsyncKeyedConnectionPool(
            lambda key: server, max_size_per_key=3, max_size=4, timeout=10
        )
        rng = random.Random(4)

        async def user(key: str, delay: float) -> None:
            async with kpool.connection(key, timeout=rng.choice([0.001, 5])):
                await asyncio.sleep(delay)

        stop_at = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < stop_at:
            tasks = [
                asyncio.create_task(user(rng.choice("abc"), rng.random() * 0.002))
                for _ in range(30)
            ]
            await asyncio.sleep(rng.random() * 0.003)
            for task in tasks:
                if rng.random() < 0.3:
                    task.cancel()
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if not isinstance(result, asyncio.CancelledError | TimeoutError | None):
                    raise result
        stats = kpool.stats()
        assert (stats.in_use, stats.waiting) == (0, 0)
        await kpool.close()
        assert_nothing_lost(server, 4)

    asyncio.run(main())
