# Generated from src/poolkit/connections/_keyed_async.py by scripts/gen_sync.py: do not edit.
# Change the source, then run `python scripts/gen_sync.py`.
"""Keyed pools: one sub-pool per key (an address, an origin) under global caps.

The net/http Transport idle pool and gomemcache's per-address free lists:
``max_size_per_key`` (net/http ``MaxConnsPerHost``, counting connections being
dialled), ``max_idle_per_key`` (``MaxIdleConnsPerHost``), and ``max_size`` /
``max_idle`` across keys (``MaxIdleConns``), with the least recently used idle
connection of any key closed to make room (see ``_budget.py``). Waiters queue
per key. A key's sub-pool is forgotten once it holds no connection and no
waiter, so the key map does not grow without bound.

Every sub-pool is a full pool over the shared budget; one cleaner serves every
key. One source, two twins: the asyncio keyed pool is written by hand and
``scripts/gen_sync.py`` writes the threaded one from it, which shares one lock
across its keys (the statements marked ``# locked``) so the global counts stay
exact.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack, overload

from poolkit import _fork, _registry
from poolkit._errors import PoolClosed, ReleaseError
from poolkit._typing import with_default
from poolkit._validate import check_callable
from poolkit.connections._compat import Runner, new_lock
from poolkit.connections._core import broken_error
from poolkit.connections._keyed_common import counters_only, keyed_setup, sum_stats
from poolkit.connections._leaks import Holder
from poolkit.connections._lease import Lease
from poolkit.connections._options import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_SIZE, KeyOptions
from poolkit.connections._pooled import PooledConnection, PooledConnectionBase
from poolkit.connections._protocols import Connector, ProxiedConnector
from poolkit.connections._run import RunFn
from poolkit.connections._stats import ConnectionPoolStats
from poolkit.connections._sync import ConnectionPool

# sum_stats too: the memcache adapter imports it from the threaded twin.
__all__ = ["KeyedConnectionPool", "sum_stats"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")
T = TypeVar("T")
if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    # What acquire() hands out, as for ConnectionPool.
    P = DefaultTypeVar("P", bound=PooledConnectionBase[Any], default=PooledConnection[C])
else:
    P = TypeVar("P")


class KeyedConnectionPool(Generic[K, C, P]):
    """A thread-safe pool of connections per key, with per-key and global caps.

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

    # For type checkers, as ConnectionPool's: what acquire() hands out
    # follows the connectors' proxy_class; the options are checked by name.
    @overload
    def __init__(
        self: KeyedConnectionPool[K, C, P],
        connector_for_key: Callable[[K], ProxiedConnector[C, P]],
        *,
        max_size_per_key: int = ...,
        max_idle_per_key: int | None = ...,
        max_size: int | None = ...,
        max_idle: int | None = ...,
        **options: Unpack[KeyOptions[C]],
    ) -> None: ...
    @overload
    def __init__(
        self: KeyedConnectionPool[K, C, PooledConnection[C]],
        connector_for_key: Callable[[K], Connector[C]],
        *,
        max_size_per_key: int = ...,
        max_idle_per_key: int | None = ...,
        max_size: int | None = ...,
        max_idle: int | None = ...,
        **options: Unpack[KeyOptions[C]],
    ) -> None: ...
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
        # One name for the keyed pool; its keys' pools log and name threads with it.
        self._name = options["name"] = _registry.name_for(self, options.get("name"))
        self._options, self._budget, probe = keyed_setup(
            "KeyedConnectionPool",
            max_size_per_key,
            max_idle_per_key,
            max_size,
            max_idle,
            options,
        )
        self._clock = probe._clock
        self._forgotten = counters_only(probe.stats())
        self._closed = False
        self._broken: BaseException | None = None
        self._start()
        _fork.track(self)
        _registry.add(self)

    if not TYPE_CHECKING:

        def __class_getitem__(cls, params):
            # KeyedConnectionPool[K, C] is [K, C, PooledConnection[C]].
            params = with_default(params, 2, lambda c: PooledConnection[c])
            return super().__class_getitem__(params)

    def _start(self) -> None:
        self._lock = new_lock()
        self._pools: dict[K, _SubPool[C, P]] = {}
        self._users: dict[K, int] = {}
        # One cleaner for every key, started with the first key; sub-pools
        # rouse it when they get an earlier deadline, so it wakes on time.
        self._runner = Runner("keyed", self._lock)

    def _after_fork_in_child(self) -> None:
        # Start empty, as a pool does: the parent's sub-pools (and their
        # connections) are dropped without being closed, and the lock, which
        # another thread may have held at fork time, is replaced.
        self._start()
        self._budget.forget_all()

    def _enter(self, key: K) -> _SubPool[C, P]:
        """The sub-pool of ``key`` (made on first use), counted in use until ``_leave``."""
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            return self._use(key)
        finally:
            self._lock.token.append(True)

    def _use(self, key: K) -> _SubPool[C, P]:
        if self._closed:
            raise PoolClosed("the keyed connection pool is closed; create a new pool")
        if self._broken is not None:
            raise broken_error(self._broken) from self._broken
        pool = self._pools.get(key)
        if pool is None:
            if self._runner.claim_cleaner():
                self._runner.start_cleaner(self, self._clock)
            pool = _SubPool._for_key(
                self._factory(key), self._options, self._budget, self._lock, self._runner.wake
            )
            pool._parent = self
            pool._key = key
            self._pools[key] = pool
            self._budget.cores[pool._core] = None
        self._users[key] = self._users.get(key, 0) + 1
        return pool

    def _leave_key(self, key: K) -> None:
        self._users[key] -= 1

    def _leave(self, pool: _SubPool[C, P]) -> None:
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            self._leave_key(pool._key)
        finally:
            self._lock.token.append(True)
        self._settle(pool)

    def _break(self, cause: BaseException) -> None:
        """The cleaner died: refuse service from now on (see ``DriverBase._break``)."""
        self._broken = cause
        for pool in self._snapshot():
            pool._break(cause)
        self._settle(None)

    def _snapshot(self) -> list[_SubPool[C, P]]:
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            return list(self._pools.values())
        finally:
            self._lock.token.append(True)

    def _take_touched(self, pool: _SubPool[C, P] | None, every: bool) -> list[Any]:
        """The sub-pools to flush: those the budget touched, ``pool``, or ``every`` one."""
        touched = {id(c.owner): c.owner for c in self._budget.touched}
        self._budget.touched = []
        if every:
            touched.update((id(p), p) for p in self._pools.values())
        elif pool is not None and pool._core in self._budget.cores:
            touched[id(pool)] = pool
        return list(touched.values())

    def _flush_touched(self) -> None:
        """Flush the keys the budget changed on another key's behalf."""
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            touched = self._take_touched(None, False)
        finally:
            self._lock.token.append(True)
        for sub in touched:
            if sub._core.dirty:
                sub._flush()

    def _settle(self, pool: _SubPool[C, P] | None) -> None:
        """Flush the outboxes an operation on ``pool`` filled; forget emptied keys.

        Only ``pool`` and the keys the budget touched on its behalf are visited
        (``None``: every key), so an operation costs the same with 10 keys or
        10 000.
        """
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            touched = self._take_touched(pool, pool is None)
        finally:
            self._lock.token.append(True)
        for sub in touched:
            if sub._core.dirty:
                sub._flush()
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            self._forget_emptied(touched)
        finally:
            self._lock.token.append(True)

    def _forget_emptied(self, touched: list[Any]) -> None:
        for sub in touched:
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

    def acquire(self, key: K, timeout: float | None = None) -> P:
        """Check out a connection to ``key``; wait up to ``timeout`` seconds.

        Raises:
            PoolTimeout: none became free in time.
            PoolOverload: too many waiters for this key (``max_waiting``).
            PoolClosed: the pool is closed.
            PoolBroken: the pool's cleaner died; chained from the cause.
        """
        pool = self._enter(key)
        try:
            proxy = pool.acquire(timeout)
        except BaseException:
            self._leave(pool)
            raise
        try:
            self._leave(pool)
        except BaseException:
            # Closing a connection the budget evicted for this key raised (a
            # KeyboardInterrupt in connector.close or on_discard): this caller
            # gets the error, and the connection it was about to get goes back.
            pool.release(proxy)
            raise
        return proxy

    def release(self, conn: P) -> None:
        """Give a connection back to its key's pool.

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
        """
        self._owner_of(conn).release(conn)

    def discard(self, conn: P, reason: str = "discarded") -> None:
        """Close a checked-out connection instead of giving it back (it is unusable).

        The same as the proxy's ``discard()`` (fatih/pool ``MarkUnusable``).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        self._owner_of(conn).discard(conn, reason)

    def _owner_of(self, conn: P) -> _SubPool[C, P]:
        pool = getattr(conn, "_pool", None)
        if not isinstance(pool, _SubPool) or pool._budget is not self._budget:
            raise ReleaseError("this connection was not acquired from this keyed pool")
        return pool

    def connection(self, key: K, timeout: float | None = None) -> _KeyedLease[K, P]:
        """``with kpool.connection(key) as conn:`` — acquire, then release on exit."""
        return _KeyedLease(self, key, timeout)

    def run(
        self,
        key: K,
        fn: RunFn[T],
        *args: Any,
        retry: str = "safe",
        timeout: float | None = None,
    ) -> T:
        """``fn(conn, *args)`` on a connection to ``key``, with database/sql's
        bad-connection retry (see :meth:`ConnectionPool.run`); the tries stay on
        ``key``, the last one on a new connection to it.

        Raises:
            TypeError, ValueError: a bad ``fn`` or ``retry``.
            PoolTimeout, PoolClosed, PoolOverload: from the checkout.
            Exception: ``fn``'s error, when it may not (or can no longer) be retried.
        """
        pool = self._enter(key)
        try:
            return pool.run(fn, *args, retry=retry, timeout=timeout)
        finally:
            self._leave(pool)

    def keys(self) -> list[K]:
        """The keys that currently have connections or waiters."""
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            return list(self._pools)
        finally:
            self._lock.token.append(True)

    def stats(self) -> ConnectionPoolStats:
        """Totals across keys (``max_size`` is the global cap when set)."""
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            parts = [p._core.stats() for p in self._pools.values()]
        finally:
            self._lock.token.append(True)
        stats = sum_stats([*parts, self._forgotten], self._budget, self._name)
        if self._broken is not None:
            stats = dataclasses.replace(stats, broken=True)
        return stats

    def stats_by_key(self) -> dict[K, ConnectionPoolStats]:
        """Each key's own statistics."""
        while True:
            try:
                del self._lock.token[0]
                break
            except IndexError:
                self._lock.wait_turn()
        try:
            return {k: p._core.stats() for k, p in self._pools.items()}
        finally:
            self._lock.token.append(True)

    def holders(self) -> list[Holder]:
        """Who holds each busy connection, across keys, longest-held first."""
        return sorted(
            (h for p in self._snapshot() for h in p.holders()),
            key=lambda h: h.held_for,
            reverse=True,
        )

    def drain(self) -> None:
        """Close every idle connection now and every busy one when it returns."""
        for pool in self._snapshot():
            pool.drain()
        self._settle(None)

    # net/http Transport.CloseIdleConnections.
    close_idle = drain

    def maintain(self) -> float:
        """The cleaner's pass over every key (see :meth:`ConnectionPool.maintain`)."""
        next_wake = min((p.maintain() for p in self._snapshot()), default=math.inf)
        self._settle(None)
        return next_wake

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def name(self) -> str:
        """The pool's name (given, or generated like ``KeyedConnectionPool-1``)."""
        return self._name

    def close(self, timeout: float | None = None) -> None:
        """Close every key's pool (see :meth:`ConnectionPool.close`). Idempotent."""
        self._closed = True
        pools = self._snapshot()
        self._runner.stop()
        for pool in pools:
            pool.close(DEFAULT_CLOSE_TIMEOUT if timeout is None else timeout)
        self._runner.join(math.inf)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.stats()
        state = "closed " if self._closed else "broken " if s.broken else ""
        return (
            f"<KeyedConnectionPool {self._name!r} {state}[{len(self._pools)} keys | "
            f"size {s.total}: "
            f"{s.idle} idle, {s.in_use} in use, {s.creating} creating | {s.waiting} waiting]>"
        )


