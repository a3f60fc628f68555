"""The asyncio twin of the keyed pool (see ``_keyed.py`` for the model)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from poolkit import _fork
from poolkit._errors import PoolClosed, ReleaseError
from poolkit._validate import check_callable
from poolkit.connections._async import AsyncConnectionPool
from poolkit.connections._core import broken_error
from poolkit.connections._driver import run_async_cleaner
from poolkit.connections._keyed import counters_only, keyed_setup, sum_stats
from poolkit.connections._lease import AsyncLease
from poolkit.connections._options import DEFAULT_MAX_SIZE
from poolkit.connections._protocols import AsyncConnector
from poolkit.connections._proxy import AsyncPooledConnection
from poolkit.connections._stats import ConnectionPoolStats

__all__ = ["AsyncKeyedConnectionPool"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


class AsyncKeyedConnectionPool(Generic[K, C]):
    """The asyncio twin of :class:`KeyedConnectionPool` (same arguments).

    ``connector_for_key`` returns an :class:`~poolkit.AsyncConnector`.
    """

    def __init__(
        self,
        connector_for_key: Callable[[K], AsyncConnector[C]],
        *,
        max_size_per_key: int = DEFAULT_MAX_SIZE,
        max_idle_per_key: int | None = None,
        max_size: int | None = None,
        max_idle: int | None = None,
        **options: Any,
    ) -> None:
        self._factory = check_callable("connector_for_key", connector_for_key)
        self._options, self._budget, probe = keyed_setup(
            "AsyncKeyedConnectionPool",
            max_size_per_key,
            max_idle_per_key,
            max_size,
            max_idle,
            options,
        )
        self._clock = probe._clock
        self._forgotten = counters_only(probe.stats())
        self._pools: dict[K, AsyncConnectionPool[C]] = {}
        self._users: dict[K, int] = {}
        self._closed = False
        self._broken: BaseException | None = None
        self._wake: asyncio.Event | None = None
        self._cleaner: asyncio.Task[None] | None = None
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        self._pools = {}
        self._users = {}
        self._budget.forget_all()
        self._wake = None
        self._cleaner = None

    def _start_cleaner(self) -> asyncio.Event:
        # One task for every key, started on first use (it needs the loop);
        # sub-pools rouse its event when they get an earlier deadline.
        wake = self._wake = asyncio.Event()
        self._cleaner = asyncio.get_running_loop().create_task(
            run_async_cleaner(weakref.ref(self), wake, self._clock)
        )
        return wake

    def _enter(self, key: K) -> AsyncConnectionPool[C]:
        if self._closed:
            raise PoolClosed("the keyed connection pool is closed; create a new pool")
        if self._broken is not None:
            raise broken_error(self._broken) from self._broken
        pool = self._pools.get(key)
        if pool is None:
            pool = _AsyncSubPool(
                self._factory(key), _budget=self._budget, _keyed=True, **self._options
            )
            pool._parent = self
            pool._cleaner_event = self._wake or self._start_cleaner()
            pool._key = key
            self._pools[key] = pool
            self._budget.cores[pool._core] = None
        self._users[key] = self._users.get(key, 0) + 1
        return pool

    def _break(self, cause: BaseException) -> None:
        """The cleaner died: refuse service from now on (see ``DriverBase._break``)."""
        self._broken = cause
        for pool in list(self._pools.values()):
            if pool._loop is not None:
                pool._break(cause)
        self._settle(None)

    def _flush_touched(self) -> None:
        """Flush the keys the budget changed on another key's behalf."""
        touched = {id(c.owner): c.owner for c in self._budget.touched}
        self._budget.touched = []
        for sub in touched.values():
            if sub._core.dirty and sub._loop is not None:
                sub._flush()

    def _settle(self, pool: AsyncConnectionPool[C] | None) -> None:
        """Flush the outboxes an operation on ``pool`` filled; forget emptied keys.

        Visits ``pool`` and the keys the budget touched for it (``None``: all).
        """
        touched = {id(c.owner): c.owner for c in self._budget.touched}
        self._budget.touched = []
        if pool is None:
            touched.update((id(p), p) for p in self._pools.values())
        elif pool._core in self._budget.cores:
            touched[id(pool)] = pool
        for sub in touched.values():
            if sub._core.dirty and sub._loop is not None:
                sub._flush()
        for sub in touched.values():
            key, core = sub._key, sub._core
            if self._pools.get(key) is not sub:
                continue
            if not (core.size or core.waiters or core.dirty or self._users.get(key)):
                del self._pools[key]
                self._users.pop(key, None)
                del self._budget.cores[core]
                self._forgotten = sum_stats(
                    [self._forgotten, counters_only(core.stats())], self._budget
                )

    async def acquire(self, key: K, timeout: float | None = None) -> AsyncPooledConnection[C]:
        """Check out a connection to ``key`` (see :meth:`KeyedConnectionPool.acquire`)."""
        pool = self._enter(key)
        try:
            return await pool.acquire(timeout)
        finally:
            self._users[key] -= 1
            self._settle(pool)

    async def release(self, conn: AsyncPooledConnection[C]) -> None:
        """Give a connection back to its key's pool.

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
        """
        await self._owner_of(conn).release(conn)

    async def discard(self, conn: AsyncPooledConnection[C], reason: str = "discarded") -> None:
        """Close a checked-out connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        await self._owner_of(conn).discard(conn, reason)

    def _owner_of(self, conn: AsyncPooledConnection[C]) -> AsyncConnectionPool[C]:
        pool = getattr(conn, "_pool", None)
        if not isinstance(pool, _AsyncSubPool) or pool._budget is not self._budget:
            raise ReleaseError("this connection was not acquired from this keyed pool")
        return pool

    def connection(self, key: K, timeout: float | None = None) -> _AsyncKeyedLease[K, C]:
        """``async with kpool.connection(key) as conn:``."""
        return _AsyncKeyedLease(self, key, timeout)

    def keys(self) -> list[K]:
        """The keys that currently have connections or waiters."""
        return list(self._pools)

    def stats(self) -> ConnectionPoolStats:
        """Totals across keys."""
        parts = [p._core.stats() for p in self._pools.values()]
        stats = sum_stats([*parts, self._forgotten], self._budget)
        if self._broken is not None:
            stats = dataclasses.replace(stats, broken=True)
        return stats

    def stats_by_key(self) -> dict[K, ConnectionPoolStats]:
        """Each key's own statistics."""
        return {k: p._core.stats() for k, p in self._pools.items()}

    def maintain(self) -> float:
        """The cleaner's pass over every key."""
        pools = [p for p in self._pools.values() if p._loop is not None]
        next_wake = min((p.maintain() for p in pools), default=math.inf)
        self._settle(None)
        return next_wake

    def drain(self) -> None:
        """Close every idle connection now and every busy one when it returns."""
        for pool in list(self._pools.values()):
            pool.drain()
        self._settle(None)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def close(self, timeout: float | None = None) -> None:
        """Close every key's pool. Idempotent."""
        self._closed = True
        if self._cleaner is not None:
            self._cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleaner
        for pool in list(self._pools.values()):
            await pool.close(timeout)

    async def __aenter__(self) -> AsyncKeyedConnectionPool[K, C]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        s = self.stats()
        state = "closed " if self._closed else "broken " if s.broken else ""
        return (
            f"<AsyncKeyedConnectionPool {state}[{len(self._pools)} keys | size {s.size}: "
            f"{s.idle} idle, {s.in_use} in use | {s.waiting} waiting]>"
        )


