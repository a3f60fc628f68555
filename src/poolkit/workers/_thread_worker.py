"""The thread side of WorkerPool: the worker loop, pills, retirement, drains.

Kept apart from the pool's API so the hot loop is easy to read in one place.
Per task the loop does: one ``get_nowait`` (C), one read of ``pool._gate``,
the call inside the submitter's context, one counter increment on the worker
object, and — in bounded pools only — a lock round trip to free the slot.

Control messages travel in the same queue as tasks, as task tuples whose
function raises :class:`_Control`; the loop only looks at them in its
exception path, so they cost nothing per ordinary task.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from poolkit._errors import PoolTimeout
from poolkit._waits import deadline_after, left_until, slice_of
from poolkit.workers._core import Expired, Expiring, spawn_count

if TYPE_CHECKING:
    from poolkit.workers._thread_base import ThreadPoolBase as WorkerPool

__all__ = ["STOP", "WAKE", "Counts", "Expired", "Expiring", "Worker", "current_pool", "run_worker"]

_LOG = logging.getLogger("poolkit.workers")
_LOCAL = threading.local()
_NO_STATE = object()


def current_pool() -> object:
    """The WorkerPool whose worker is the calling thread, or ``None``."""
    return getattr(_LOCAL, "pool", None)


class Counts:
    """Outcome counters; each Worker is written by its own thread only."""

    __slots__ = ("cancelled", "expired", "failed", "succeeded")

    def __init__(self) -> None:
        self.succeeded = 0
        self.failed = 0
        self.cancelled = 0
        self.expired = 0

    def finished(self) -> int:
        """Tasks that left the pool, whatever the outcome."""
        return self.succeeded + self.failed + self.cancelled + self.expired

    def add(self, other: Counts) -> None:
        """Add ``other``'s counters to these."""
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.expired += other.expired


class Worker(Counts):
    """One worker thread's counters (its identity in the pool's worker set).

    ``counted`` is true while the worker is included in ``pool._nworkers``;
    paths that leave early (idle exit, shrink) take it out themselves.
    ``running`` is the Future of the task it runs, if any (a forked child
    fails the Futures of tasks that were running in the parent's threads).
    """

    __slots__ = ("counted", "running")

    def __init__(self) -> None:
        super().__init__()
        self.counted = True
        self.running: Any = None


def current_worker() -> Worker | None:
    """The Worker whose thread is the calling thread, or ``None``."""
    return getattr(_LOCAL, "worker", None)


class _Control(BaseException):
    """Raised by a pill's function; the loop reads ``exit`` to decide."""

    def __init__(self, exit_worker: bool) -> None:
        super().__init__()
        self.exit_worker = exit_worker


def _stop() -> None:
    raise _Control(True)


def _wake() -> None:
    raise _Control(False)


class _Direct:
    """Stands in for a Context in pill tuples: calls the function as it is.

    Pills are put many times and may run in several threads at once; one
    shared ``contextvars.Context`` cannot be entered concurrently.
    """

    __slots__ = ()

    @staticmethod
    def run(fn: Callable[[], None]) -> None:
        fn()


def _pill(fn: Callable[[], None]) -> tuple[Any, ...]:
    return (fn, (), {}, _Direct(), None)


STOP = _pill(_stop)
WAKE = _pill(_wake)


def run_worker(pool: WorkerPool, worker: Worker) -> None:
    """Thread target: initialise, run tasks until told to exit, retire."""
    _LOCAL.pool = pool
    _LOCAL.worker = worker
    state: object = _NO_STATE
    try:
        if pool._initializer is not None:
            pool._initializer(*pool._initargs)
        if pool._worker_factory is not None:
            state = pool._worker_factory()
    except BaseException as exc:  # restore invariants (break the pool), then stop
        _break(
            pool,
            exc,
            f"a worker of {pool._options.name} failed to start: initializer raised {exc!r}",
        )
        _retire(pool, worker, _NO_STATE)
        return
    try:
        _loop(pool, worker, state)
    except BaseException as exc:
        # Task failures never get here (the loop delivers them): this is the
        # worker itself failing. A pool quietly short of a worker can leave
        # tasks queued for ever, so the pool breaks, loudly.
        _LOG.error("a worker thread of %s died", pool._options.name, exc_info=exc)
        _break(
            pool,
            exc,
            f"a worker thread of {pool._options.name} died: {exc!r}",
        )
    finally:
        _retire(pool, worker, state)
        _LOCAL.pool = None
        _LOCAL.worker = None


