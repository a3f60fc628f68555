"""The sans-io core every worker pool shares: options, sizing, admission, stats.

Thread, asyncio and process pools differ in how they wait and run, not in
what they decide. The decisions live here as plain data and pure functions:

* :class:`PoolOptions` validates the options once (same names, same defaults,
  same error messages for every pool);
* :func:`capacity` and :func:`admit` say whether a submission may enter,
  must wait, or is refused — the saturation policy of the Go anchors
  (unbounded queue like gammazero, bounded like grpool / pond ``WithQueueSize``,
  hand-off like ants / tunny / gpool, ``nonblocking`` and ``max_blocking`` like
  ants);
* :func:`spawn_count` says how many workers to start for a backlog;
* :class:`WorkerPoolStats` is the frozen snapshot ``stats()`` returns.

Nothing here knows about threads, locks or event loops, so a process pool can
reuse it as it is.
"""

from __future__ import annotations

import enum
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from poolkit._histogram import Histogram
from poolkit._stats import StatsBase, renamed
from poolkit._validate import (
    check_bool,
    check_callable,
    check_int,
    check_optional_int,
    check_optional_seconds,
)

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "Admission",
    "ErrorHandler",
    "Expired",
    "Expiring",
    "PoolOptions",
    "WorkerHooks",
    "WorkerPoolStats",
    "admit",
    "capacity",
    "default_max_workers",
    "log_task_error",
    "spawn_count",
    "stop_mode",
]

# Surplus workers (above min_workers) exit after this long without work. A
# CPython thread costs ~100-125 µs to start, so reaping must be lazy;
# gammazero/workerpool uses 2 s, pond v1 5 s, ants 1 s.
DEFAULT_IDLE_TIMEOUT = 2.0

# ThreadPoolExecutor's default since Python 3.8 (bpo-35279): I/O-bound work
# benefits from more threads than cores, but no more than 32 by default.
_DEFAULT_MAX_CAP = 32
_DEFAULT_EXTRA = 4

_LOG = logging.getLogger("poolkit.workers")

# on_error(exc, task): called with a fire-and-forget task's exception and the
# task (the callable that raised it); its return value is ignored.
ErrorHandler = Callable[[BaseException, object], object]


def default_max_workers() -> int:
    """``min(32, os.cpu_count() + 4)``, ThreadPoolExecutor's default."""
    return min(_DEFAULT_MAX_CAP, (os.cpu_count() or 1) + _DEFAULT_EXTRA)


def log_task_error(exc: BaseException, task: object) -> None:
    """The default ``on_error``: log the failure with its traceback.

    A fire-and-forget task has nobody to give its exception to; dropping it
    silently hides bugs, so it goes to the ``poolkit.workers`` logger (as ants'
    default ``PanicHandler`` logs the panic and its stack).
    """
    _LOG.error("task %r raised %r", task, exc, exc_info=(type(exc), exc, exc.__traceback__))


@dataclass(frozen=True)
class PoolOptions:
    """Validated options shared by every worker pool.

    Attributes:
        max_workers: most workers running at once.
        min_workers: workers kept alive when idle.
        idle_timeout: seconds a surplus worker waits for work before exiting,
            any size; ``None`` keeps every worker until the pool stops
            (``math.inf`` is taken as ``None``).
        queue_size: tasks that may wait beyond the running ones; ``None`` is
            unbounded, ``0`` is hand-off (the caller waits for a free worker).
        nonblocking: when the pool is full, refuse with ``PoolOverload``
            instead of waiting.
        max_blocking: most callers blocked waiting for room; ``None`` means no
            bound, ``0`` means nobody may block (as ``nonblocking``).
        on_error: ``on_error(exc, task)`` for failures of fire-and-forget tasks.
        name: shown in ``repr``, logs and thread names.
    """

    max_workers: int
    min_workers: int = 0
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    queue_size: int | None = None
    nonblocking: bool = False
    max_blocking: int | None = None
    on_error: ErrorHandler = log_task_error
    name: str = "pool"

    @classmethod
    def build(
        cls,
        *,
        max_workers: object,
        min_workers: object = 0,
        idle_timeout: object = DEFAULT_IDLE_TIMEOUT,
        queue_size: object = None,
        nonblocking: object = False,
        max_blocking: object = None,
        on_error: object = None,
        name: object = "pool",
    ) -> PoolOptions:
        """Validate raw arguments and return the options.

        ``max_workers=None`` picks :func:`default_max_workers`.

        Raises:
            TypeError: an argument of the wrong type (the message names it).
            ValueError: an out-of-range argument (the message names it).
        """
        workers = default_max_workers() if max_workers is None else max_workers
        maxw = check_int("max_workers", workers, minimum=1)
        minw = check_int("min_workers", min_workers, minimum=0)
        if minw > maxw:
            raise ValueError(
                f"min_workers ({minw}) must be <= max_workers ({maxw}); "
                "lower min_workers or raise max_workers"
            )
        idle = check_optional_seconds(
            "idle_timeout", idle_timeout, allow_zero=False, allow_inf=True
        )
        if idle == math.inf:
            idle = None  # one spelling of "never" for the drivers
        qsize = check_optional_int("queue_size", queue_size, minimum=0)
        nonblock = check_bool("nonblocking", nonblocking)
        maxb = check_optional_int("max_blocking", max_blocking, minimum=0)
        handler = check_callable("on_error", on_error, optional=True) or log_task_error
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        return cls(maxw, minw, idle, qsize, nonblock, maxb, handler, name)


