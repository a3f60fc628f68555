"""What both drivers share, neither generated nor awaiting: setup, checkout
helpers, management, stats.

The drivers themselves are one source (``_async.py``, from which
``scripts/gen_sync.py`` writes ``_sync.py``). The sync driver guards core
calls with a :class:`~poolkit._tokenlock.TokenLock`; the asyncio driver's ``_lock`` is
``_compat.NO_LOCK``, since a core call without an ``await`` inside is atomic on
the event loop.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from typing import Any

from poolkit._errors import PoolTimeout, ReleaseError
from poolkit._log import log, log_limited
from poolkit._validate import Clock, check_optional_int
from poolkit._waits import MAX_WAIT_SLICE, slice_of
from poolkit.connections._core import Entry, PoolCore
from poolkit.connections._leaks import Holder, capture, describe_holders
from poolkit.connections._options import PoolOptions
from poolkit.connections._protocols import discover_hooks
from poolkit.connections._stats import ConnectionPoolStats

__all__ = [
    "CLEANER_MIN_INTERVAL",
    "CREATE_BACKOFF_INITIAL",
    "CREATE_BACKOFF_MAX",
    "DriverBase",
    "backoff",
    "call_hook",
    "cleaner_died",
    "cleaner_pass",
    "logger",
    "next_sleep",
]

logger = logging.getLogger("poolkit.connections")

# First retry delay after a failed create(), doubled per failure up to the cap,
# each with ±50 % jitter so many pools do not hammer a recovering server in
# step. psycopg_pool starts at 1 s; a smaller start serves a waiter whose
# timeout is a few seconds after a transient refusal.
CREATE_BACKOFF_INITIAL = 0.1
CREATE_BACKOFF_MAX = 10.0
# The cleaner never wakes more often than this (database/sql: 1 s floor), so a
# burst of deadlines a few ms apart is handled in one pass.
CLEANER_MIN_INTERVAL = 1.0


def backoff(delay: float, rng: random.Random) -> tuple[float, float]:
    """(this sleep, the next delay) for exponential backoff with jitter."""
    return delay * (0.5 + rng.random()), min(delay * 2, CREATE_BACKOFF_MAX)


def call_hook(hook: Any, *args: object) -> None:
    """Run a user's event hook; its failure is logged, not raised into the pool."""
    try:
        hook(*args)
    except Exception:
        logger.exception("connection pool event hook %r failed", hook)


def next_sleep(next_wake: float, clock: Clock) -> float:
    """Seconds until the next pass: at least the floor, at most one wait slice.

    A deadline beyond the slice (``max_idle_time=1e300``) is met by passes that
    find nothing due and sleep again: a primitive never sees the huge number.
    """
    if math.isinf(next_wake):
        return MAX_WAIT_SLICE
    return slice_of(max(next_wake - clock(), CLEANER_MIN_INTERVAL))


# Seconds between a failed cleaner pass and the next one.
RETRY_FAILED_PASS = 1.0


def cleaner_pass(
    ref: Callable[[], Any],
    clock: Clock,
    *,
    until_closed: bool,
    failures: tuple[type[BaseException], ...],
) -> float | None:
    """One pass of a cleaner (thread or task): ``maintain()`` the pool ``ref()``.

    Returns the seconds to sleep until the next pass, or ``None`` when the
    cleaner should end: the pool was collected (or, with ``until_closed``, is
    closed). The pool is held only during the pass, so a pool dropped without
    ``close()`` is still collected. A pass that failed with one of
    ``failures`` (a warning turned into an error by a filter, a hook that
    raised) is logged and the cleaner goes on: a thread's are every
    ``BaseException`` (a KeyboardInterrupt there was raised by a hook, as
    signals reach only the main thread), a task's every ``Exception`` (a
    cancellation ends it).
    """
    pool = ref()
    if pool is None or (until_closed and pool.closed):
        return None
    try:
        next_wake = pool.maintain()
    except failures:
        # Whatever the pass did not finish (a flush of dropped connections, a
        # refill) is still due: try again soon rather than at the next rouse.
        logger.exception(
            "connection pool cleaner pass failed; the next one in %g s", RETRY_FAILED_PASS
        )
        return RETRY_FAILED_PASS
    return next_sleep(next_wake, clock)