def _loop(pool: WorkerPool, worker: Worker, state: object) -> None:
    get_nowait = pool._queue.get_nowait
    bounded = pool._limit is not None
    stateless = state is _NO_STATE
    empty = queue.Empty
    result: Any = None
    item: tuple[Any, ...] | None
    while True:
        try:
            item = get_nowait()
        except empty:
            item = _wait_for_task(pool, worker)
            if item is None:
                return
        if pool._gate:
            try:
                verdict = _at_gate(pool, worker, item)
            except BaseException as exc:
                # The task in hand must not vanish with this worker.
                _break(pool, exc, f"a worker thread of {pool._options.name} died: {exc!r}")
                cancel_item(pool, item, worker)
                raise
            if verdict is not None:
                if verdict:
                    return
                continue
        fn, args, kwargs, ctx, fut = item
        del item
        if fut is None:
            try:
                if stateless:
                    ctx.run(fn, *args, **kwargs)
                else:
                    ctx.run(fn, state, *args, **kwargs)
            except _Control as control:
                if control.exit_worker and _may_exit(pool):
                    return
                continue
            except Expired:
                worker.expired += 1
            except BaseException as exc:
                worker.failed += 1
                _report(pool, exc, fn)
                del exc
            else:
                worker.succeeded += 1
        else:
            # Marked running before the Future says so: a fork in between must
            # find it here, or the child's copy would stay RUNNING for ever.
            worker.running = fut
            if fut.set_running_or_notify_cancel():
                try:
                    if stateless:
                        result = ctx.run(fn, *args, **kwargs)
                    else:
                        result = ctx.run(fn, state, *args, **kwargs)
                # Resolve the Future before counting: wait() returns on the
                # count, and by then every Future must be done. Counted in a
                # finally: a done-callback may raise a BaseException out of
                # set_result, and the count must still balance.
                except Expired:
                    try:
                        fut.set_exception(
                            PoolTimeout(f"task {fn!r} was not started within its deadline; skipped")
                        )
                    finally:
                        worker.expired += 1
                except BaseException as exc:
                    try:
                        fut.set_exception(exc)
                    finally:
                        worker.failed += 1
                        del exc
                else:
                    try:
                        fut.set_result(result)
                    finally:
                        worker.succeeded += 1
                        result = None
            else:
                worker.cancelled += 1
            worker.running = None
        # Drop references now, not at the next task: a finished task's
        # callable, arguments and result must not be kept alive by an idle
        # worker (Executor contract).
        fn = args = kwargs = ctx = fut = None
        # Not for a worker orphaned by a fork (counted is false): the child's
        # reset already freed every slot.
        if bounded and worker.counted:
            pool._release_slot()


def _report(pool: WorkerPool, exc: BaseException, fn: object) -> None:
    try:
        pool._on_error(exc, fn)
    except BaseException as handler_exc:
        _LOG.error("on_error handler %r raised", pool._on_error, exc_info=handler_exc)


