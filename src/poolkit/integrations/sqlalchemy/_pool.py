"""PoolkitPool: a SQLAlchemy ``Pool`` whose slots are kept by a poolkit ConnectionPool.

How the two fit: SQLAlchemy keeps each DB-API connection in a
``_ConnectionRecord``; QueuePool keeps records in a queue. Here the records
are the connections of a :class:`~poolkit.ConnectionPool` (the connector
below), so poolkit decides the limits, the waiting, lifetimes, idle expiry,
pings and leak records, and SQLAlchemy does what it always does around them:
the ``connect``/``checkout``/``checkin``/``reset`` events, reset on return
and disconnect handling.

Where each SQLAlchemy behaviour lands:

- A record is created unconnected and connects in the thread that checks it
  out (``_ConnectionRecord.get_connection``), as with QueuePool: a failed
  connect raises there at once instead of a background retry, and the
  ``connect`` event runs in that thread.
- ``pool_recycle`` and ``pool_pre_ping`` are poolkit's ``max_lifetime`` and
  ping, not SQLAlchemy's recycle-in-place: an expired or dead connection is
  closed and its slot given to a new record, so poolkit's counts
  (``closed_by_reason``) and ages stay true. The ping is the dialect's
  (``do_ping`` with SQLAlchemy's disconnect classification and
  ``handle_error`` events); a failed ping means the server dropped its
  connections, so, as SQLAlchemy does, every pooled connection is replaced.
- A connection SQLAlchemy's garbage-collection cleanup returns (a ``Session``
  or ``Connection`` dropped without ``close()``) goes back as usual, unless
  the collector runs it in the middle of a cyclic collection: that may be
  inside the poolkit pool's own locked section in this very thread, where a
  release would deadlock. Then the poolkit proxy is dropped instead, and
  poolkit's lock-free path closes the connection and warns
  (:class:`~poolkit.LeakWarning`), as for any pooled connection never given back.
- A record SQLAlchemy invalidated (``conn.invalidate()``, a disconnect error,
  a failed connect, ``detach()``, a soft invalidation) is discarded when it
  comes back, never handed out again. A pool-wide invalidation (a disconnect
  error) drains the poolkit pool: idle connections close now, busy ones when
  they come back.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection
from sqlalchemy.pool.base import _ConnectionRecord as ConnectionRecord

from poolkit._errors import PoolTimeout
from poolkit.connections._driver import DriverBase
from poolkit.connections._leaks import Holder, skip_frames_of
from poolkit.connections._stats import ConnectionPoolStats
from poolkit.connections._sync import ConnectionPool
from poolkit.integrations.sqlalchemy._options import map_options

__all__ = [
    "PoolkitPool",
    "PoolkitTimeoutError",
    "in_collection",
    "invalidated",
    "new_record",
    "ping_record",
]

# holders() and leak warnings name the line that opened the Session or the
# Connection, not the SQLAlchemy or PoolkitPool frames below it.
skip_frames_of("sqlalchemy.", "poolkit.integrations.sqlalchemy.")


class _Collecting(threading.local):
    """Whether this thread is inside a cyclic garbage collection (finalizers run there)."""

    now = False


_collecting = _Collecting()


def _track_collections(phase: str, info: dict[str, int]) -> None:
    _collecting.now = phase == "start"


def in_collection() -> bool:
    """Whether this thread is running finalizers of a cyclic garbage collection."""
    return _collecting.now


gc.callbacks.append(_track_collections)


class PoolkitTimeoutError(sa_exc.TimeoutError, PoolTimeout):
    """No connection became free within ``pool_timeout``.

    Both SQLAlchemy's ``sqlalchemy.exc.TimeoutError`` (what code written for
    QueuePool catches) and poolkit's :class:`~poolkit.PoolTimeout`; the
    message names who holds the connections.
    """


class _Record(ConnectionRecord):
    """SQLAlchemy's connection record, shown as its DB-API connection in poolkit's reports."""

    def __repr__(self) -> str:
        if self.dbapi_connection is None:
            return "<SQLAlchemy connection record, not connected>"
        return repr(self.dbapi_connection)


def new_record(pool: Pool) -> ConnectionRecord:
    """An unconnected record: it connects at checkout, in the caller's thread."""
    return _Record(pool, connect=False)