@dataclass(frozen=True, slots=True)
class WorkerHooks:
    """What each worker runs around its tasks, validated once for every pool kind.

    Attributes:
        initializer: called as ``initializer(*initargs)`` before a worker's
            first task (``None``: nothing).
        initargs: the initializer's arguments.
        finalizer: called as a worker exits (``None``: nothing).
        factory: ``with_worker``'s: builds the object each worker owns and
            passes to its tasks (``None``: a plain pool).
    """

    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    finalizer: Callable[[], object] | None
    factory: Callable[[], object] | None = None

    @classmethod
    def build(
        cls,
        initializer: object,
        initargs: object,
        finalizer: object,
        factory: Callable[[], object] | None = None,
    ) -> WorkerHooks:
        """Validate a pool's ``initializer``, ``initargs`` and ``finalizer`` arguments.

        ``factory`` comes checked from ``with_worker``.

        Raises:
            TypeError: one is not callable (or ``None``), or ``initargs`` is
                not a tuple (the message names it).
        """
        init = check_callable("initializer", initializer, optional=True)
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, got {type(initargs).__name__}")
        final = check_callable("finalizer", finalizer, optional=True)
        return cls(init, initargs, final, factory)


def capacity(max_workers: int, queue_size: int | None) -> int | None:
    """Most tasks that may be in the pool (running + waiting); ``None`` = no bound.

    With ``queue_size=0`` this is ``max_workers``: a task only enters when a
    worker can take it (hand-off).
    """
    return None if queue_size is None else max_workers + queue_size


class Admission(enum.Enum):
    """What :func:`admit` decided for one submission."""

    ACCEPT = "accept"
    WAIT = "wait"
    OVERLOAD = "overload"


def admit(
    outstanding: int,
    limit: int | None,
    *,
    blocked: int,
    nonblocking: bool,
    max_blocking: int | None,
) -> Admission:
    """Decide one submission against the saturation policy.

    Args:
        outstanding: tasks accepted and not finished.
        limit: :func:`capacity` (``None`` = unbounded).
        blocked: callers already waiting for room.
        nonblocking: refuse instead of waiting.
        max_blocking: bound on waiting callers (``None`` = none).

    Returns:
        ``ACCEPT`` if there is room, ``OVERLOAD`` if the caller may not wait,
        otherwise ``WAIT``.
    """
    if limit is None or outstanding < limit:
        return Admission.ACCEPT
    if nonblocking or (max_blocking is not None and blocked >= max_blocking):
        return Admission.OVERLOAD
    return Admission.WAIT


def overload_message(options: PoolOptions, outstanding: int, blocked: int) -> str:
    """The ``PoolOverload`` message: what is full and which option to change."""
    if options.nonblocking:
        why = "nonblocking=True"
    else:
        why = f"{blocked} callers already blocked (max_blocking={options.max_blocking})"
    return (
        f"{options.name} is full: {outstanding} tasks in the pool "
        f"(max_workers={options.max_workers}, queue_size={options.queue_size}) and {why}; "
        "raise queue_size or max_workers, or retry later"
    )