# The proxy a keyed lease hands out (the pool's P; a default needs C in scope).
L = TypeVar("L", bound="PooledConnectionBase[Any]")


class _KeyedLease(Generic[K, L]):
    __slots__ = ("_key", "_lease", "_pool", "_timeout")

    def __init__(self, pool: KeyedConnectionPool[K, Any, L], key: K, timeout: float | None) -> None:
        self._pool, self._key, self._timeout = pool, key, timeout

    def __enter__(self) -> L:
        proxy = self._pool.acquire(self._key, self._timeout)
        # The sub-pool's own lease: commit, release or discard on exit.
        self._lease = Lease(proxy._pool, self._timeout)
        self._lease._proxy = proxy
        return proxy

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._lease.__exit__(exc_type, exc, tb)  # the sub-pool settles its parent


class _SubPool(ConnectionPool[C, P]):
    """One key's pool. Every return, however it is made (the keyed pool's
    ``release``, the proxy's ``close()`` or ``discard()``, a ``with`` block),
    settles the parent: closes what the global caps evicted elsewhere and
    forgets the key once it has nothing left."""

    _parent: KeyedConnectionPool[Any, C, P]

    def release(self, conn: P) -> None:
        super().release(conn)
        self._parent._settle(self)

    def discard(self, conn: P, reason: str = "discarded") -> None:
        super().discard(conn, reason)
        self._parent._settle(self)

    def _after_closes(self) -> None:
        # Closes free slots in the shared budget: another key may take them,
        # and this key may now be empty and forgotten.
        super()._after_closes()
        self._parent._settle(self)

    def _flush(self) -> None:
        super()._flush()
        # This key's operation may have evicted another key's idle connection
        # to make room: close it now, not when this (maybe waiting) caller
        # returns, since the room exists only once that close has returned.
        self._parent._flush_touched()