class _AsyncKeyedLease(Generic[K, C]):
    __slots__ = ("_key", "_lease", "_pool", "_timeout")

    def __init__(self, pool: AsyncKeyedConnectionPool[K, C], key: K, timeout: float | None) -> None:
        self._pool, self._key, self._timeout = pool, key, timeout

    async def __aenter__(self) -> AsyncPooledConnection[C]:
        proxy = await self._pool.acquire(self._key, self._timeout)
        # The sub-pool's own lease: commit, release or discard on exit.
        self._lease = AsyncLease(proxy._pool, self._timeout)
        self._lease._proxy = proxy
        return proxy

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        await self._lease.__aexit__(exc_type, exc, tb)  # the sub-pool settles its parent


class _AsyncSubPool(AsyncConnectionPool[C]):
    """One key's pool; every return settles the parent (see ``_keyed._SubPool``)."""

    _parent: AsyncKeyedConnectionPool[Any, C]

    async def release(self, conn: AsyncPooledConnection[C]) -> None:
        await super().release(conn)
        self._parent._settle(self)

    async def discard(self, conn: AsyncPooledConnection[C], reason: str = "discarded") -> None:
        await super().discard(conn, reason)
        self._parent._settle(self)

    def _after_closes(self) -> None:
        # A close freed a slot of the shared budget (see _keyed._SubPool).
        super()._after_closes()
        self._parent._settle(self)

    def _flush(self) -> None:
        super()._flush()
        # Close what this key evicted elsewhere now (see _keyed._SubPool).
        self._parent._flush_touched()
