"""The state and lifecycle of AsyncWorkerPool: admission, workers, wait, pause, resize, stop.

Everything runs on the pool's event loop, so the bookkeeping is plain
attributes with no lock. Sizing, admission and stats come from the shared
core (:mod:`poolkit.workers._core`); the submission API is in
:mod:`poolkit.workers._async_pool`.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from poolkit import _fork
from poolkit._errors import (
    EventLoopMismatch,
    PoolBroken,
    PoolClosed,
    PoolDeadlock,
    PoolOverload,
)
from poolkit._validate import Clock, check_callable
from poolkit.workers import _async_worker as aw
from poolkit.workers._core import (
    DEFAULT_IDLE_TIMEOUT,
    Admission,
    PoolOptions,
    admit,
    capacity,
    overload_message,
    spawn_count,
)

__all__ = ["AsyncPoolState"]

T = TypeVar("T")
_copy_context = contextvars.copy_context
_new_context = contextvars.Context
_running_loop = asyncio.get_running_loop


class AsyncPoolState:
    """AsyncWorkerPool's state, admission and the hooks its workers call."""

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int = 0,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        queue_size: int | None = None,
        nonblocking: bool = False,
        max_blocking: int | None = None,
        on_error: Callable[[BaseException, Any], object] | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        finalizer: Callable[[], object] | None = None,
        name: str | None = None,
        clock: Clock = time.monotonic,
        eager: bool = True,
        _worker_factory: Callable[[], object] | None = None,
    ) -> None:
        self._options = PoolOptions.build(
            max_workers=100 if max_workers is None else max_workers,
            min_workers=min_workers,
            idle_timeout=idle_timeout,
            queue_size=queue_size,
            nonblocking=nonblocking,
            max_blocking=max_blocking,
            on_error=on_error,
            name=name if name is not None else f"AsyncWorkerPool-{id(self):x}",
        )
        self._initializer = check_callable("initializer", initializer, optional=True)
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, got {type(initargs).__name__}")
        self._initargs = initargs
        self._finalizer = check_callable("finalizer", finalizer, optional=True)
        self._worker_factory = check_callable("factory", _worker_factory, optional=True)
        self._clock = check_callable("clock", clock)
        self._on_error = self._options.on_error
        self._max_workers = self._options.max_workers
        self._limit = capacity(self._max_workers, self._options.queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[tuple[Any, ...]] = deque()
        self._idle: deque[asyncio.Future[bool]] = deque()  # parked workers
        self._room: deque[asyncio.Future[None]] = deque()  # blocked submitters
        self._idle_waiters: list[asyncio.Future[None]] = []  # wait() callers
        self._tasks: set[asyncio.Task[None]] = set()
        # Worker Task -> the submit() Future of the suspended task it drives
        # (see _async_worker._drive_cancellable), and the workers whose Task
        # was cancelled on behalf of such a Future.
        self._running: dict[asyncio.Task[Any], asyncio.Future[Any] | None] = {}
        self._cancel_requested: set[asyncio.Task[Any]] = set()
        self._nworkers = 0
        self._pending = 0  # accepted, not finished
        self._submitted = self._failed = 0
        self._cancelled = self._expired = self._dropped = 0
        self._closed = False
        self._cancel_pending = False
        self._paused = False
        self._gate = False
        self._eager_ready = False  # see _set_gate
        self._accepted: asyncio.Future[None]
        self._broken: str | None = None
        self._broken_cause: BaseException | None = None
        if not isinstance(eager, bool):
            raise TypeError(f"eager must be a bool, got {type(eager).__name__}")
        # Tasks of pools with per-worker setup (initializer, stateful
        # workers) must run on a worker that had it, and a bounded pool's
        # admission counts every started task: no eager start there.
        self._eager = (
            eager and _worker_factory is None and initializer is None and queue_size is None
        )
        self._eager_depth = 0
        _fork.track(self)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            # What go() returns when a task is accepted at once: awaiting a
            # done Future costs no coroutine and no trip through the loop.
            self._accepted = loop.create_future()
            self._accepted.set_result(None)
            self._set_gate(self._gate)
            if self._options.min_workers:
                self._spawn(self._options.min_workers)
        elif self._loop is not loop:
            raise EventLoopMismatch(
                f"{self._options.name} belongs to another event loop; create one pool per loop"
            )
        return loop

    def _check_open(self) -> None:
        if self._closed:
            if self._broken is not None:
                raise self._broken_error()
            raise PoolClosed(f"{self._options.name} is stopped; create a new pool to run more")

    def _broken_error(self) -> PoolBroken:
        """The error of a broken pool, chained from what broke it."""
        error = PoolBroken(self._broken)
        error.__cause__ = self._broken_cause
        return error

    def _decide(self, block: bool) -> Admission:
        return admit(
            self._pending,
            self._limit,
            blocked=len(self._room),
            nonblocking=self._options.nonblocking or not block,
            max_blocking=self._options.max_blocking,
        )

    def _overload(self, count: bool = True) -> PoolOverload:
        self._dropped += count
        return PoolOverload(overload_message(self._options, self._pending, len(self._room)))

    async def _admit(self) -> None:
        """Wait for room in a bounded pool; cancellation-safe."""
        while True:
            self._check_open()
            decision = self._decide(True)
            if decision is Admission.ACCEPT:
                return
            if decision is Admission.OVERLOAD:
                raise self._overload()
            if self._in_own_task():
                self._admit_deadlock()
            waiter: asyncio.Future[None] = self._bind().create_future()
            self._room.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._room:
                    self._room.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_room()  # pass on a wake-up we were given but cannot use
                raise

    def _admit_deadlock(self) -> NoReturn:
        self._dropped += 1
        raise PoolDeadlock(
            f"a task of {self._options.name} would wait for room in its own full "
            "pool; raise queue_size, use try_submit, or submit from outside the pool"
        )

    def _wake_room(self) -> None:
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _put(self, item: tuple[Any, ...]) -> None:
        """Queue an admitted item and make sure a worker will take it."""
        if self._loop is not _running_loop():
            self._bind()  # first use binds; another loop is refused
        self._queue.append(item)
        self._submitted += 1
        self._pending += 1
        if self._idle or self._nworkers < self._max_workers:
            self._dispatch()

    def _dispatch(self) -> None:
        """Wake an idle worker for the new item, or start one."""
        idle = self._idle
        while idle:
            worker = idle.popleft()
            if not worker.done():
                worker.set_result(True)
                return
        if self._nworkers < self._max_workers:
            self._spawn(
                spawn_count(
                    workers=self._nworkers,
                    max_workers=self._max_workers,
                    backlog=len(self._queue),
                    idle=0,
                )
            )

    def _set_gate(self, gate: bool) -> None:
        """Set the workers' slow-path flag; keep the eager fast-path flag in step.

        ``_eager_ready`` folds every fixed condition of an eager start (on,
        bound to a loop, open, not paused or shrinking) into one attribute
        the public methods test first.
        """
        self._gate = gate
        self._eager_ready = self._eager and self._loop is not None and not gate

    def _in_own_task(self) -> bool:
        """Whether the caller is one of this pool's tasks (a worker, or an eager start)."""
        return self._eager_depth > 0 or asyncio.current_task() in self._tasks

    def _can_start_now(self) -> bool:
        """Whether a new task may start in the caller (eager start).

        Only when nothing is queued (FIFO order is kept), a worker slot is
        free (``max_workers`` holds), the pool is open and not paused
        (``_gate``), and the caller is not itself an eager start (no unbounded
        recursion). The public methods inline this test on their fast path.
        """
        return (
            self._eager
            and not self._queue
            and self._pending < self._max_workers
            and not self._gate
            and not self._eager_depth
        )

    def _start_now(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], fut: Any) -> None:
        """Run a task's first step in the caller, as Python 3.12's eager tasks do.

        A coroutine that finishes without suspending costs no queue trip, no
        worker wake-up and no Task. One that suspends is handed, mid-flight,
        to a worker (at the head of the queue), which drives it to the end.
        It runs in a copy of the caller's context, as a Task would.

        During the step ``_eager_depth`` is set: a task it submits is queued,
        not started eagerly in turn. The step is not in ``_pending``: it ends
        (or becomes a queued continuation, counted then) before anything else
        on the loop can look. ``succeeded`` is derived in :meth:`stats`, so a
        task that finishes at once costs one counter.
        """
        ctx = _copy_context()
        self._submitted += 1
        self._eager_depth = 1
        try:
            coro = fn(*args, **kwargs)
            yielded = ctx.run(coro.send, None)
        except StopIteration as stop:
            self._eager_depth = 0
            if fut is not None:
                fut.set_result(stop.value)
        except BaseException as exc:
            self._eager_depth = 0
            self._failed += 1
            exc = aw.explain(exc, fn)
            if fut is not None:
                fut.set_exception(exc)
            else:
                self._report(exc, fn)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            self._eager_depth = 0
            if self._loop is not _running_loop():
                coro.close()
                self._failed += 1
                self._bind()  # raises EventLoopMismatch
            self._pending += 1
            self._queue.appendleft((aw.resume, (coro, ctx, yielded), {}, _new_context(), fut))
            self._dispatch()

    def _spawn(self, count: int) -> None:
        loop = self._loop
        assert loop is not None
        for _ in range(count):
            self._nworkers += 1
            task = loop.create_task(aw.run_worker(self), name=f"{self._options.name}-worker")
            self._tasks.add(task)

    def _finish(self) -> None:
        """An item left the pool (ran, failed, was cancelled or expired)."""
        self._pending -= 1
        self._finished_slow()

    def _finished_slow(self) -> None:
        """After ``_pending`` dropped: wake a blocked submitter, or ``wait()`` callers."""
        if self._room:
            self._wake_room()
        if not self._pending and self._idle_waiters:
            for waiter in self._idle_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._idle_waiters.clear()

    def _report(self, exc: BaseException, fn: object) -> None:
        try:
            self._on_error(exc, fn)
        except Exception as handler_exc:
            aw._LOG.error("on_error handler %r raised", self._on_error, exc_info=handler_exc)

    async def _next_item(self) -> bool:
        """Slow path of a worker: pause, shrink, stop, or park until work comes.

        Returns whether the worker should go on (False: exit).
        """
        loop = self._loop
        assert loop is not None
        while True:
            if self._closed:
                if self._cancel_pending:
                    self._cancel_queued()
                if self._queue:
                    return True
                self._nworkers -= 1
                return False
            if self._nworkers > self._max_workers:
                self._nworkers -= 1
                self._set_gate(self._paused or self._nworkers > self._max_workers)
                return False
            if self._queue and not self._paused:
                return True
            waiter: asyncio.Future[bool] = loop.create_future()
            self._idle.append(waiter)
            timer = None
            surplus = self._nworkers > self._options.min_workers
            if surplus and self._options.idle_timeout is not None and not self._paused:
                timer = loop.call_later(self._options.idle_timeout, _expire, waiter)
            try:
                got_work = await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if waiter in self._idle:
                    self._idle.remove(waiter)
            if not got_work and not self._queue and self._nworkers > self._options.min_workers:
                self._nworkers -= 1
                return False

    def _cancel_queued(self) -> None:
        broken = self._broken
        while self._queue:
            _fn, _args, _kwargs, _ctx, fut = self._queue.popleft()
            if fut is not None and not fut.done():
                if broken is not None:
                    fut.set_exception(self._broken_error())
                else:
                    fut.cancel()
            self._cancelled += 1
            self._finish()

    def _break(self, exc: BaseException, what: str) -> None:
        """A worker failed to start, or died: fail queued tasks, refuse new ones.

        Submissions raise ``PoolBroken`` chained from ``exc``; ``repr`` and
        ``stats()`` say broken.
        """
        if self._broken is None:
            self._broken = f"{what}; queued tasks were failed, create a new pool"
            self._broken_cause = exc
        self._closed = True
        self._cancel_pending = True
        self._set_gate(True)
        self._cancel_queued()
        self._wake_all()

    def _after_fork_in_child(self) -> None:
        """Break the pool in a forked child: its loop and workers stay in the parent.

        An event loop does not survive ``os.fork()`` (its selector and worker
        tasks belong to the parent), so the child's copy refuses every call
        with ``PoolBroken`` instead of hanging or binding a second loop, and
        fails the Futures of queued tasks (the parent runs those).
        """
        parent = os.getppid()
        if self._broken is None:
            self._broken = (
                f"{self._options.name} was created in process {parent} and used after "
                "os.fork(): its event loop and worker tasks stay in that process; "
                "create a new AsyncWorkerPool in the child"
            )
        self._closed = True
        self._cancel_pending = True
        self._set_gate(True)
        self._cancel_queued()

    def _retire(self, task: asyncio.Task[Any] | None, counted: bool) -> None:
        """A worker task ends; ``counted``: it still counts in ``_nworkers``."""
        self._tasks.discard(task)
        if counted:
            self._nworkers -= 1

    def _wake_all(self) -> None:
        """Wake parked workers and blocked submitters so they see the new state."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(False)
        while self._room:
            room = self._room.popleft()
            if not room.done():
                room.set_result(None)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
