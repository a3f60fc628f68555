"""The asyncio side of AsyncWorkerPool: queue, worker tasks, acting on the core.

Queued items are tuples ``(coro_fn, args, kwargs, context, future_or_None)``
in a deque, or *bare*: for a ``go()`` without arguments from the pool's home
context (the context it was created in, see :mod:`poolkit.workers._home`;
the common case), the coroutine function alone, which a worker runs in a
copy of the home (no tuple and no context copy kept per task). Up
to ``max_workers`` worker Tasks take them and run them themselves, with no
Task per item (creating and scheduling a Task costs ~6 µs). Coroutine
*functions* are queued, not coroutine objects: nothing is created for a task
until a worker takes it, and a dropped task leaves no "coroutine was never
awaited" warning.

Everything runs on the pool's event loop (the loop of first use), so the
crew's counters are plain attributes with no lock, written only here.
Every decision (admission, sizing, reaping, stop, break, pause, resize) is
the lifecycle core's (:mod:`poolkit.workers._lifecycle`): a worker with
nothing to do asks :meth:`~poolkit.workers._lifecycle.Lifecycle.next_step`;
parked workers are reaped by one pool-wide timer that calls
:meth:`~poolkit.workers._lifecycle.Lifecycle.maintain`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import types
from collections import deque
from collections.abc import Callable
from typing import Any

from poolkit._errors import EventLoopMismatch, PoolOverload, PoolTimeout
from poolkit._log import log, log_overload
from poolkit.workers import _async_worker as aw
from poolkit.workers._core import Admission, WorkerHooks, WorkerPoolStats
from poolkit.workers._home import HomeContext
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._lifecycle_plans import INF, Step
from poolkit.workers._timing import AsyncTimed, TaskTimings, unwrap

__all__ = ["AsyncCrew"]

_LOG = logging.getLogger("poolkit.workers")
_copy_context = contextvars.copy_context
_new_context = contextvars.Context
_running_loop = asyncio.get_running_loop
_get_ident = threading.get_ident
Item = tuple[Any, ...]
Bare = Callable[[], Any]  # a bare item: the coroutine function alone
_Coroutine = types.CoroutineType


class AsyncCrew:
    """The worker tasks of one AsyncWorkerPool and the state they work on.

    The pool's submission methods read ``eager_ready``, ``queue``,
    ``pending``, ``max_workers`` and ``eager_depth`` and call :meth:`put`
    and :meth:`start_now`; everything else goes through methods.
    """

    def __init__(
        self,
        core: Lifecycle,
        *,
        hooks: WorkerHooks,
        clock: Callable[[], float],
        eager: bool,
        timings: TaskTimings | None = None,
    ) -> None:
        # CPython (3.11 to 3.13) shares one key table among a class's instances only
        # while they have fewer than 30 attributes; from the 30th on, every
        # method call on the crew is looked up the slow way (about 40 % more
        # per call), so the crew keeps to 29 (a test holds it there).
        self.core = core
        self.timings = timings
        self.hooks = hooks
        self.home = HomeContext()  # the creator's context: where bare items run
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: deque[Item | Bare] = deque()
        self.parked: deque[asyncio.Future[bool]] = deque()  # idle workers' wake-ups
        self.room: deque[asyncio.Future[None]] = deque()  # blocked submitters
        self.idle_waiters: list[asyncio.Future[None]] = []  # wait() callers
        self.tasks: set[asyncio.Task[None]] = set()
        # Worker Task -> the submit() Future of the suspended task it drives
        # (see _drive_cancellable), and the workers whose Task was cancelled
        # on behalf of such a Future.
        self.running: dict[asyncio.Task[Any], asyncio.Future[Any] | None] = {}
        self.cancel_requested: set[asyncio.Task[Any]] = set()
        self.pending = 0  # accepted, not finished
        self.submitted = self.failed = self.cancelled = self.expired = 0
        # The core's bound, copied for the submit fast path; resize() refreshes it.
        self.max_workers = core.max_workers
        # Tasks of pools with per-worker setup (initializer, stateful
        # workers) must run on a worker that had it, and a bounded pool's
        # admission counts every started task: no eager start there.
        self.bounded = core.intake.limit is not None  # fixed: queue_size cannot change
        plain = hooks.factory is None and hooks.initializer is None
        self.eager = eager and plain and not self.bounded
        self.eager_ready = False  # see sync_gate
        # The pool's loop if it records its thread (an asyncio loop, see
        # bind), else None; the same while go() may queue straight away
        # (unbounded: no admission; eager start off; no timings; open: see
        # sync_gate), else None.
        self.own_loop: Any = None
        self.direct_loop: Any = None
        # Whether a new queued item may need dispatch() (a parked worker to
        # wake, or room to start one): go()'s fast path reads this one
        # attribute instead of ``parked`` and the core's ``workers``. It may
        # be True when nothing is needed (dispatch() then recomputes it),
        # never False when something is: everything that parks a worker,
        # counts one out or raises ``max_workers`` sets it (see
        # next_item, tick, retire, resize, sync_gate).
        self.wake = True
        self.eager_depth = 0
        self.accepted: asyncio.Future[None]
        self.tick_handle: asyncio.TimerHandle | None = None
        self.tick_at = INF

    # --------------------------------------------------------------- binding

    def bind(self) -> asyncio.AbstractEventLoop:
        """The pool's loop; the first call binds it and starts ``min_workers``.

        Raises:
            EventLoopMismatch: called on another loop than the pool's.
        """
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
            # What go() returns when a task is accepted at once: awaiting a
            # done Future costs no coroutine and no trip through the loop.
            self.accepted = loop.create_future()
            self.accepted.set_result(None)
            if isinstance(loop, asyncio.BaseEventLoop):
                # Submissions check they run on this loop by the loop's own
                # record of its thread (``_thread_id``, what asyncio's debug
                # mode checks): get_running_loop() calls getpid(), a system
                # call that cost half of a go(). Other loops ask get_running_loop.
                self.own_loop = loop
            self.sync_gate()
            self.start_tasks(self.core.start_min())
        elif self.loop is not loop:
            raise EventLoopMismatch(
                f"{self.name} belongs to another event loop; create one pool per loop"
            )
        return loop

    def sync_gate(self) -> None:
        """Refresh ``eager_ready`` and ``direct_loop`` after the core's gate may have changed.

        ``eager_ready`` folds every fixed condition of an eager start (on,
        bound to a loop, open, not paused or shrinking) into one attribute
        the submission methods test first; ``direct_loop`` is cleared once
        the pool is closed, so ``go()``'s fast path needs no test of its own
        for that. Every change of the core's ``closed`` (close, break, fork)
        is followed by this call.
        """
        core = self.core
        self.wake = True
        self.eager_ready = self.eager and self.loop is not None and not core.gate
        direct = not (self.eager or self.bounded or self.timings is not None or core.closed)
        self.direct_loop = self.own_loop if direct else None

    @property
    def name(self) -> str:
        """The pool's name (a property: see the attribute count in __init__)."""
        return self.core.name

    def in_own_task(self) -> bool:
        """Whether the caller is one of this pool's tasks (a worker, or an eager start)."""
        return self.eager_depth > 0 or asyncio.current_task() in self.tasks

    # ------------------------------------------------------------- admission

    def decide(self, block: bool) -> Admission:
        """The core's admission decision for one submission now."""
        return self.core.intake.admit(pending=self.pending, blocked=len(self.room), block=block)

    def overload(self, count: bool = True) -> PoolOverload:
        """Count a refused submission (unless ``count`` is false) and return its error."""
        error = self.core.intake.overload(pending=self.pending, blocked=len(self.room), count=count)
        log_overload(self.name, error)
        return error

    async def admit(self) -> None:
        """Wait for room in a bounded pool; cancellation-safe."""
        core = self.core
        while True:
            core.check_open()
            decision = self.decide(True)
            if decision is Admission.ACCEPT:
                return
            if decision is Admission.OVERLOAD:
                raise self.overload()
            if self.in_own_task():
                raise core.intake.deadlock(self.pending)
            waiter: asyncio.Future[None] = self.bind().create_future()
            self.room.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self.room:
                    self.room.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self.wake_room()  # pass on a wake-up we were given but cannot use
                raise

    def wake_room(self) -> None:
        """Wake the first blocked submitter still waiting."""
        while self.room:
            waiter = self.room.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # ------------------------------------------------------------- dispatch

    def put(self, item: Item) -> None:
        """Queue an admitted item and make sure a worker will take it."""
        own = self.own_loop
        if (own is None or own._thread_id != _get_ident()) and self.loop is not _running_loop():
            self.bind()  # first use binds; another loop is refused
        timings = self.timings
        if timings is not None:
            fn, args, kwargs, ctx, fut = item
            item = (AsyncTimed(fn, timings, timings.clock()), args, kwargs, ctx, fut)
        self.queue.append(item)
        self.submitted += 1
        self.pending += 1
        if self.parked or self.core.workers < self.max_workers:
            self.dispatch()

    def dispatch(self) -> None:
        """Wake an idle worker for the new item, or start one."""
        parked = self.parked
        while parked:
            worker = parked.popleft()
            if not worker.done():
                worker.set_result(True)
                break
        else:
            self.start_tasks(self.core.spawn(len(self.queue), idle=0, closed_ok=True))
        self.wake = bool(parked) or self.core.workers < self.max_workers

    def start_tasks(self, count: int) -> None:
        """Create ``count`` worker Tasks the core already reserved."""
        loop = self.loop
        assert loop is not None
        own = self.own_loop is not None  # an asyncio loop: create_task takes a context
        for _ in range(count):
            # Each worker Task runs in a copy of the pool's home context:
            # while it holds the home, the worker awaits bare items directly
            # (see AsyncWorker._loop). Other loops get the creator's context copy.
            ctx = self.home.copy() if own else None
            worker = aw.AsyncWorker(self, ctx)
            if ctx is None:
                task = loop.create_task(worker.run(), name=f"{self.name}-worker")
            else:
                task = loop.create_task(worker.run(), name=f"{self.name}-worker", context=ctx)
            self.tasks.add(task)

    def can_start_now(self) -> bool:
        """Whether a new task may start in the caller (eager start).

        Only when nothing is queued (FIFO order is kept), a worker slot is
        free (``max_workers`` holds), the pool is open and not paused (the
        core's gate), and the caller is not itself an eager start (no
        unbounded recursion). The submission methods inline this test on
        their fast path.
        """
        return (
            self.eager
            and not self.queue
            and self.pending < self.max_workers
            and not self.core.gate
            and not self.eager_depth
        )

    def start_now(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], fut: Any) -> None:
        """Run a task's first step in the caller, as Python 3.12's eager tasks do.

        A coroutine that finishes without suspending costs no queue trip, no
        worker wake-up and no Task. One that suspends is handed, mid-flight,
        to a worker (at the head of the queue), which drives it to the end.
        It runs in a copy of the caller's context, as a Task would.

        During the step ``eager_depth`` is set: a task it submits is queued,
        not started eagerly in turn. The step is not in ``pending``: it ends
        (or becomes a queued continuation, counted then) before anything else
        on the loop can look. ``succeeded`` is derived in :meth:`stats`, so a
        task that finishes at once costs one counter.
        """
        ctx = _copy_context()
        self.submitted += 1
        if self.timings is not None:
            fn = AsyncTimed(fn, self.timings, self.timings.clock())
        self.eager_depth = 1
        try:
            coro = fn(*args, **kwargs)
            if fut is None and type(coro) is _Coroutine:
                # go(): no result to keep, so no StopIteration to catch.
                yielded = ctx.run(aw.first_step, coro)
                if yielded is aw.FINISHED:
                    self.eager_depth = 0
                    return
            else:
                yielded = ctx.run(coro.send, None)
        except StopIteration as stop:
            self.eager_depth = 0
            if fut is not None:
                fut.set_result(stop.value)
        except BaseException as exc:
            self.eager_depth = 0
            self.failed += 1
            exc = aw.explain(exc, fn)
            if fut is not None:
                fut.set_exception(exc)
            else:
                self.report(exc, fn)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            self.eager_depth = 0
            if self.loop is not _running_loop():
                coro.close()
                self.failed += 1
                self.bind()  # raises EventLoopMismatch
            self.pending += 1
            self.queue.appendleft((aw.resume, (coro, ctx, yielded), {}, _new_context(), fut))
            self.dispatch()

    def finished_slow(self) -> None:
        """After ``pending`` dropped: wake a blocked submitter, or ``wait()`` callers."""
        if self.room:
            self.wake_room()
        if not self.pending and self.idle_waiters:
            for waiter in self.idle_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self.idle_waiters.clear()

    def report(self, exc: BaseException, fn: object) -> None:
        """Hand a fire-and-forget task's failure to ``on_error``."""
        on_error = self.core.options.on_error
        try:
            on_error(exc, unwrap(fn))
        except Exception as handler_exc:
            _LOG.error("on_error handler %r raised", on_error, exc_info=handler_exc)

    # ---------------------------------------------------------------- idling

    async def next_item(self, worker: aw.AsyncWorker) -> bool:
        """Slow path of a worker: pause, shrink, stop, or park until work comes.

        Returns whether the worker should go on; False: it exits, and the
        core has counted it out (``worker.counted`` is cleared then).
        """
        loop = self.loop
        assert loop is not None
        core = self.core
        while True:
            # This worker may park or exit: go() must dispatch again.
            self.wake = True
            step = core.next_step(len(self.queue))
            if step is Step.RUN:
                return True
            if step is Step.CANCEL:
                self.cancel_queued()
                continue
            if step is Step.EXIT:
                worker.counted = False
                self.sync_gate()
                return False
            waiter: asyncio.Future[bool] = loop.create_future()
            self.parked.append(waiter)
            due = core.park(waiter, self.clock())
            if due is not None:
                self.schedule_tick(due)
            try:
                await waiter
            finally:
                if waiter in self.parked:
                    self.parked.remove(waiter)
                if not core.unpark(waiter):
                    # Retired by the reaping tick while parked: counted out
                    # already, even if a cancellation is what woke us.
                    worker.counted = False
            if not worker.counted:
                return False

    def schedule_tick(self, due: float | None) -> None:
        """Arm the pool's one reaping timer for ``due`` unless it fires earlier."""
        if due is None or self.loop is None or due >= self.tick_at:
            return
        if self.tick_handle is not None:
            self.tick_handle.cancel()
        self.tick_at = due
        self.tick_handle = self.loop.call_later(max(0.0, due - self.clock()), self.tick)

    def tick(self) -> None:
        """The reaping timer fired: retire the idle workers the core names."""
        self.tick_handle = None
        self.tick_at = INF
        self.wake = True  # reaped workers leave room to start new ones
        tick = self.core.maintain(self.clock(), len(self.queue))
        for waiter in tick.retire:
            assert isinstance(waiter, asyncio.Future)
            if not waiter.done():
                waiter.set_result(False)
        self.schedule_tick(tick.wake_at)

    def wake_parked(self, count: int, value: bool) -> None:
        """Wake up to ``count`` parked workers with ``value`` (True: work is queued)."""
        for _ in range(min(count, len(self.parked))):
            waiter = self.parked.popleft()
            if not waiter.done():
                waiter.set_result(value)

    def wake_all(self) -> None:
        """Wake parked workers and blocked submitters so they see the new state."""
        self.wake_parked(len(self.parked), False)
        while self.room:
            room = self.room.popleft()
            if not room.done():
                room.set_result(None)

    # ------------------------------------------------------------ lifecycle

    def idle_waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A Future set once nothing is pending (for ``wait()``)."""
        waiter: asyncio.Future[None] = loop.create_future()
        self.idle_waiters.append(waiter)
        return waiter

    def forget_idle_waiter(self, waiter: asyncio.Future[None]) -> None:
        """A ``wait()`` caller left (done, timed out or cancelled)."""
        if waiter in self.idle_waiters:
            self.idle_waiters.remove(waiter)

    def resumed(self) -> None:
        """After the core resumed: wake parked workers for the queue, start more."""
        self.sync_gate()
        if self.loop is None:
            return
        self.wake_parked(len(self.queue), True)
        if self.queue and self.core.workers < self.core.max_workers:
            self.start_tasks(self.core.spawn(len(self.queue), idle=0))

    def resize(self, max_workers: int | None, min_workers: int | None) -> None:
        """Apply new bounds through the core: wake the surplus, start workers, admit.

        Raises:
            PoolClosed, PoolBroken: the pool is stopped.
            ValueError, TypeError: bad bounds (the message names the argument).
        """
        core = self.core
        plan = core.resize(max_workers, min_workers, backlog=len(self.queue), idle=len(self.parked))
        self.max_workers = core.max_workers
        self.sync_gate()
        if self.loop is None:
            # Nothing runs before the pool is bound: bind() starts min_workers.
            core.start_failed(plan.start)
            return
        if core.gate:
            self.wake_parked(len(self.parked), False)  # idle surplus workers: wake up and leave
        self.start_tasks(plan.start)
        for _ in range(len(self.room)):
            if core.intake.limit is not None and self.pending >= core.intake.limit:
                break
            self.wake_room()
        self.schedule_tick(core.next_reap())

    def close(self, cancel: bool) -> None:
        """Close through the core; cancel the queue if asked; wake everyone to see it."""
        self.core.close(cancel)
        self.sync_gate()
        if self.tick_handle is not None:
            self.tick_handle.cancel()
            self.tick_handle = None
            self.tick_at = INF
        if self.core.cancel_pending:
            self.cancel_queued()
        self.wake_all()

    async def join(self, seconds: float | None) -> None:
        """Wait for every worker task to end; cancel them after ``seconds``.

        Raises:
            PoolTimeout: tasks still running after ``seconds`` (now cancelled).
        """
        if not self.tasks:
            return
        _done, running = await asyncio.wait(list(self.tasks), timeout=seconds)
        if running:
            self.core.cancel_rest()
            self.cancel_queued()
            for task in running:
                task.cancel()
            await asyncio.wait(running)
            raise PoolTimeout(
                f"{self.name} did not stop within {seconds} s: "
                f"{len(running)} tasks were still running and were cancelled"
            )

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        queued = len(self.queue)
        # Every submitted task is pending or has one outcome; successes are
        # the rest, so the hot paths count nothing for them.
        succeeded = self.submitted - self.pending - self.failed - self.cancelled - self.expired
        return self.core.stats(
            submitted=self.submitted,
            succeeded=succeeded,
            failed=self.failed,
            cancelled=self.cancelled,
            expired=self.expired,
            running=max(0, self.pending - queued),
            queued=queued,
            idle=len(self.parked),
            blocked=len(self.room),
        )

    # ----------------------------------------------------- cancel and break

    def cancel_queued(self) -> None:
        """Cancel every queued task (fail it with ``PoolBroken`` if the pool broke)."""
        broken = self.core.broken
        while self.queue:
            item = self.queue.popleft()
            fut = item[4] if type(item) is tuple else None
            if fut is not None and not fut.done():
                if broken is not None:
                    fut.set_exception(self.core.broken_error())
                else:
                    fut.cancel()
            self.cancelled += 1
            self.pending -= 1
            self.finished_slow()

    def break_(self, exc: BaseException, what: str) -> None:
        """A worker failed to start, or died: fail queued tasks, refuse new ones.

        Submissions raise ``PoolBroken`` chained from ``exc``; ``repr`` and
        ``stats()`` say broken.
        """
        self.core.break_(what, exc)
        log(_LOG, logging.ERROR, self.name, "the pool is broken: %s", what)
        self.sync_gate()
        self.cancel_queued()
        self.wake_all()

    def after_fork_in_child(self) -> None:
        """Break the pool in a forked child: its loop and workers stay in the parent.

        An event loop does not survive ``os.fork()`` (its selector and worker
        tasks belong to the parent), so the child's copy refuses every call
        with ``PoolBroken`` instead of hanging or binding a second loop, and
        fails the Futures of queued tasks (the parent runs those).
        """
        self.core.break_forked(
            f"{self.name} was created in process {os.getppid()} and used after "
            "os.fork(): its event loop and worker tasks stay in that process; "
            "create a new AsyncWorkerPool in the child"
        )
        self.sync_gate()
        self.cancel_queued()

    def retire(self, task: asyncio.Task[Any] | None, counted: bool) -> None:
        """A worker task ends; ``counted``: it still counts in the core's ``workers``."""
        self.tasks.discard(task)
        self.core.retire(counted)
        self.wake = True