def _wait_for_task(pool: WorkerPool, worker: Worker) -> tuple[Any, ...] | None:
    """The queue was empty: tell ``wait()``, block for work, maybe retire.

    Returns the next task, or ``None`` when this worker must exit (idle too
    long, or the pool is closed and nothing is left).
    """
    lock = pool._lock
    q = pool._queue
    with lock:
        if worker not in pool._workers:
            # The pool was reset in a forked child while this thread (the
            # one that forked) ran a task: the child's pool starts its own
            # workers, so this one leaves.
            return None
        pool._idle += 1
        pool._idle_cv.notify_all()
    try:
        while True:
            if pool._closed:
                with lock:
                    if q.qsize() == 0:
                        return None
                try:
                    return q.get_nowait()
                except queue.Empty:
                    continue
            item = _get_within(q, pool._options.idle_timeout)
            if item is not None:
                return item
            with lock:
                if pool._closed or pool._nworkers <= pool._min_workers or q.qsize():
                    continue
                pool._nworkers -= 1
            # Race: a submitter may have queued a task after our qsize() check
            # and, seeing the old _nworkers == max_workers, started nobody. It
            # queued before reading _nworkers, so the task is visible now.
            with lock:
                if q.qsize() == 0 or pool._closed or pool._nworkers >= pool._max_workers:
                    worker.counted = False
                    return None
                pool._nworkers += 1
    finally:
        with lock:
            pool._idle -= 1
            # Submitters decide to start workers from the idle count, which
            # is stale while a woken worker has not yet got here: a task can
            # be left queued with threads to spare. Re-decide now that the
            # count is exact.
            extra = 0
            if not pool._closed and pool._nworkers < pool._max_workers:
                extra = spawn_count(
                    workers=pool._nworkers,
                    max_workers=pool._max_workers,
                    backlog=q.qsize(),
                    idle=pool._idle,
                )
                pool._nworkers += extra
        if extra:
            pool._start_threads(extra)


def _get_within(
    q: queue.SimpleQueue[tuple[Any, ...]], seconds: float | None
) -> tuple[Any, ...] | None:
    """The next queued item, or ``None`` once ``seconds`` (any size) pass idle.

    ``SimpleQueue.get`` refuses timeouts above ``threading.TIMEOUT_MAX``, so
    the wait goes in slices (an idle_timeout of 30 days or 1e300 s is valid).
    """
    deadline = deadline_after(seconds)
    while True:
        try:
            return q.get(timeout=slice_of(left_until(deadline)))
        except queue.Empty:
            if time.monotonic() >= deadline:
                return None


def _at_gate(pool: WorkerPool, worker: Worker, item: tuple[Any, ...]) -> bool | None:
    """Handle pause, shrink and stop for a task just taken from the queue.

    Returns ``None`` to run the task, ``True`` to exit, ``False`` to take the
    next task (this one was cancelled).
    """
    fn = item[0]
    with pool._lock:
        while pool._paused and not pool._closed:
            pool._resume.wait()
        if pool._closed:
            if not pool._cancel_pending or fn is _stop or fn is _wake:
                return None
        elif pool._nworkers > pool._max_workers:
            # Surplus after a resize down: hand the task back and leave. Its
            # place in line moves to the end, the price of not interrupting a
            # task that is already running elsewhere.
            pool._nworkers -= 1
            worker.counted = False
            pool._gate = pool._paused or pool._nworkers > pool._max_workers
            if fn is not _wake:
                pool._put(item)
            return True
        else:
            return None
    cancel_item(pool, item, worker)
    return False


def _may_exit(pool: WorkerPool) -> bool:
    """A stop pill arrived: exit, unless this is the last worker and work remains."""
    with pool._lock:
        return not (pool._nworkers == 1 and pool._queue.qsize())


def cancel_item(pool: WorkerPool, item: tuple[Any, ...], counts: Counts | None) -> None:
    """Cancel a task that will not run; count it on ``counts`` (or the pool)."""
    fn, _args, _kwargs, _ctx, fut = item
    if fn is _stop or fn is _wake:
        return
    if fut is not None:
        if pool._broken is not None and fut.set_running_or_notify_cancel():
            fut.set_exception(pool._broken_error())
        else:
            fut.cancel()
    if counts is not None:
        counts.cancelled += 1
    else:
        with pool._lock:
            pool._retired.cancelled += 1
    if pool._limit is not None:
        pool._release_slot()


