"""The pool's statistics snapshot, and the reasons a connection gets closed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from poolkit._histogram import Histogram
from poolkit._stats import StatsBase, renamed

__all__ = ["CLOSE_REASONS", "ConnectionPoolStats"]

# Why a connection was closed; ``stats().closed_by_reason`` has one count each.
CLOSE_REASONS: tuple[str, ...] = (
    "idle_time",  # idle longer than max_idle_time (database/sql MaxIdleTimeClosed)
    "lifetime",  # older than max_lifetime (database/sql MaxLifetimeClosed)
    "max_idle",  # returned while max_idle connections were already idle (MaxIdleClosed)
    "broken",  # the user's code raised an error the connector calls broken
    "check_failed",  # the checkout liveness check said no
    "ping_failed",  # the checkout ping failed
    "reset_failed",  # reset on return raised
    "drained",  # drain()/expire() retired it
    "discarded",  # the holder called discard()
    "dropped",  # its proxy was garbage-collected without release
    "resized",  # returned while the pool was over a lowered max_size
    "evicted",  # closed to make room for another key under the global cap
    "pool_closed",  # the pool was closed
)


@renamed(size="total")
@dataclass(frozen=True)
class ConnectionPoolStats(StatsBase):
    """A snapshot of a connection pool: gauges now, counters since the last pop.

    Field names follow the glossary in docs/stats.md (``size`` is now
    ``total``; the old name warns for one release). Gauges (``total`` ..
    ``max_size``) describe the pool at the time of the call;
    counters count events since the pool was built or :meth:`pop_stats` last
    reset them. A superset of database/sql ``DBStats`` and psycopg_pool's
    ``get_stats()``.

    Attributes:
        total: connections the server may see: open ones, those being created and
            those being closed (``max_size`` caps it).
        idle: connections waiting in the pool.
        in_use: connections held by callers.
        creating: connections being opened right now.
        closing: connections retired whose ``close()`` has not returned yet; they
            keep their slot until it does.
        waiting: callers queued for a connection.
        min_size: the pool's current ``min_size``.
        max_size: the pool's current ``max_size``.
        acquired: successful acquisitions.
        waited: acquisitions that had to queue because the pool was at its limit
            (``max_size``) and waited for a connection to come back
            (database/sql ``DBStats.WaitCount``).
        waited_for_create: acquisitions that queued only while a connection was
            being opened for them (the pool had room); not in ``waited``.
        wait_time: total seconds spent queued, for either reason.
        timeouts: acquisitions that gave up with ``PoolTimeout``.
        overloads: acquisitions refused with ``PoolOverload`` (``max_waiting``).
        created: connections opened.
        create_errors: failed attempts to open one.
        reconnects_failed: background attempts to open one that gave up after
            ``reconnect_timeout`` (each called ``reconnect_failed``).
        retries: operations ``run()`` ran again on another connection after
            the first one failed as broken (database/sql's bad-connection retry).
        closed_by_reason: connections retired per reason (see ``CLOSE_REASONS``),
            counted when the pool decides to close them.
        broken: the pool is broken (its cleaner died): ``acquire()`` raises
            :class:`~poolkit.PoolBroken` chained from the cause.
        name: the pool's name (see :func:`poolkit.pools`).
        acquire_wait: seconds from asking to getting a connection, one per
            successful checkout (0 for one that found an idle connection);
            ``acquire_wait.percentile(99)`` is the p99 wait. ``None`` with
            ``timings=False``, as the next two.
        hold_time: seconds each connection was held, checkout to give-back.
        create_time: seconds each successful ``create()`` took.
    """

    family = "connections"
    _derived = ("closed",)

    total: int
    idle: int
    in_use: int
    creating: int
    closing: int
    waiting: int
    min_size: int
    max_size: int
    acquired: int
    waited: int
    waited_for_create: int
    wait_time: float
    timeouts: int
    overloads: int
    created: int
    create_errors: int
    retries: int
    closed_by_reason: Mapping[str, int]
    broken: bool = False
    reconnects_failed: int = 0
    name: str = field(default="", kw_only=True)
    acquire_wait: Histogram | None = field(default=None, kw_only=True)
    hold_time: Histogram | None = field(default=None, kw_only=True)
    create_time: Histogram | None = field(default=None, kw_only=True)

    @property
    def closed(self) -> int:
        """Connections closed for any reason."""
        return sum(self.closed_by_reason.values())
