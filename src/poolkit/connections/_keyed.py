"""Keyed pools: one sub-pool per key (an address, an origin) under global caps.

The net/http Transport idle pool and gomemcache's per-address free lists:
``max_size_per_key`` (net/http ``MaxConnsPerHost``, counting connections being
dialled), ``max_idle_per_key`` (``MaxIdleConnsPerHost``), and ``max_size`` /
``max_idle`` across keys (``MaxIdleConns``), with the least recently used idle
connection of any key closed to make room (see ``_budget.py``). Waiters queue
per key. A key's sub-pool is forgotten once it holds no connection and no
waiter, so the key map does not grow without bound.

Every sub-pool is a full :class:`ConnectionPool` (or async twin) over the
shared core; the sync pool shares one lock across keys so the global counts
stay exact.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from poolkit import _fork
from poolkit._errors import PoolClosed, ReleaseError
from poolkit._validate import check_callable, check_optional_int
from poolkit.connections._budget import Budget
from poolkit.connections._core import broken_error
from poolkit.connections._driver import run_cleaner
from poolkit.connections._leaks import Holder
from poolkit.connections._options import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_SIZE
from poolkit.connections._protocols import Connector
from poolkit.connections._proxy import PooledConnection
from poolkit.connections._stats import ConnectionPoolStats
from poolkit.connections._sync import ConnectionPool

__all__ = ["KeyedConnectionPool", "check_caps", "counters_only", "sum_stats", "validate_options"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


def check_caps(
    max_size_per_key: object, max_idle_per_key: object, max_size: object, max_idle: object
) -> tuple[int, int | None, int | None, int | None]:
    per_key = check_optional_int("max_size_per_key", max_size_per_key, minimum=1)
    idle_per_key = check_optional_int("max_idle_per_key", max_idle_per_key, minimum=0)
    total = check_optional_int("max_size", max_size, minimum=1)
    idle = check_optional_int("max_idle", max_idle, minimum=0)
    return (DEFAULT_MAX_SIZE if per_key is None else per_key), idle_per_key, total, idle


def sum_stats(parts: list[ConnectionPoolStats], budget: Budget) -> ConnectionPoolStats:
    reasons: dict[str, int] = {}
    for s in parts:
        for reason, n in s.closed_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    total = budget.max_size
    return ConnectionPoolStats(
        size=sum(s.size for s in parts),
        idle=sum(s.idle for s in parts),
        in_use=sum(s.in_use for s in parts),
        creating=sum(s.creating for s in parts),
        closing=sum(s.closing for s in parts),
        waiting=sum(s.waiting for s in parts),
        min_size=sum(s.min_size for s in parts),
        max_size=int(total) if not math.isinf(total) else sum(s.max_size for s in parts),
        acquired=sum(s.acquired for s in parts),
        waited=sum(s.waited for s in parts),
        waited_for_create=sum(s.waited_for_create for s in parts),
        wait_time=sum(s.wait_time for s in parts),
        timeouts=sum(s.timeouts for s in parts),
        overloads=sum(s.overloads for s in parts),
        created=sum(s.created for s in parts),
        create_errors=sum(s.create_errors for s in parts),
        closed_by_reason=reasons,
        broken=any(s.broken for s in parts),
    )


def counters_only(stats: ConnectionPoolStats) -> ConnectionPoolStats:
    """A forgotten key's counters, with its gauges zeroed (it holds nothing)."""
    return dataclasses.replace(
        stats,
        size=0,
        idle=0,
        in_use=0,
        creating=0,
        closing=0,
        waiting=0,
        min_size=0,
        max_size=0,
        broken=False,
    )