class _RecordConnector:
    """poolkit's connector for a PoolkitPool: its connections are SQLAlchemy's records."""

    def __init__(self, pool: PoolkitPool) -> None:
        self._pool = pool

    def create(self) -> ConnectionRecord:
        return new_record(self._pool)

    def close(self, record: ConnectionRecord) -> None:
        record.close()  # fires SQLAlchemy's close event; nothing if never connected

    def ping(self, record: ConnectionRecord) -> bool:
        return ping_record(self._pool, record)


def ping_record(pool: PoolkitPool, record: ConnectionRecord) -> bool:
    """The dialect's ping; False (and the whole pool replaced) on a disconnect.

    A record not connected yet is not pinged: it connects next, and
    SQLAlchemy does not ping a fresh connection either. An error that is not
    a disconnect propagates, and poolkit discards the connection too.
    """
    dbapi_connection = record.dbapi_connection
    if dbapi_connection is None:
        return True
    dialect: Any = pool._dialect
    ping = getattr(dialect, "_do_ping_w_event", dialect.do_ping)
    if ping(dbapi_connection):
        return True
    pool._invalidate_all()
    return False


class PoolkitPool(Pool):
    """A SQLAlchemy pool backed by a poolkit :class:`~poolkit.ConnectionPool`.

    ``create_engine(url, poolclass=PoolkitPool, pool_size=5, max_overflow=10)``.
    SQLAlchemy's pool arguments keep their meaning and ``QueuePool``'s
    defaults; ``create_engine`` passes them under its own names
    (``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``, ``pool_use_lifo``).

    Args:
        creator: the DB-API connect function (``create_engine`` supplies it).
        pool_size: connections kept open when idle; more close on return.
            0: no limit on idle connections.
        max_overflow: connections allowed beyond ``pool_size``; -1: no cap.
        timeout: seconds a checkout waits for a connection (``pool_timeout``),
            then :class:`PoolkitTimeoutError`.
        recycle: seconds after which a connection is closed and replaced
            (``pool_recycle``); -1: never.
        pre_ping: ping each connection at checkout and replace a dead one
            (``pool_pre_ping``).
        use_lifo: reuse the most recently returned connection first
            (``pool_use_lifo``); default: poolkit's LIFO.
        poolkit_options: other :class:`~poolkit.ConnectionPool` options:
            ``max_idle_time`` (default: never), ``max_lifetime`` (instead of
            ``pool_recycle``), ``lifetime_jitter``, ``ping_after`` (with or
            instead of ``pool_pre_ping``: ping only connections idle longer),
            ``leak_timeout``, ``max_waiting``, ``order``, ``name``, ``clock``.
        **kw: the base ``Pool``'s arguments (``echo``, ``logging_name``,
            ``reset_on_return``, ``events``, ``dialect``).

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range, or given twice.
    """

    # A thread pool: create_async_engine refuses it (AsyncPoolkitPool is for that).
    _is_asyncio = False

    def __init__(
        self,
        creator: Any,
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float = 30.0,
        recycle: float = -1,
        pre_ping: bool = False,
        use_lifo: bool | None = None,
        poolkit_options: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        options = map_options(
            pool_size=pool_size,
            max_overflow=max_overflow,
            timeout=timeout,
            recycle=recycle,
            pre_ping=pre_ping,
            use_lifo=use_lifo,
            poolkit_options=poolkit_options,
        )
        # Recycle and pre-ping are poolkit's here (see the module docstring):
        # SQLAlchemy's own would reconnect a record in place, behind the
        # back of the pool that counts it.
        super().__init__(creator, recycle=-1, pre_ping=False, **kw)
        self._args: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "timeout": timeout,
            "recycle": recycle,
            "pre_ping": pre_ping,
            "use_lifo": use_lifo,
            "poolkit_options": None if poolkit_options is None else dict(poolkit_options),
        }
        if not options.get("name") and self._orig_logging_name:
            options["name"] = self._orig_logging_name
        # The poolkit pool, for what both kinds share (stats, drain, limits).
        self._kit: DriverBase = self._build_connections(options)
        # The poolkit proxy of each checked-out record, until it comes back.
        self._leases: dict[ConnectionPoolEntry, Any] = {}

    def _build_connections(self, options: dict[str, Any]) -> DriverBase:
        self._connections: ConnectionPool[ConnectionRecord] = ConnectionPool(
            _RecordConnector(self), **options
        )
        return self._connections

    # -- the Pool contract ------------------------------------------------------

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            proxy = self._connections.acquire()
        except PoolTimeout as exc:
            raise self._timeout_error(exc) from exc
        record: ConnectionRecord = proxy.raw
        self._leases[record] = proxy
        return record

    def _timeout_error(self, exc: PoolTimeout) -> PoolkitTimeoutError:
        args = self._args
        return PoolkitTimeoutError(
            f"{type(self).__name__} limit of size {args['pool_size']} overflow "
            f"{args['max_overflow']} reached, connection timed out, timeout "
            f"{self._kit._timeout:.2f}: {exc}",
            code="3o7r",
        )

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        proxy = self._leases.pop(record, None)
        if proxy is None:
            return  # SQLAlchemy warns of a double checkin before it gets here
        if in_collection():
            # A finalizer of the cyclic collector, maybe inside the poolkit
            # pool's locked section in this thread: never take its lock here.
            # Dropping the proxy hands the connection to poolkit's lock-free
            # path for unreleased connections (closed as "dropped", warned).
            del proxy
            return
        if invalidated(record):
            self._connections.discard(proxy)
        else:
            self._connections.release(proxy)

    def _invalidate(
        self,
        connection: PoolProxiedConnection,
        exception: BaseException | None = None,
        _checkin: bool = True,
    ) -> None:
        """A disconnect: this connection and every one opened before it are replaced."""
        record = getattr(connection, "_connection_record", None)
        newer = record is None or self._invalidate_time < record.starttime
        super()._invalidate(connection, exception, _checkin)
        if newer:
            self._kit.drain()

    def _invalidate_all(self) -> None:
        # What Pool._invalidate records, so SQLAlchemy's own checks agree.
        self._invalidate_time = time.time()
        self._kit.drain()

    def recreate(self) -> PoolkitPool:
        """A new, empty PoolkitPool with the same arguments and event listeners."""
        self.logger.info("Pool recreating")
        return self.__class__(
            self._creator,
            **self._args,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )

    def dispose(self) -> None:
        """Close the idle connections now; checked-out ones close when they come back.

        The pool stays usable: the next checkout opens a new connection.
        """
        self._kit.drain()
        self.logger.info("Pool disposed. %s", self.status())

    def status(self) -> str:
        """One line: limits and what each connection is doing."""
        s = self._kit.stats()
        args = self._args
        return (
            f"{type(self).__name__} pool_size={args['pool_size']} "
            f"max_overflow={args['max_overflow']}: "
            f"{s.total} open, {s.idle} idle, {s.in_use} checked out, {s.waiting} waiting"
        )

    # QueuePool's gauges, for code that reads them.

    def size(self) -> int:
        """``pool_size``: connections kept when idle."""
        size: int = self._args["pool_size"]
        return size

    def timeout(self) -> float:
        """Seconds a checkout waits (``pool_timeout``)."""
        return self._kit._timeout

    def checkedin(self) -> int:
        """Idle connections in the pool."""
        return self._kit.stats().idle

    def checkedout(self) -> int:
        """Connections checked out now."""
        return self._kit.stats().in_use

    def overflow(self) -> int:
        """Connections open beyond ``pool_size`` (negative while below it, as QueuePool)."""
        return self._kit.stats().total - self.size()

    # -- poolkit's diagnostics ----------------------------------------------------

    @property
    def connection_pool(self) -> Any:
        """The poolkit pool behind this one (``resize()``, ``drain()``...): a
        :class:`~poolkit.ConnectionPool` (an :class:`~poolkit.AsyncConnectionPool`
        under :class:`AsyncPoolkitPool`)."""
        return self._kit

    def stats(self) -> ConnectionPoolStats:
        """poolkit's gauges and counters (see :class:`~poolkit.ConnectionPoolStats`)."""
        return self._kit.stats()

    def pop_stats(self) -> ConnectionPoolStats:
        """Like :meth:`stats`, then reset the counters."""
        return self._kit.pop_stats()

    def holders(self) -> list[Holder]:
        """Who holds each checked-out connection, longest-held first.

        Thread and stack are recorded with ``poolkit_options={"leak_timeout": ...}``.
        """
        return self._kit.holders()


def invalidated(record: ConnectionPoolEntry) -> bool:
    """Whether SQLAlchemy gave up on this very connection (invalidated, hard or soft).

    One invalidated with the whole pool (older than ``_invalidate_time``) goes
    back as usual: the drain that came with it closes it, counted as drained.
    """
    if record.dbapi_connection is None:
        return True
    soft: float = getattr(record, "_soft_invalidate_time", 0)
    started: float = getattr(record, "starttime", 0.0)
    return soft > started
