"""ProcessPool: worker processes for CPU-bound work, with WorkerPool's vocabulary.

What it adds over ``ProcessPoolExecutor`` (and over ``multiprocessing.Pool``,
pebble and loky, each of which lacks some of it): a per-task timeout
(``pool.options(timeout=...)``) that kills the worker running the task; opt-in
cancellation of running tasks; crash isolation (only the crashed worker's task
fails, with :class:`~poolkit.WorkerCrashed`; the pool goes on); recycling by
task count and by memory; a bounded queue, ``try_submit``, ``resize``,
``wait`` and ``stats``; and a shutdown that leaves no process behind.

``ProcessPool`` is a driver over the worker pools' sans-io lifecycle core
(:class:`~poolkit.workers._lifecycle.Lifecycle`: closed and broken,
admission, the worker count and bounds, resize, idle reaping). It holds, by
composition, the core, a :class:`~poolkit.processes._state.ProcessState`
(records under one lock, the transitions submitters and dispatcher share,
admission and hand-off to idle workers) and a
:class:`~poolkit.processes._dispatch.Dispatcher` (the thread that starts,
feeds, times out, reaps and kills the worker processes).

Other modules of :mod:`poolkit.processes`: worker and task records and
process start ``_workers``; pickling, replies and the Future ``_wire``;
``map``/``group`` ``_map``; per-task options ``_options``; stats ``_stats``;
the child loop ``_child`` (standard library only).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from poolkit import _registry
from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._typing import Result
from poolkit._validate import (
    check_bool,
    check_callable,
    check_optional_int,
    check_optional_seconds,
)
from poolkit._waits import deadline_after, join_thread, wait_for
from poolkit.processes import _child as child
from poolkit.processes._dispatch import Dispatcher
from poolkit.processes._map import ProcessTaskGroup, process_map
from poolkit.processes._options import NO_OPTIONS, Options, TaskOptions
from poolkit.processes._state import ProcessState
from poolkit.processes._stats import ProcessPoolStats
from poolkit.processes._wire import ProcessFuture, dumps, function_blob
from poolkit.processes._workers import Task, resolve_context
from poolkit.workers._core import ErrorHandler, PoolOptions, WorkerHooks, stop_mode
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._lifecycle_plans import Step
from poolkit.workers._map import MapArgs
from poolkit.workers._verbs import CoreViews, MapVerb, ShutdownVerb

if TYPE_CHECKING:
    from poolkit.workers._group import CancelToken, GroupCore

__all__ = ["ProcessPool"]

P = ParamSpec("P")
T = TypeVar("T")

# Surplus workers (above min_workers) exit after this long idle. A process
# costs ~10-100 ms to start (fork/forkserver vs spawn), ~100x a thread, so
# reaping is lazier than WorkerPool's 2 s: loky's reusable executor uses 10 s.
PROCESS_IDLE_TIMEOUT = 10.0


# map() is typed narrower than Executor.map (see MapVerb): the ignore is for that.
class ProcessPool(CoreViews, MapVerb, ShutdownVerb, Executor):  # type: ignore[misc]
    """A pool of worker processes; a drop-in ``ProcessPoolExecutor``.

    Args:
        max_workers: most worker processes (default ``os.cpu_count()``).
        mp_context: start method name (``"forkserver"``, ``"spawn"``,
            ``"fork"``) or a ``multiprocessing`` context. Default: forkserver
            on Linux (safe with threads), spawn elsewhere; ``fork`` starts
            fastest but is unsafe if the parent runs threads.
        initializer: called in each worker before its first task; if it
            raises, the pool is broken (``PoolBroken``) instead of restarting
            workers in a loop.
        initargs: arguments for ``initializer``.
        min_workers: workers started at once and kept when idle.
        idle_timeout: seconds before a surplus idle worker exits (``None``:
            never).
        queue_size: tasks that may wait beyond the running ones (``None``:
            unbounded; ``0``: hand-off).
        nonblocking: a full pool raises ``PoolOverload`` instead of waiting.
        max_blocking: most callers blocked in submit (``None``: no bound).
        on_error: ``on_error(exc, fn)`` for failures of ``go`` tasks
            (default: log with traceback).
        finalizer: called in each worker as it exits gracefully (stop,
            recycling, idle exit) — not when it is killed.
        max_tasks_per_child: a worker is replaced after this many tasks.
        max_memory_per_child: bytes of resident memory after which a worker
            is replaced (checked after each task, from ``/proc``).
        cancel_running: let ``Future.cancel()`` stop a running task by
            killing its worker.
        name: shown in ``repr``, logs and process names.

    Raises:
        TypeError: an argument of the wrong type (the message names it).
        ValueError: an out-of-range argument (the message names it).
        pickle.PicklingError: the initializer or finalizer cannot be pickled.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: object = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        min_workers: int = 0,
        idle_timeout: float | None = PROCESS_IDLE_TIMEOUT,
        queue_size: int | None = None,
        nonblocking: bool = False,
        max_blocking: int | None = None,
        on_error: ErrorHandler | None = None,
        finalizer: Callable[[], object] | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
        cancel_running: bool = False,
        name: str | None = None,
    ) -> None:
        options = PoolOptions.build(
            max_workers=(os.cpu_count() or 1) if max_workers is None else max_workers,
            min_workers=min_workers,
            idle_timeout=idle_timeout,
            queue_size=queue_size,
            nonblocking=nonblocking,
            max_blocking=max_blocking,
            on_error=on_error,
            name=_registry.name_for(self, name),
        )
        ctx = resolve_context(mp_context)
        hooks = WorkerHooks.build(initializer, initargs, finalizer)
        max_tasks = check_optional_int("max_tasks_per_child", max_tasks_per_child, minimum=1)
        max_memory = check_optional_int("max_memory_per_child", max_memory_per_child, minimum=1)
        check_bool("cancel_running", cancel_running)
        config = dumps(
            (
                hooks.initializer,
                hooks.initargs,
                hooks.finalizer,
                max_memory is not None,
                ctx.get_start_method(),
                os.getpid(),
            ),
            "the initializer, initargs or finalizer",
            hooks.initializer,
        )
        self._core = Lifecycle(options)
        self._state = ProcessState(self._core, ctx, config, max_tasks, max_memory, cancel_running)
        self._dispatcher = Dispatcher(self._state)
        self._state.start(self._dispatcher.run)
        _registry.add(self)

    # -- what the map, group and options helpers use -----------------------

    @property
    def _options(self) -> PoolOptions:
        return self._core.options

    @property
    def _thread(self) -> threading.Thread:
        return self._state.thread

    def _accept(self, task: Task, block: bool) -> bool:
        return self._state.accept(task, block)

    def _accept_all(self, tasks: list[Task]) -> None:
        self._state.accept_all(tasks, self._dispatcher._feed_locked)

    def _kill_running(self, future: Future[Any]) -> None:
        self._state.kill_running(future)

    def _pids(self) -> list[int]:
        return self._state.pids()

    # -- submission -------------------------------------------------------

    def options(self, *, timeout: float | None = None) -> TaskOptions:
        """This pool with per-task options applied to the tasks submitted through it.

        ``pool.options(timeout=5.0).submit(fn, x)`` runs ``fn(x)`` and kills
        its worker if it runs past 5 s. ``submit`` itself passes every
        keyword to ``fn`` (the ``Executor`` contract), so options live here.

        Args:
            timeout: seconds a task may run once a worker starts it; past
                that its worker is killed and replaced, and the task fails
                with ``TaskTimeout`` (for ``map``: at that chunk's place).
                ``None`` or ``math.inf``: no limit. Any finite value works.

        Returns:
            A :class:`TaskOptions` view with ``go``, ``submit``,
            ``try_submit``, ``asubmit``, ``map`` and ``group``.

        Raises:
            TypeError, ValueError: a bad option (the message names it).
        """
        return TaskOptions(self, Options.build(timeout=timeout))

    def _task(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
        future: Future[Any] | None,
    ) -> Task:
        check_callable("fn", fn)
        # A module-level function travels as its kept pickled reference (see
        # function_blob): the task's pickling is then its arguments'.
        blob = function_blob(fn)
        message = (child.CALL, fn if blob is None else blob, args, kwargs)
        payload = dumps(message, "the task {fn!r}", fn)
        return Task(payload, fn, future, options.timeout)

    def _future(self) -> ProcessFuture[Any]:
        return ProcessFuture(self._kill_running if self._state.cancel_running else None)

    def _go(
        self,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
    ) -> None:
        self._accept(self._task(fn, args, kwargs, options, None), True)

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
        *,
        block: bool,
        future: ProcessFuture[Any] | None = None,
    ) -> Future[Any] | None:
        if future is None:
            future = self._future()
        if not self._accept(self._task(fn, args, kwargs, options, future), block):
            return None
        return future

    async def _asubmit(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
    ) -> T:
        # Imported on use: a pool driven from threads must not pay for asyncio
        # (~20 ms to import), and an event loop running here has loaded it.
        import asyncio

        future = self._submit(fn, args, kwargs, options, block=self._core.intake.limit is None)
        if future is None:
            # Full bounded pool: wait for room in a thread, never on the loop.
            # The Future is made here so that a cancelled await can cancel
            # it: the thread cannot be stopped and submits once room frees,
            # and the pool then skips a task whose Future is cancelled.
            made = self._future()
            try:
                future = await asyncio.to_thread(
                    self._submit, fn, args, kwargs, options, block=True, future=made
                )
            except asyncio.CancelledError:
                made.cancel()
                raise
        assert future is not None
        result: T = await asyncio.wrap_future(future)
        return result

    def go(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run ``fn(*args, **kwargs)`` in a worker; no Future (errors go to ``on_error``).

        Every keyword goes to ``fn``; per-task options: ``pool.options(...).go``.

        Raises:
            PoolClosed: the pool is stopped (``PoolBroken`` if it is broken).
            PoolOverload: the pool is full and may not wait.
            TypeError: ``fn`` is not callable.
            pickle.PicklingError: ``fn`` or its arguments cannot be pickled.
        """
        self._go(fn, args, kwargs, NO_OPTIONS)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker process; return its Future.

        As ``Executor.submit``, every keyword goes to ``fn`` (``timeout=``
        included). For a per-task timeout use
        ``pool.options(timeout=...).submit(fn, *args, **kwargs)``.

        Args:
            fn: a picklable callable (module-level, or anything with cloudpickle).

        Raises:
            PoolClosed: the pool is stopped (a ``RuntimeError``, as Executor;
                ``PoolBroken`` if it is broken).
            PoolOverload: the pool is full and may not wait.
            TypeError: ``fn`` is not callable.
            pickle.PicklingError: ``fn`` or its arguments cannot be pickled.
        """
        future = self._submit(fn, args, kwargs, NO_OPTIONS, block=True)
        assert future is not None
        return future

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """Like :meth:`submit`, but return ``None`` instead of waiting for room.

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        return self._submit(fn, args, kwargs, NO_OPTIONS, block=False)

    async def asubmit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker and await its result from asyncio.

        Never blocks the event loop: when a bounded pool is full the wait for
        room happens in a thread. Cancelling the awaiting task cancels the
        Future (and, with ``cancel_running=True``, kills a running task).
        Every keyword goes to ``fn``; per-task options: ``pool.options(...).asubmit``.

        Raises:
            Whatever :meth:`submit` raises, or ``fn``'s exception.
        """
        return await self._asubmit(fn, args, kwargs, NO_OPTIONS)

    def _map(
        self,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        how: MapArgs,
        options: Options = NO_OPTIONS,
    ) -> Iterator[T]:
        return process_map(self, fn, iterables, how, options)

    def group(
        self, *, cancel_on_error: bool = False, parent: CancelToken | GroupCore | None = None
    ) -> ProcessTaskGroup[Result]:
        """A task group on this pool (errgroup, pond ``Group``).

        Per-task options for the group's tasks: ``pool.options(...).group()``
        (every task) or ``group.options(...).submit(...)`` (one task).

        Args:
            cancel_on_error: the first failure cancels the group's other
                tasks — running ones too when the pool has ``cancel_running``.
            parent: a :class:`~poolkit.CancelToken` or another group: cancelling
                it cancels this group (pond ``NewGroupContext(ctx)``).

        Raises:
            TypeError: ``cancel_on_error`` is not a bool, ``parent`` not a
                token or group.
        """
        return self._group(cancel_on_error, NO_OPTIONS, parent)

    def _group(
        self,
        cancel_on_error: bool,
        options: Options,
        parent: CancelToken | GroupCore | None = None,
    ) -> ProcessTaskGroup[Any]:
        return ProcessTaskGroup(
            self, cancel_on_error=cancel_on_error, options=options, parent=parent
        )

    # -- lifecycle ----------------------------------------------------------

    def _check_not_dispatcher(self, what: str) -> None:
        if self._thread.ident is not None and self._thread.ident == threading.get_ident():
            raise PoolDeadlock(
                f"{what} called from a done-callback of {self._core.name}: callbacks run "
                "on the thread that delivers results, so it would wait for itself"
            )

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without stopping.

        Args:
            timeout: most seconds to wait (``None`` or ``math.inf``: no limit;
                any finite value works).

        Raises:
            PoolTimeout: not idle within ``timeout`` seconds.
            PoolDeadlock: called from a done-callback.
            PoolBroken: the pool broke and left tasks nobody can finish.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        self._check_not_dispatcher("wait()")
        deadline = deadline_after(seconds)
        state = self._state
        with state.lock:
            # Only the dispatcher finishes tasks: without it they never will
            # (its failure handler normally fails them all first).
            dispatcher = state.thread
            if not wait_for(
                state.idle_cv,
                lambda: not state.unfinished or not dispatcher.is_alive(),
                deadline,
            ):
                raise PoolTimeout(
                    f"{self._core.name} still had {state.unfinished} unfinished tasks "
                    f"after {seconds} s; raise timeout"
                )
            if state.unfinished:
                raise state.closed_error()

    def resize(self, max_workers: int | None = None, min_workers: int | None = None) -> None:
        """Change the worker bounds at runtime (ants ``Tune``, pond ``Resize``).

        Growing starts workers for queued tasks at once; shrinking retires
        idle surplus workers now and busy ones after their current task.

        Raises:
            PoolClosed: the pool is stopped.
            ValueError, TypeError: bad bounds (the message names the argument).
        """
        state = self._state
        core = self._core
        with state.lock:
            plan = core.resize(
                max_workers,
                min_workers,
                backlog=len(state.queue),
                idle=len(state.idle) + state.starting + state.reserved,
            )
            # Idle surplus workers leave now (the longest idle first), busy
            # ones when their task ends (the core's next step for them).
            stops = []
            for worker in list(state.idle):
                if core.workers <= core.max_workers:
                    break
                core.unpark(worker)
                if core.next_step(0) is Step.EXIT:
                    state.retire_locked(worker)
                    stops.append(worker)
            state.reserved += plan.start
            state.room.notify_all()
            state.wake_locked()
        for worker in stops:
            state.send(worker, child.STOP)

    def stop(
        self,
        wait: bool = True,
        cancel_pending: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Stop the pool: refuse new tasks, run or cancel queued ones, end the workers.

        ``stop()`` runs every queued task and waits; ``stop(wait=False)``
        cancels queued tasks and returns at once (the workers finish their
        task and exit in the background). With ``timeout``, workers still
        running a task at the deadline are killed and their Futures
        cancelled. After a stop that waited, no worker process is left.

        Args:
            wait: wait for the workers to exit.
            cancel_pending: cancel queued tasks (default: ``not wait``).
            timeout: most seconds to wait before killing the workers
                (``None`` or ``math.inf``: no limit; any finite value works).

        Raises:
            PoolTimeout: workers had to be killed at the deadline.
            PoolDeadlock: ``wait`` requested from a done-callback.
            TypeError, ValueError: a bad argument (the message names it).
        """
        cancel, seconds = stop_mode(wait, cancel_pending, timeout)
        if wait:
            self._check_not_dispatcher("stop(wait=True)")
        state = self._state
        with state.lock:
            self._core.close(cancel)
            state.room.notify_all()
            state.wake_locked()
        if cancel:
            state.cancel_queued()
        if not wait:
            return
        if not join_thread(state.thread, seconds):
            with state.lock:
                running = sum(1 for w in state.workers.values() if w.task is not None)
                state.terminating = True
                state.wake_locked()
            state.thread.join()
            raise PoolTimeout(
                f"{self._core.name} did not stop within {seconds} s: killed {running} "
                "workers still running a task (their Futures are cancelled); raise timeout"
            )

    def close(self, timeout: float | None = None) -> None:
        """Close the pool: run the queued tasks, then wait until no worker process is left.

        The one shutdown verb of every poolkit pool, and what leaving a
        ``with`` block without an error does. Idempotent. ``stop()`` has the
        variants (not waiting, cancelling queued tasks); ``shutdown()`` is the
        ``Executor`` spelling.

        Args:
            timeout: most seconds to wait; workers still running a task then
                are killed and their Futures cancelled (``None`` or
                ``math.inf``: no limit; any finite value works).

        Raises:
            PoolTimeout: workers had to be killed at the deadline.
            PoolDeadlock: called from a done-callback.
            TypeError, ValueError: a bad ``timeout`` (the message names it).
        """
        self.stop(wait=True, timeout=timeout)

    def terminate(self) -> None:
        """Stop now: cancel queued tasks, kill every worker, cancel running Futures.

        ``multiprocessing.Pool.terminate`` / ``ProcessPoolExecutor.kill_workers``.
        Returns when no worker process is left.
        """
        self._check_not_dispatcher("terminate()")
        state = self._state
        with state.lock:
            self._core.close(cancel=True)
            state.terminating = True
            state.room.notify_all()
            state.wake_locked()
        state.thread.join()

    @property
    def broken(self) -> bool:
        """Whether the pool is broken (a worker could not start, or its dispatcher failed)."""
        return self._core.broken is not None

    def pids(self) -> list[int]:
        """Process ids of the live worker processes (sorted)."""
        return self._state.pids()

    def stats(self) -> ProcessPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        return self._state.stats()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        exc = exc_info[1]
        # Leaving with an error (KeyboardInterrupt included) must not wait for
        # tasks nobody will look at: kill the workers, as multiprocessing.Pool does.
        if exc is not None:
            self.terminate()
        else:
            self.close()