def stop_mode(wait: object, cancel_pending: object, timeout: object) -> tuple[bool, float | None]:
    """Validate ``stop()``'s arguments; whether to cancel queued tasks, and the timeout.

    ``cancel_pending=None`` means ``not wait``: a stop that does not wait
    cancels what is queued (gammazero ``Stop``), one that waits drains it.

    Raises:
        TypeError: ``wait`` or ``cancel_pending`` is not a bool.
        ValueError: ``timeout`` is negative or NaN.
    """
    seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
    waits = check_bool("wait", wait)
    if cancel_pending is None:
        return not waits, seconds
    return check_bool("cancel_pending", cancel_pending), seconds


def spawn_count(*, workers: int, max_workers: int, backlog: int, idle: int) -> int:
    """How many workers to start now.

    Start one per waiting task that no idle worker will take, within
    ``max_workers`` (ThreadPoolExecutor reuses idle threads first the same way,
    bpo-24882).
    """
    return max(0, min(max_workers - workers, backlog - idle))


@renamed(idle_workers="idle", blocked="waiting", dropped="overloads")
@dataclass(frozen=True)
class WorkerPoolStats(StatsBase):
    """A snapshot of a worker pool (pond's metrics, and more).

    Counters only grow. After a stop that waited,
    ``submitted == completed + cancelled + expired``. Field names follow the
    glossary in docs/stats.md (``idle_workers``, ``blocked`` and ``dropped``
    are now ``idle``, ``waiting`` and ``overloads``; the old names warn for
    one release).

    Attributes:
        max_workers: the current bound on workers.
        workers: workers alive (running a task or idle).
        idle: workers waiting for a task.
        running: tasks running now.
        queued: tasks accepted and not started.
        waiting: callers waiting for room (bounded pools).
        submitted: tasks accepted.
        completed: tasks that ran to the end (``succeeded + failed``).
        succeeded: tasks that returned.
        failed: tasks that raised.
        overloads: submissions refused (``PoolOverload``, ``try_submit`` → None).
        cancelled: accepted tasks cancelled before they started.
        expired: ``submit_before`` tasks skipped because their deadline passed.
        paused: whether the pool is paused.
        closed: whether the pool is stopped or stopping.
        broken: whether the pool broke (a worker failed to start, or one of
            its background threads or tasks died): it is closed too, and
            submissions raise ``PoolBroken`` chained from the cause.
        name: the pool's name (see :func:`poolkit.pools`).
        queue_wait: seconds each task waited between submission and start
            (a :class:`~poolkit.Histogram`; ``None`` unless the pool was made
            with ``timings=True``).
        run_time: seconds each task ran, likewise.
    """

    family = "workers"

    max_workers: int
    workers: int
    idle: int
    running: int
    queued: int
    waiting: int
    submitted: int
    completed: int
    succeeded: int
    failed: int
    overloads: int
    cancelled: int
    expired: int
    paused: bool
    closed: bool
    # Keyword-only with a default, so pools (and subclasses with their own
    # fields) that never break need not pass it.
    broken: bool = field(default=False, kw_only=True)
    name: str = field(default="", kw_only=True)
    queue_wait: Histogram | None = field(default=None, kw_only=True)
    run_time: Histogram | None = field(default=None, kw_only=True)


def describe(kind: str, stats: WorkerPoolStats, name: str) -> str:
    """The live ``repr`` both pools share."""
    if stats.broken:
        state = "broken"
    else:
        state = "closed" if stats.closed else ("paused" if stats.paused else "open")
    return (
        f"<{kind} {name!r} {state} [workers: {stats.workers}/{stats.max_workers}, "
        f"{stats.idle} idle | tasks: {stats.running} running, {stats.queued} queued, "
        f"{stats.waiting} blocked | done: {stats.succeeded} ok, {stats.failed} failed, "
        f"{stats.cancelled} cancelled]>"
    )


class Expired(BaseException):
    """Raised by :class:`Expiring` when a task starts after its deadline.

    A BaseException, so a worker's ``except Exception`` around user code can
    never swallow it; it never reaches user code anyway (raised before ``fn``).
    """


class Expiring:
    """Wraps a task so it is skipped if it starts after ``expires_at`` (``submit_before``)."""

    __slots__ = ("clock", "expires_at", "fn", "seconds")

    def __init__(
        self, fn: Callable[..., Any], expires_at: float, clock: Callable[[], float], seconds: float
    ) -> None:
        self.fn = fn
        self.expires_at = expires_at
        self.clock = clock
        self.seconds = seconds

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.clock() > self.expires_at:
            raise Expired
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<expiring {self.fn!r} after {self.seconds} s>"
