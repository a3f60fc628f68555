"""One worker thread of a WorkerPool: its loop, its counters, the control pills.

Kept apart from the pool's API so the hot loop is easy to read in one place.
Per task the loop does: one ``get_nowait`` (C), one read of the core's
``gate``, the call inside the submitter's context, one counter increment on
the worker itself, and — in bounded pools only — a lock round trip to give
the slot back.

A :class:`Worker` changes the pool only through its crew's methods and the
lifecycle core's (under the crew's lock); the counters it writes are its own
(one writer, no lock), summed by the crew when someone asks.

Control messages travel in the same queue as tasks, as task tuples whose
function raises :class:`_Control`; the loop only looks at them in its
exception path, so they cost nothing per ordinary task.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from poolkit._errors import PoolTimeout
from poolkit._log import log
from poolkit._waits import slice_of
from poolkit.workers._core import Expired, Expiring
from poolkit.workers._home import HomeContext, InEmptyContext
from poolkit.workers._lifecycle_plans import INF, Gate

if TYPE_CHECKING:
    from poolkit.workers._thread_crew import ThreadCrew

__all__ = [
    "NO_STATE",
    "STOP",
    "WAKE",
    "Counts",
    "Expired",
    "Expiring",
    "Worker",
    "current_pool",
    "current_worker",
    "is_control",
]

_LOG = logging.getLogger("poolkit.workers")
_LOCAL = threading.local()
_new_context = contextvars.Context
NO_STATE = object()  # a worker without a with_worker() object


def current_pool() -> object:
    """The WorkerPool whose worker is the calling thread, or ``None``."""
    return getattr(_LOCAL, "pool", None)


def current_worker() -> Worker | None:
    """The Worker whose thread is the calling thread, or ``None``."""
    return getattr(_LOCAL, "worker", None)


class Counts:
    """Outcome counters (each Worker's are written by its own thread only)."""

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


class _Control(BaseException):
    """Raised by a pill's function; the loop reads ``exit_worker`` to decide."""

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


STOP = _pill(_stop)  # exit (sent once per worker by the first stop)
WAKE = _pill(_wake)  # wake an idle worker so it meets the gate (resize down)


def as_full(item: Any, home: HomeContext) -> tuple[Any, ...]:
    """A queued item as a full tuple: a bare item (the function alone) gets the rest.

    A bare item's context is a copy of the pool's home (see ``_home``).
    """
    return item if type(item) is tuple else (item, (), {}, home.copy(), None)


def is_control(fn: object) -> bool:
    """Whether a queued item's function is a pill, not a task."""
    return fn is _stop or fn is _wake


def get_until(q: queue.SimpleQueue[Any], due: float, clock: Callable[[], float]) -> Any:
    """The next queued item, or ``None`` once ``clock()`` reaches ``due`` (any size).

    ``SimpleQueue.get`` refuses timeouts above ``threading.TIMEOUT_MAX``, so
    the wait goes in slices (an idle_timeout of 30 days or 1e300 s is valid).
    """
    while True:
        left = INF if due == INF else max(due - clock(), 0.0)
        try:
            return q.get(timeout=slice_of(left))
        except queue.Empty:
            if clock() >= due:
                return None


class Worker(Counts):
    """One worker thread: its outcome counters and its loop.

    ``counted`` is true while the worker counts in the core's ``workers``;
    paths that leave early (idle exit, shrink) take it out through the core
    and clear the flag. ``running`` is the Future of the task it runs, if any
    (a forked child fails the Futures of tasks that were running in the
    parent's threads).
    """

    __slots__ = ("counted", "crew", "running")

    def __init__(self, crew: ThreadCrew) -> None:
        super().__init__()
        self.crew = crew
        self.counted = True
        self.running: Any = None

    def run(self) -> None:
        """Thread target: initialise, run tasks until told to exit, retire."""
        crew = self.crew
        _LOCAL.pool = crew.owner
        _LOCAL.worker = self
        state: object = NO_STATE
        try:
            hooks = crew.hooks
            if hooks.initializer is not None:
                hooks.initializer(*hooks.initargs)
            if hooks.factory is not None:
                state = hooks.factory()
        except BaseException as exc:  # restore invariants (break the pool), then stop
            crew.break_(exc, f"a worker of {crew.name} failed to start: initializer raised {exc!r}")
            crew.retire(self, NO_STATE)
            return
        try:
            self._loop(state)
        except BaseException as exc:
            # Task failures never get here (the loop delivers them): this is
            # the worker itself failing. A pool quietly short of a worker can
            # leave tasks queued for ever, so the pool breaks, loudly.
            log(_LOG, logging.ERROR, crew.name, "a worker thread died", exc_info=exc)
            crew.break_(exc, f"a worker thread of {crew.name} died: {exc!r}")
        finally:
            crew.retire(self, state)
            _LOCAL.pool = None
            _LOCAL.worker = None

    def _loop(self, state: object) -> None:
        # The loop runs in an empty context of its own, kept while it stays
        # empty and replaced once anything sets a variable in it (a task, an
        # ``on_error`` handler, a Future's done-callback). A bare item (see
        # ThreadCrew) runs right there, a plain call, when the pool's home
        # context is empty too (``ctx.run`` per task cost ~15% of
        # go+wait); from a home holding variables, in a fresh copy of the
        # home. Either way no task sees another's variables.
        while True:
            bare_ctx = _new_context()
            if bare_ctx.run(self._run, state, bare_ctx):
                return

    def _run(self, state: object, bare_ctx: contextvars.Context) -> bool:
        """Run tasks inside ``bare_ctx``: True to exit, False for a fresh context."""
        crew = self.crew
        core = crew.core
        get_nowait = crew.queue.get_nowait
        bounded = crew.bounded
        stateless = state is NO_STATE
        empty = queue.Empty
        home_copy = crew.home.copy if crew.home.size else None
        result: Any = None
        item: Any
        while True:
            if bare_ctx:
                return False
            try:
                item = get_nowait()
            except empty:
                item = self.wait_for_task()
                if item is None:
                    return True
            if core.gate:
                try:
                    verdict = self._at_gate(item)
                except BaseException as exc:
                    # The task in hand must not vanish with this worker.
                    crew.break_(exc, f"a worker thread of {crew.name} died: {exc!r}")
                    crew.cancel_item(item, self)
                    raise
                if verdict is not None:
                    if verdict:
                        return True
                    continue
            if type(item) is not tuple:
                # A bare go() item: the function alone (no arguments,
                # submitted from the pool's home context), or one wrapped
                # to run in an empty context. Never a pill. Its own copy
                # of the run below: through ``ctx.run(fn, *args,
                # **kwargs)`` the go+wait benchmark loses ~40%. Called
                # directly when it must run in an empty context: this loop
                # runs in one; else in a copy of the home.
                try:
                    if home_copy is not None:
                        if type(item) is InEmptyContext:
                            if stateless:
                                item.args[0]()
                            else:
                                item.args[0](state)
                        elif stateless:
                            home_copy().run(item)
                        else:
                            home_copy().run(item, state)
                    elif stateless:
                        item()
                    else:
                        item(state)
                except Expired:
                    self.expired += 1
                except BaseException as exc:
                    self.failed += 1
                    crew.report(exc, item)
                    del exc
                else:
                    self.succeeded += 1
                item = None
                if bounded and self.counted:
                    crew.release_slot()
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
                    if control.exit_worker and crew.may_exit():
                        return True
                    continue
                except Expired:
                    self.expired += 1
                except BaseException as exc:
                    self.failed += 1
                    crew.report(exc, fn)
                    del exc
                else:
                    self.succeeded += 1
            else:
                # Marked running before the Future says so: a fork in between
                # must find it here, or the child's copy would stay RUNNING.
                self.running = fut
                if fut.set_running_or_notify_cancel():
                    try:
                        if stateless:
                            result = ctx.run(fn, *args, **kwargs)
                        else:
                            result = ctx.run(fn, state, *args, **kwargs)
                    # Resolve the Future before counting: wait() returns on
                    # the count, and by then every Future must be done.
                    # Counted in a finally: a done-callback may raise a
                    # BaseException out of set_result, and the count must
                    # still balance.
                    except Expired:
                        try:
                            fut.set_exception(
                                PoolTimeout(
                                    f"task {fn!r} was not started within its deadline; skipped"
                                )
                            )
                        finally:
                            self.expired += 1
                    except BaseException as exc:
                        try:
                            fut.set_exception(exc)
                        finally:
                            self.failed += 1
                            del exc
                    else:
                        try:
                            fut.set_result(result)
                        finally:
                            self.succeeded += 1
                            result = None
                else:
                    self.cancelled += 1
                self.running = None
            # Drop references now, not at the next task: a finished task's
            # callable, arguments and result must not be kept alive by an
            # idle worker (Executor contract).
            fn = args = kwargs = ctx = fut = None
            # Not for a worker orphaned by a fork (counted is false): the
            # child's reset already freed every slot.
            if bounded and self.counted:
                crew.release_slot()

    def wait_for_task(self) -> Any:
        """The queue was empty: park (telling ``wait()``), block for work, maybe retire.

        Returns the next task, or ``None`` when this worker must exit (the
        core retired it as idle surplus, or the pool is closed and empty).
        """
        crew = self.crew
        core = crew.core
        lock = crew.lock
        q = crew.queue
        clock = crew.clock
        with lock:
            if self not in crew.workers:
                # The pool was reset in a forked child while this thread (the
                # one that forked) ran a task: the child's pool starts its
                # own workers, so this one leaves.
                return None
            due = core.park(self, clock())
            crew.idle_cv.notify_all()
        try:
            while True:
                if core.closed:
                    with lock:
                        if q.qsize() == 0:
                            return None
                    try:
                        return q.get_nowait()
                    except queue.Empty:
                        continue
                item = get_until(q, INF if due is None else due, clock)
                if item is not None:
                    return item
                with lock:
                    due = core.reap(self, clock(), q.qsize())
                    if due is not None:
                        continue
                    # Retired. Look again: see Lifecycle.rejoin for the race.
                    if q.qsize() and core.rejoin(self, clock()):
                        due = core.park(self, clock())
                        continue
                    self.counted = False
                    return None
        finally:
            with lock:
                core.unpark(self)
                # Submitters decide to start workers from the idle count,
                # which is stale while a woken worker has not yet got here: a
                # task can be left queued with threads to spare. Re-decide
                # now that the count is exact.
                extra = core.spawn(q.qsize()) if core.workers < core.max_workers else 0
            if extra:
                crew.start_threads(extra)

    def _at_gate(self, item: Any) -> bool | None:
        """Pause, shrink and stop for a task just taken from the queue.

        Returns ``None`` to run the task, ``True`` to exit, ``False`` to take
        the next task (this one was cancelled).
        """
        crew = self.crew
        fn = as_full(item, crew.home)[0]
        control = is_control(fn)
        with crew.lock:
            verdict = crew.core.at_gate(control)
            while verdict is Gate.PAUSED:
                crew.resume_cv.wait()
                verdict = crew.core.at_gate(control)
            if verdict is Gate.RUN:
                return None
            if verdict is Gate.LEAVE:
                self.counted = False
                if fn is not _wake:
                    crew.put(item)
                return True
        crew.cancel_item(item, self)
        return False
