"""Subpools: a concurrency limit of their own, run on the parent's workers (pond v2 ``NewSubpool``).

``pool.subpool(max_concurrency, queue_size=None)`` returns a :class:`Subpool`,
a view of the pool with its own limit, its own queue and its own metrics. It
starts no thread: at most ``max_concurrency`` *drains* run at once, each one a
task of the parent that takes the subpool's queued tasks one after another
until the queue is empty (pond v2: "its workers are parent tasks"). So:

- every task of a subpool also counts against the parent's limit, and a
  subpool of a subpool against every limit above it (a child's drain is a
  task of its parent subpool, which is a task of the pool);
- a subpool stops on its own (``stop()``, ``close()``, its ``with`` block)
  without touching the parent, and stops with the parent: once the parent is
  closed, submissions raise :class:`~poolkit.PoolClosed`; tasks the parent
  never ran (its ``stop(cancel_pending=True)`` or ``stop(wait=False)``
  cancelled the drain) fail with ``PoolClosed``, so no Future is left pending.

The invariant, under the subpool's lock: a queued task always has a drain
coming for it. A drain leaves only when it finds the queue empty, and a
submission starts a drain whenever fewer than ``max_concurrency`` run.

Stats follow the glossary (docs/stats.md), which reads pond's metrics as
``submitted``, ``queued`` (pond's ``WaitingTasks``), ``succeeded``
(``SuccessfulTasks``), ``failed``, ``completed`` and ``overloads``
(``DroppedTasks``).
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from poolkit._errors import PoolClosed, PoolDeadlock, PoolTimeout
from poolkit._stats import StatsBase
from poolkit._validate import check_bool, check_callable, check_int, check_optional_seconds
from poolkit._waits import deadline_after, wait_for
from poolkit.workers._future import PoolFuture
from poolkit.workers._group import CancelToken, GroupCore, TaskGroup

if TYPE_CHECKING:
    from poolkit.workers._thread_pool import WorkerPool

__all__ = ["Subpool", "SubpoolStats", "check_limits"]

P = ParamSpec("P")
T = TypeVar("T")

_copy_context = contextvars.copy_context

# The subpools whose drains run on this thread, innermost last: a task that
# would wait for room in one of them would wait for itself.
_DRAINS = threading.local()


@dataclass(frozen=True)
class SubpoolStats(StatsBase):
    """A snapshot of a subpool (pond v2's metrics).

    After a stop that waited, ``submitted == completed + cancelled + lost``.

    Attributes:
        max_concurrency: the most tasks of this subpool running at once.
        workers: drains running (parent tasks serving this subpool).
        running: tasks running now.
        queued: tasks accepted and not started (pond ``WaitingTasks``).
        submitted: tasks accepted.
        completed: tasks that ran to the end (``succeeded + failed``).
        succeeded: tasks that returned (pond ``SuccessfulTasks``).
        failed: tasks that raised.
        overloads: submissions refused because the queue was full (``try_submit``;
            pond ``DroppedTasks``).
        cancelled: accepted tasks cancelled before they started.
        lost: accepted tasks the parent refused to run (it stopped first);
            their Futures fail with ``PoolClosed``.
        closed: whether the subpool (or its parent) is stopped.
    """

    family = "workers"

    max_concurrency: int
    workers: int
    running: int
    queued: int
    submitted: int
    completed: int
    succeeded: int
    failed: int
    overloads: int
    cancelled: int
    lost: int
    closed: bool


def check_limits(parent_limit: int, max_concurrency: object, queue_size: object) -> int | None:
    """Validate ``subpool()``'s arguments; the queue bound (``None``: unbounded).

    Raises:
        TypeError: not an int.
        ValueError: ``max_concurrency`` below 1 or above the parent's limit
            (pond refuses it too), ``queue_size`` below 0.
    """
    limit = check_int("max_concurrency", max_concurrency, minimum=1)
    if limit > parent_limit:
        raise ValueError(
            f"max_concurrency must be at most the parent's limit ({parent_limit}), got {limit}"
        )
    if queue_size is None:
        return None
    return check_int("queue_size", queue_size, minimum=0)


_COUNTERS = ("submitted", "succeeded", "failed", "overloads", "cancelled", "lost")


class SubpoolBase:
    """What the thread and asyncio subpools share: limits, queue, counters, views.

    Plain state and decisions, no lock and no waiting: the thread subpool
    calls these under its lock, the asyncio one on its loop.
    """

    _parent: Any

    def _setup(self, parent: Any, max_concurrency: int, queue_size: int | None) -> None:
        self._queue_size = check_limits(parent.max_workers, max_concurrency, queue_size)
        self._limit: int = max_concurrency
        self._parent = parent
        self._report: Callable[[BaseException, object], None] = parent._report
        self._pending: deque[tuple[Any, ...]] = deque()
        self._workers = 0  # drains running (or about to start)
        self._running = 0  # tasks running
        self._closed = False
        self._counts = dict.fromkeys(_COUNTERS, 0)

    @property
    def max_workers(self) -> int:
        """The subpool's limit (``max_concurrency``), the bound nested subpools check."""
        return self._limit

    max_concurrency = max_workers

    @property
    def closed(self) -> bool:
        """Whether the subpool, or a pool above it, is stopped."""
        return self._closed or bool(self._parent.closed)

    def _snapshot(self) -> SubpoolStats:
        c = self._counts
        return SubpoolStats(
            max_concurrency=self._limit,
            workers=self._workers,
            running=self._running,
            queued=len(self._pending),
            completed=c["succeeded"] + c["failed"],
            closed=self.closed,
            **c,
        )

    def stats(self) -> SubpoolStats:
        """A snapshot of the subpool's gauges and counters."""
        return self._snapshot()

    def __repr__(self) -> str:
        s = self.stats()
        state = "closed" if s.closed else "open"
        return (
            f"<{type(self).__name__} {state} [{s.running}/{s.max_concurrency} running, "
            f"{s.queued} queued | done: {s.succeeded} ok, {s.failed} failed, "
            f"{s.cancelled} cancelled]>"
        )

    def _closed_error(self) -> PoolClosed:
        return PoolClosed(
            "the subpool is stopped" if self._closed else "the subpool's parent pool is stopped"
        )

    def _room(self, bound: int) -> bool:
        # A free drain slot takes the task at once; otherwise it must fit the queue.
        return self._workers < self._limit or len(self._pending) < bound

    def _queue(self, item: tuple[Any, ...]) -> bool:
        """Queue an admitted task; True when a drain must start for it (slot taken)."""
        self._pending.append(item)
        self._counts["submitted"] += 1
        if self._workers < self._limit:
            self._workers += 1
            return True
        return False

    def _orphans(self) -> list[tuple[Any, ...]]:
        """The queued tasks no drain will take (none runs), taken off the queue."""
        if self._workers:
            return []
        orphans = list(self._pending)
        self._pending.clear()
        self._counts["lost"] += len(orphans)
        return orphans

    def _shut(self, cancel_pending: bool) -> list[tuple[Any, ...]]:
        """Close the subpool; the queued tasks to cancel (``cancel_pending``)."""
        check_bool("cancel_pending", cancel_pending)
        self._closed = True
        if not cancel_pending:
            return []
        dropped = list(self._pending)
        self._pending.clear()
        self._counts["cancelled"] += len(dropped)
        return dropped

    def _busy_error(self, seconds: float | None) -> PoolTimeout:
        return PoolTimeout(
            f"subpool still busy after {seconds} s ({self._running} running, "
            f"{len(self._pending)} queued)"
        )


class Subpool(SubpoolBase):
    """A view of a :class:`~poolkit.WorkerPool` with its own concurrency limit.

    Create with ``pool.subpool(max_concurrency, queue_size=None)`` (or
    ``subpool.subpool(...)`` to nest). The module docstring has the rules.

    Args:
        parent: the :class:`~poolkit.WorkerPool` or :class:`Subpool` it runs on.
        max_concurrency: the most of its tasks running at once (at most the
            parent's limit).
        queue_size: tasks that may wait beyond the running ones (``None``:
            unbounded; ``0``: none). A full subpool makes ``submit``/``go``
            wait for room and ``try_submit`` return ``None``.

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        parent: WorkerPool | Subpool,
        max_concurrency: int,
        *,
        queue_size: int | None = None,
    ) -> None:
        self._setup(parent, max_concurrency, queue_size)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # room freed, or a drain ended

    def stats(self) -> SubpoolStats:
        """A snapshot of the subpool's gauges and counters."""
        with self._lock:
            return self._snapshot()

    # -- submission -----------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` under the subpool's limit; return its Future.

        Waits for room when the subpool's queue is full.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        fut: Future[T] = PoolFuture()
        self._put((fn, args, kwargs, _copy_context(), fut), wait=True)
        return fut

    def go(self, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
        """Like :meth:`submit` without a Future; a failure goes to the pool's ``on_error``.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        self._put((fn, args, kwargs, _copy_context(), None), wait=True)

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """Like :meth:`submit`, but ``None`` (counted as ``overloads``) instead of waiting.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        fut: Future[T] = PoolFuture()
        if not self._put((fn, args, kwargs, _copy_context(), fut), wait=False):
            return None
        return fut

    def submit_wait(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` under the subpool's limit and return its result.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            BaseException: whatever ``fn`` raised.
        """
        return self.submit(fn, *args, **kwargs).result()

    def _put(self, item: tuple[Any, ...], *, wait: bool) -> bool:
        with self._changed:
            if self.closed:
                raise self._closed_error()
            bound = self._queue_size
            if bound is not None and not self._room(bound):
                if not wait:
                    self._counts["overloads"] += 1
                    return False
                if self in getattr(_DRAINS, "stack", ()):
                    raise PoolDeadlock(
                        "a task of this subpool would wait for room in its own full queue; "
                        "use try_submit(), a larger queue_size, or another pool"
                    )
                wait_for(self._changed, lambda: self.closed or self._room(bound), math.inf)
                if self.closed:
                    raise self._closed_error()
            start = self._queue(item)
        if start:
            self._start_drain(item)
        return True

    def _start_drain(self, item: tuple[Any, ...]) -> None:
        """Run one more drain as a task of the parent."""
        try:
            handle = self._parent.submit(self._drain)
        except BaseException as exc:
            # The parent refused (it stopped, or is full and may not wait).
            # Another drain still running will take the queue; if none is
            # left, the queued tasks cannot run: fail them all.
            with self._changed:
                self._workers -= 1
                orphans = self._orphans()
                self._changed.notify_all()
            if any(o is item for o in orphans):
                self._fail(orphans, exc)
                raise
            self._fail(orphans, exc)
            return
        handle.add_done_callback(self._drain_ended)

    @staticmethod
    def _fail(items: list[tuple[Any, ...]], exc: BaseException) -> None:
        for *_, fut in items:
            if fut is not None and fut.set_running_or_notify_cancel():
                fut.set_exception(PoolClosed(f"the parent pool did not run the task: {exc!r}"))

    def _drain_ended(self, handle: Future[None]) -> None:
        """A drain's parent task settled: if the parent cancelled it unstarted,
        its slot is free and the tasks it would have run may be orphans."""
        if not handle.cancelled():
            return  # it ran: _drain gave its slot back itself
        with self._changed:
            self._workers -= 1
            orphans = self._orphans()
            self._changed.notify_all()
        self._fail(orphans, PoolClosed("the parent pool stopped before running it"))

    def _drain(self) -> None:
        """One drain: run queued tasks until the queue is empty (a parent task)."""
        lock, pending, changed = self._lock, self._pending, self._changed
        stack = _DRAINS.__dict__.setdefault("stack", [])
        stack.append(self)
        try:
            self._drain_loop(lock, pending, changed)
        finally:
            stack.pop()

    def _drain_loop(
        self, lock: threading.Lock, pending: deque[Any], changed: threading.Condition
    ) -> None:
        while True:
            with lock:
                if not pending:
                    self._workers -= 1
                    changed.notify_all()
                    return
                fn, args, kwargs, ctx, fut = pending.popleft()
                changed.notify_all()  # room in the queue
            try:
                self._run(fn, args, kwargs, ctx, fut)
            except BaseException:
                # A KeyboardInterrupt or SystemExit out of a task ends this
                # drain (the parent worker handles it): free its slot first.
                with lock:
                    self._workers -= 1
                    orphans = self._orphans()
                    changed.notify_all()
                self._fail(orphans, PoolClosed("a drain of the subpool was interrupted"))
                raise

    def _run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: contextvars.Context,
        fut: Future[Any] | None,
    ) -> None:
        counts = self._counts
        if fut is not None and not fut.set_running_or_notify_cancel():
            with self._lock:
                counts["cancelled"] += 1
            return
        with self._lock:
            self._running += 1
        try:
            result = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:
            with self._lock:
                self._running -= 1
                counts["failed"] += 1
            if fut is not None:
                fut.set_exception(exc)
            else:
                self._report(exc, fn)
            if not isinstance(exc, Exception):
                raise
            return
        with self._lock:
            self._running -= 1
            counts["succeeded"] += 1
        if fut is not None:
            fut.set_result(result)

    # -- groups and nesting -----------------------------------------------------

    def subpool(self, max_concurrency: int, *, queue_size: int | None = None) -> Subpool:
        """A subpool of this subpool: it respects this limit and every one above.

        Raises:
            ValueError: ``max_concurrency`` above this subpool's limit.
        """
        return Subpool(self, max_concurrency, queue_size=queue_size)

    def group(
        self, *, cancel_on_error: bool = False, parent: CancelToken | GroupCore | None = None
    ) -> TaskGroup[Any]:
        """A task group whose tasks run under this subpool's limit (see ``WorkerPool.group``)."""
        return TaskGroup(self, cancel_on_error=cancel_on_error, parent=parent)  # type: ignore[arg-type]

    # -- stop -------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> None:
        """Wait until no task of the subpool is queued or running (without stopping).

        Raises:
            PoolTimeout: still busy after ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        with self._changed:
            if not wait_for(self._changed, lambda: not self._workers, deadline_after(seconds)):
                raise self._busy_error(seconds)

    def stop(
        self, wait: bool = True, *, cancel_pending: bool = False, timeout: float | None = None
    ) -> None:
        """Stop taking tasks; the parent goes on. Idempotent.

        Args:
            wait: wait until the subpool's tasks have ended.
            cancel_pending: cancel its queued tasks instead of running them.
            timeout: most seconds to wait.

        Raises:
            PoolTimeout: ``wait`` and still busy after ``timeout`` seconds.
        """
        check_bool("wait", wait)
        with self._changed:
            dropped = self._shut(cancel_pending)
            self._changed.notify_all()
        for *_, fut in dropped:
            if fut is not None:
                fut.cancel()
        if wait:
            self.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop and wait for the subpool's tasks (``stop()``)."""
        self.stop(timeout=timeout)

    def __enter__(self) -> Subpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