class KeyedConnectionPool(Generic[K, C]):
    """Thread-safe connection pools per key, with per-key and global caps.

    Args:
        connector_for_key: ``key -> Connector`` (called once per new key).
        max_size_per_key: cap on one key's connections, counting those being opened.
        max_idle_per_key: cap on one key's idle connections (default: its max size).
        max_size: cap across keys (``None``: only the per-key caps).
        max_idle: cap on idle connections across keys (``None``: none).
        **options: any other :class:`ConnectionPool` option (``timeout``,
            ``max_lifetime``, ``max_idle_time``, ``order``, ``leak_timeout``...),
            applied to every key.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        connector_for_key: Callable[[K], Connector[C]],
        *,
        max_size_per_key: int = DEFAULT_MAX_SIZE,
        max_idle_per_key: int | None = None,
        max_size: int | None = None,
        max_idle: int | None = None,
        **options: Any,
    ) -> None:
        self._factory = check_callable("connector_for_key", connector_for_key)
        self._options, self._budget, self._validate = keyed_setup(
            "KeyedConnectionPool", max_size_per_key, max_idle_per_key, max_size, max_idle, options
        )
        self._forgotten = counters_only(self._validate.stats())
        self._lock = threading.Lock()
        self._pools: dict[K, ConnectionPool[C]] = {}
        self._users: dict[K, int] = {}
        self._closed = False
        self._broken: BaseException | None = None
        self._start_cleaner()
        _fork.track(self)

    def _start_cleaner(self) -> None:
        self._stop = threading.Event()
        # Every sub-pool rouses this event when it gets an earlier deadline,
        # so one cleaner serves all keys and still wakes exactly on time.
        self._wake = threading.Event()
        self._cleaner = threading.Thread(
            target=run_cleaner,
            args=(weakref.ref(self), self._stop, self._wake, self._validate._clock),
            name="poolkit-keyed-cleaner",
            daemon=True,
        )
        self._cleaner.start()

    def _after_fork_in_child(self) -> None:
        # Start empty, as a ConnectionPool does: the parent's sub-pools (and
        # their connections) are dropped without being closed, and the lock,
        # which another thread may have held at fork time, is replaced.
        self._lock = threading.Lock()
        self._pools = {}
        self._users = {}
        self._budget.forget_all()
        if not self._closed:
            self._start_cleaner()

    def _enter(self, key: K) -> ConnectionPool[C]:
        with self._lock:
            if self._closed:
                raise PoolClosed("the keyed connection pool is closed; create a new pool")
            if self._broken is not None:
                raise broken_error(self._broken) from self._broken
            pool = self._pools.get(key)
            if pool is None:
                pool = _SubPool(
                    self._factory(key), _budget=self._budget, _lock=self._lock, **self._options
                )
                pool._parent = self
                pool._cleaner_event = self._wake
                self._pools[key] = pool
                self._budget.cores[pool._core] = None
                pool._key = key
            self._users[key] = self._users.get(key, 0) + 1
            return pool

    def _break(self, cause: BaseException) -> None:
        """The cleaner died: refuse service from now on (see ``DriverBase._break``)."""
        with self._lock:
            self._broken = cause
            pools = list(self._pools.values())
        for pool in pools:
            pool._break(cause)
        self._settle(None)

    def _flush_touched(self) -> None:
        """Flush the keys the budget changed on another key's behalf."""
        with self._lock:
            touched = {id(c.owner): c.owner for c in self._budget.touched}
            self._budget.touched = []
        for sub in touched.values():
            if sub._core.dirty:
                sub._flush()

    def _leave(self, pool: ConnectionPool[C]) -> None:
        with self._lock:
            self._users[pool._key] -= 1
        self._settle(pool)

    def _settle(self, pool: ConnectionPool[C] | None) -> None:
        """Flush the outboxes an operation on ``pool`` filled; forget emptied keys.

        Only ``pool`` and the keys the budget touched on its behalf are visited
        (``None``: every key), so an operation costs the same with 10 keys or
        10 000.
        """
        with self._lock:
            touched = {id(c.owner): c.owner for c in self._budget.touched}
            self._budget.touched = []
            if pool is None:
                touched.update((id(p), p) for p in self._pools.values())
            elif pool._core in self._budget.cores:
                touched[id(pool)] = pool
        for sub in touched.values():
            if sub._core.dirty:
                sub._flush()
        with self._lock:
            for sub in touched.values():
                key, core = sub._key, sub._core
                if self._pools.get(key) is not sub:
                    continue
                if not (core.size or core.waiters or core.dirty or self._users.get(key)):
                    del self._pools[key]
                    self._users.pop(key, None)
                    del self._budget.cores[core]
                    # Keep its counters: stats() totals must not drop with a key.
                    self._forgotten = sum_stats(
                        [self._forgotten, counters_only(core.stats())], self._budget
                    )

    def acquire(self, key: K, timeout: float | None = None) -> PooledConnection[C]:
        """Check out a connection to ``key``; wait up to ``timeout`` seconds.

        Raises:
            PoolTimeout: none became free in time.
            PoolOverload: too many waiters for this key (``max_waiting``).
            PoolClosed: the pool is closed.
            PoolBroken: the pool's cleaner died; chained from the cause.
        """
        pool = self._enter(key)
        try:
            return pool.acquire(timeout)
        finally:
            self._leave(pool)

    def release(self, conn: PooledConnection[C]) -> None:
        """Give a connection back to its key's pool.

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
        """
        self._owner_of(conn).release(conn)

    def discard(self, conn: PooledConnection[C], reason: str = "discarded") -> None:
        """Close a checked-out connection instead of giving it back (it is unusable).

        The same as the proxy's ``discard()`` (fatih/pool ``MarkUnusable``).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        self._owner_of(conn).discard(conn, reason)

    def _owner_of(self, conn: PooledConnection[C]) -> ConnectionPool[C]:
        pool = getattr(conn, "_pool", None)
        if not isinstance(pool, _SubPool) or pool._budget is not self._budget:
            raise ReleaseError("this connection was not acquired from this keyed pool")
        return pool

    def connection(self, key: K, timeout: float | None = None) -> _KeyedLease[K, C]:
        """``with kpool.connection(key) as conn:`` — acquire, then release on exit."""
        return _KeyedLease(self, key, timeout)

    def keys(self) -> list[K]:
        """The keys that currently have connections or waiters."""
        with self._lock:
            return list(self._pools)

    def stats(self) -> ConnectionPoolStats:
        """Totals across keys (``max_size`` is the global cap when set)."""
        with self._lock:
            parts = [p._core.stats() for p in self._pools.values()]
            parts.append(self._forgotten)
        stats = sum_stats(parts, self._budget)
        if self._broken is not None:
            stats = dataclasses.replace(stats, broken=True)
        return stats

    def stats_by_key(self) -> dict[K, ConnectionPoolStats]:
        """Each key's own statistics."""
        with self._lock:
            return {k: p._core.stats() for k, p in self._pools.items()}

    def holders(self) -> list[Holder]:
        """Who holds each busy connection, across keys."""
        with self._lock:
            pools = list(self._pools.values())
        return sorted(
            (h for p in pools for h in p.holders()), key=lambda h: h.held_for, reverse=True
        )

    def drain(self) -> None:
        """Close every idle connection now and every busy one when it returns."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.drain()
        self._settle(None)

    close_idle = drain

    def maintain(self) -> float:
        """The cleaner's pass over every key (see :meth:`ConnectionPool.maintain`)."""
        with self._lock:
            pools = list(self._pools.values())
        next_wake = min((p.maintain() for p in pools), default=math.inf)
        self._settle(None)
        return next_wake

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self, timeout: float | None = None) -> None:
        """Close every key's pool (see :meth:`ConnectionPool.close`). Idempotent."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        self._stop.set()
        self._wake.set()
        for pool in pools:
            pool.close(DEFAULT_CLOSE_TIMEOUT if timeout is None else timeout)
        self._cleaner.join()

    def __enter__(self) -> KeyedConnectionPool[K, C]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.stats()
        state = "closed " if self._closed else "broken " if s.broken else ""
        return (
            f"<KeyedConnectionPool {state}[{len(self._pools)} keys | size {s.size}: {s.idle} idle, "
            f"{s.in_use} in use, {s.creating} creating | {s.waiting} waiting]>"
        )


class _KeyedLease(Generic[K, C]):
    __slots__ = ("_key", "_lease", "_pool", "_timeout")

    def __init__(self, pool: KeyedConnectionPool[K, C], key: K, timeout: float | None) -> None:
        self._pool, self._key, self._timeout = pool, key, timeout

    def __enter__(self) -> PooledConnection[C]:
        proxy = self._pool.acquire(self._key, self._timeout)
        self._lease = proxy._pool.connection()
        self._lease._proxy = proxy
        return proxy

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._lease.__exit__(exc_type, exc, tb)  # the sub-pool settles its parent


class _SubPool(ConnectionPool[C]):
    """One key's pool. Every return, however it is made (the keyed pool's
    ``release``, the proxy's ``close()`` or ``discard()``, a ``with`` block),
    settles the parent: closes what the global caps evicted elsewhere and
    forgets the key once it has nothing left."""

    _parent: KeyedConnectionPool[Any, C]

    def release(self, conn: PooledConnection[C]) -> None:
        super().release(conn)
        self._parent._settle(self)

    def discard(self, conn: PooledConnection[C], reason: str = "discarded") -> None:
        super().discard(conn, reason)
        self._parent._settle(self)

    def _after_closes(self) -> None:
        # Closes free slots in the shared budget: another key may take them,
        # and this key may now be empty and forgotten.
        self._parent._settle(self)

    def _flush(self) -> None:
        super()._flush()
        # This key's operation may have evicted another key's idle connection
        # to make room: close it now, not when this (maybe waiting) caller
        # returns, since the room exists only once that close has returned.
        self._parent._flush_touched()


def keyed_setup(
    kind: str,
    max_size_per_key: int,
    max_idle_per_key: int | None,
    max_size: int | None,
    max_idle: int | None,
    options: dict[str, Any],
) -> tuple[dict[str, Any], Budget, ConnectionPool[Any]]:
    """Check a keyed pool's caps and per-key options (sync and async alike).

    Returns:
        The options each key's pool is built with, the cross-key budget, and
        a closed probe pool built with those options (for its clock and
        empty stats).

    Raises:
        TypeError: an option the keyed pool does not take, or of the wrong type.
        ValueError: a cap or option out of range.
    """
    per_key, idle_per_key, total, idle = check_caps(
        max_size_per_key, max_idle_per_key, max_size, max_idle
    )
    for bad in ("min_size", "max_size_per_key", "_budget", "_lock", "_keyed"):
        if bad in options:
            raise TypeError(f"{kind} does not take {bad}=")
    per_key_options = {**options, "max_size": per_key, "max_idle": idle_per_key}
    # Fail on bad options now, not at the first key.
    probe = validate_options(per_key_options)
    return per_key_options, Budget(total, idle), probe


def validate_options(options: dict[str, Any]) -> ConnectionPool[Any]:
    """Check a keyed pool's per-key options now, not at its first key.

    Returns:
        A closed pool built with them (for its clock and empty stats).

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option is out of range.
    """
    probe: ConnectionPool[Any] = ConnectionPool(_NullConnector(), **options)
    probe.close()
    return probe


class _NullConnector:
    def create(self) -> object:
        raise NotImplementedError

    def close(self, conn: object) -> None:
        raise NotImplementedError