def cleaner_died(ref: Callable[[], Any], exc: BaseException) -> None:
    """A cleaner died of ``exc``: break its pool (``ref()``), if it still exists."""
    pool = ref()
    name = "connection pool" if pool is None else pool.name
    log(
        logger,
        logging.CRITICAL,
        name,
        "the cleaner died of %r; the pool is broken",
        exc,
        exc_info=exc,
    )
    if pool is not None:
        pool._break(exc)


class DriverBase:
    """State and methods common to :class:`ConnectionPool` and its async twin."""

    _core: PoolCore
    _lock: Any
    # The key of a keyed pool's sub-pool (None for a standalone pool).
    _key: Any = None

    def _init_common(self, connector: object, opts: PoolOptions, *, is_async: bool) -> None:
        self._hooks = discover_hooks(connector, is_async=is_async)
        self._connector: Any = connector
        self._opts = opts
        self._name = opts.name or f"pool-{id(self):x}"
        self._clock = opts.clock
        self._timeout = opts.timeout
        self._rng = random.Random()
        # The checkout check: the pool's ``check`` option (psycopg_pool's) or,
        # by default, the connector's cheap ``check(conn)``.
        self._check: Callable[[Any], object] | None = (
            opts.check if opts.check is not None else self._hooks.check
        )
        # Anything at checkout beyond a bare pop and the check: pings, leak
        # records, hooks (and a broken pool, see _break). One flag keeps the
        # hot path to a single test; acquire runs the check itself, inline.
        self._extra_checkout = (
            (self._hooks.ping is not None and opts.ping_after is not None)
            or opts.leak_timeout is not None
            or opts.on_acquire is not None
        )
        self._extra_release = self._hooks.reset is not None or opts.on_release is not None
        # The connector's reset when it is the only release extra (the
        # adapters' connectors): release runs it inline, off _release_extras.
        self._reset_only = self._hooks.reset if opts.on_release is None else None

    def _flush(self) -> None:
        raise NotImplementedError

    def _foreign(self, entry: Entry) -> bool:
        """Whether ``entry`` was checked out before a fork, in the parent.

        The child's pool starts over with a new core (``poolkit._fork``); the
        parent's connections are not the child's to reset, commit or close.
        """
        return entry.core is not self._core

    def _break(self, cause: BaseException) -> None:
        """Refuse service from now on: ``acquire()`` raises ``PoolBroken`` from ``cause``.

        Called when the cleaner died. Waiters fail at once; connections in
        use can still be given back, and ``close()`` works as usual.
        """
        with self._lock:
            self._core.break_(cause)
            # Off the fast path: the slow one checks for a broken pool.
            self._extra_checkout = True
        self._flush()

    def _rouse_cleaner(self) -> None:
        raise NotImplementedError

    # -- checkout helpers ---------------------------------------------------

    def _ping_due(self, entry: Entry, now: float) -> bool:
        after = self._opts.ping_after
        return self._hooks.ping is not None and after is not None and now - entry.idle_since > after

    def _checked_out(self, entry: Entry, now: float) -> None:
        """Leak record and ``on_acquire`` hook for a connection that passed its checks."""
        opts = self._opts
        if opts.leak_timeout is not None:
            entry.holder = capture()
            entry.leak_reported = False
            if now + opts.leak_timeout < self._core.next_wake:
                self._rouse_cleaner()
        if opts.on_acquire is not None:
            call_hook(opts.on_acquire, entry.conn)

    def _refused(self, exc: BaseException, waited: float) -> None:
        """An acquisition failed with ``PoolTimeout`` after ``waited`` seconds, or
        with ``PoolOverload``: a WARNING (rate-limited), and the ``on_timeout`` hook."""
        core = self._core
        if isinstance(exc, PoolTimeout):
            log_limited(
                logger,
                logging.WARNING,
                self._name,
                "timeout",
                "PoolTimeout after %.3g s: %d in use, %d idle, max_size %d, %d waiting",
                waited,
                core.in_use_count,
                len(core.idle),
                core.max_size,
                len(core.waiters),
            )
            if self._opts.on_timeout is not None:
                call_hook(self._opts.on_timeout, waited)
        else:
            log_limited(
                logger,
                logging.WARNING,
                self._name,
                "overload",
                "PoolOverload: %d callers already waiting (max_waiting=%s)",
                len(core.waiters),
                core.max_waiting,
            )

    def _create_failed(self, exc: BaseException) -> None:
        log_limited(
            logger, logging.WARNING, self._name, "connect", "opening a connection failed: %r", exc
        )

    def _recovered(self, last_error: BaseException) -> None:
        log(
            logger,
            logging.INFO,
            self._name,
            "opened a connection again (it had failed: %r)",
            last_error,
        )

    def _detach(self, conn: object, proxy_type: type) -> Entry:
        if type(conn) is not proxy_type:
            raise ReleaseError(
                f"release() takes the {proxy_type.__name__} acquire() returned, got "
                f"{type(conn).__name__}"
            )
        if getattr(conn, "_pool", None) is not self:
            raise ReleaseError("this connection belongs to another pool; release it there")
        entry: Entry | None = getattr(conn, "_bound", None)
        if entry is None or entry.proxy is not None:
            raise ReleaseError(
                "this connection was already released; release each acquired connection once"
            )
        entry.proxy = conn  # detached (see _proxy.py)
        return entry

    # -- management ---------------------------------------------------------

    def drain(self) -> None:
        """Close every idle connection now and every busy one when it returns.

        Use it after a failover: no connection opened before the call is reused.
        """
        with self._lock:
            self._core.drain()
        self._flush()

    expire = drain

    def resize(self, min_size: int | None = None, max_size: int | None = None) -> None:
        """Change ``min_size`` and/or ``max_size`` at runtime.

        Raises:
            TypeError: not an int.
            ValueError: out of range, or ``min_size > max_size``.
        """
        mn = check_optional_int("min_size", min_size, minimum=0)
        mx = check_optional_int("max_size", max_size, minimum=1)
        with self._lock:
            core = self._core
            mn = core.min_size if mn is None else mn
            mx = core.max_size if mx is None else mx
            if mn > mx:
                raise ValueError(f"min_size must be <= max_size, got {mn} > {mx}")
            core.resize(mn, mx)
        self._flush()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._core.closed

    @property
    def name(self) -> str:
        """The pool's name (given, or generated like ``ConnectionPool-1``)."""
        return self._name

    # -- observability ------------------------------------------------------

    def stats(self) -> ConnectionPoolStats:
        """Gauges and counters (see :class:`~poolkit.ConnectionPoolStats`)."""
        with self._lock:
            return self._core.stats()

    def pop_stats(self) -> ConnectionPoolStats:
        """Like :meth:`stats`, then reset the counters."""
        with self._lock:
            return self._core.stats(pop=True)

    def holders(self) -> list[Holder]:
        """Who holds each busy connection, longest-held first.

        Thread, task and stack are recorded only with ``leak_timeout`` set.
        """
        with self._lock:
            return describe_holders(self._core, self._clock())

    def __repr__(self) -> str:
        core = self._core
        state = "closed" if core.closed else "broken" if core.broken is not None else "open"
        return (
            f"<{type(self).__name__} {self._name!r} {state} [size {core.size}/{core.max_size}: "
            f"{len(core.idle)} idle, {core.in_use_count} in use, {core.creating} creating, "
            f"{core.closing} closing | "
            f"{len(core.waiters)} waiting]>"
        )