def cancel_queued(pool: WorkerPool) -> None:
    """Cancel every queued task; the caller holds no lock."""
    while True:
        try:
            item = pool._queue.get_nowait()
        except queue.Empty:
            break
        cancel_item(pool, item, None)
        if item[0] is _stop:
            pool._put(item)  # pills must still reach the workers
            break
    pool._notify_idle()


def final_drain(pool: WorkerPool, cancel: bool) -> None:
    """Empty a closed pool's queue when no worker is left, then mark it drained.

    Runs in the thread that found the pool closed with no worker: stop(), the
    last retiring worker, or a submitter that raced with stop.
    """
    while True:
        with pool._lock:
            try:
                item = pool._queue.get_nowait()
            except queue.Empty:
                pool._drained = True
                pool._idle_cv.notify_all()
                return
        if cancel:
            cancel_item(pool, item, None)
        else:
            _run_late(pool, item)


def _run_late(pool: WorkerPool, item: tuple[Any, ...]) -> None:
    """Run a task that raced past stop() into a pool with no worker left."""
    fn, args, kwargs, ctx, fut = item
    if fn is _stop or fn is _wake:
        return
    counts = Counts()
    if fut is None or fut.set_running_or_notify_cancel():
        try:
            result = ctx.run(fn, *args, **kwargs)
        except Expired:
            counts.expired += 1
            if fut is not None:
                fut.set_exception(PoolTimeout(f"task {fn!r} was not started within its deadline"))
        except BaseException as exc:
            counts.failed += 1
            if fut is None:
                _report(pool, exc, fn)
            else:
                fut.set_exception(exc)
        else:
            counts.succeeded += 1
            if fut is not None:
                fut.set_result(result)
    else:
        counts.cancelled += 1
    with pool._lock:
        pool._retired.add(counts)
    if pool._limit is not None:
        pool._release_slot()


def _break(pool: WorkerPool, exc: BaseException, what: str) -> None:
    """A worker failed to start, or died: the pool is broken (as BrokenThreadPool).

    Queued tasks fail with ``PoolBroken`` chained from ``exc``; submissions
    raise it; ``repr`` and ``stats()`` say broken.
    """
    with pool._lock:
        if pool._broken is None:
            pool._broken = f"{what}; queued tasks were failed, create a new pool"
            pool._broken_cause = exc
        # Idle workers sleep in the queue: as stop() does on the first close,
        # send each a stop pill, or a later stop() (which sends none to a
        # closed pool) would wait for them for up to idle_timeout.
        pills = 0 if pool._closed else pool._nworkers
        pool._closed = True
        pool._cancel_pending = True
        pool._gate = True
        pool._room.notify_all()
        pool._resume.notify_all()
    cancel_queued(pool)
    for _ in range(pills):
        pool._put(STOP)


def _retire(pool: WorkerPool, worker: Worker, state: object) -> None:
    """Bookkeeping when a worker thread exits; the last one drains a closed pool."""
    with pool._lock:
        if worker in pool._workers:  # not orphaned by a fork (see _wait_for_task)
            pool._workers.discard(worker)
            pool._retired.add(worker)
        if worker.counted:
            pool._nworkers -= 1
            worker.counted = False
        last = pool._closed and pool._nworkers == 0 and not pool._drained
        pool._idle_cv.notify_all()
    try:
        if state is not _NO_STATE:
            close = getattr(state, "close", None)
            if callable(close):
                close()
        if pool._finalizer is not None:
            pool._finalizer()
    except BaseException as exc:
        _LOG.error("worker finalizer of %s raised", pool._options.name, exc_info=exc)
    finally:
        if last:
            final_drain(pool, cancel=pool._cancel_pending)


__all__ += ["cancel_item", "cancel_queued", "final_drain"]
