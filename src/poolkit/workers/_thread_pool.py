"""WorkerPool: a thread pool with the Go anchors' vocabulary, and an Executor.

``WorkerPool`` is the driver: it holds a lifecycle core
(:class:`~poolkit.workers._lifecycle.Lifecycle`, every decision) and a crew
of threads (:class:`~poolkit.workers._thread_crew.ThreadCrew`, the queue,
the lock and the workers that act on the core's decisions). The submit fast
path reads the core's ``closed`` / ``limit`` / ``workers`` as plain
attributes and takes no lock; the design and the invariants that keep a
submission racing with stop from being lost are stated in ``_thread_crew``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from poolkit import _fork, _registry
from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._typing import Result
from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_optional_seconds,
    check_seconds,
)
from poolkit._waits import deadline_after
from poolkit.workers._core import (
    DEFAULT_IDLE_TIMEOUT,
    ErrorHandler,
    Expiring,
    PoolOptions,
    WorkerHooks,
    WorkerPoolStats,
    stop_mode,
)
from poolkit.workers._future import PoolFuture
from poolkit.workers._group import CancelToken, GroupCore, TaskGroup
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._map import MapArgs, lazy_map
from poolkit.workers._subpool import Subpool
from poolkit.workers._thread_crew import ThreadCrew
from poolkit.workers._thread_worker import current_pool
from poolkit.workers._timing import TaskTimings
from poolkit.workers._verbs import CoreViews, MapVerb, ShutdownVerb, with_worker

__all__ = ["WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

_copy_context = contextvars.copy_context


# map() is typed narrower than Executor.map (see MapVerb): the ignore is for that.
class WorkerPool(CoreViews, MapVerb, ShutdownVerb, Executor):  # type: ignore[misc]
    """A pool of threads running callables; a drop-in ``ThreadPoolExecutor``.

    Args:
        max_workers: most threads at once (default ``min(32, cpu_count + 4)``).
        thread_name_prefix: thread names are ``f"{prefix}_{n}"`` (Executor).
        initializer: called in each new thread before it runs tasks (Executor).
        initargs: arguments for ``initializer``.
        min_workers: threads started at once and kept when idle.
        idle_timeout: seconds before a surplus idle thread exits (``None``:
            never).
        queue_size: tasks that may wait beyond the running ones: ``None``
            unbounded (gammazero), ``N`` bounded (grpool, pond
            ``WithQueueSize``), ``0`` hand-off (ants, tunny, gpool).
        nonblocking: a full pool raises ``PoolOverload`` instead of waiting.
        max_blocking: most callers blocked in submit (ants
            ``MaxBlockingTasks``); ``None``: no bound.
        on_error: ``on_error(exc, task)`` for failures of ``go`` tasks
            (default: log with traceback).
        finalizer: called in each thread as it exits.
        name: shown in ``repr``, logs, errors and metrics (``None``: generated,
            like ``WorkerPool-1``); see :func:`poolkit.pools`.
        clock: monotonic time source for ``submit_before`` deadlines and
            idle reaping.
        timings: record each task's queue wait and run time in
            :meth:`stats` (``queue_wait``, ``run_time``). Off by default: it
            costs about a third of the ``go`` fast path.

    Shut it down with :meth:`close` (stop taking tasks, finish the queued
    ones, wait for the threads), ``with WorkerPool(...)`` (the same on exit),
    :meth:`stop` for the other modes (cancel queued tasks, do not wait, a
    deadline), or ``shutdown()`` (the Executor contract).

    Every timeout it takes may be any number of seconds (``None`` or
    ``math.inf``: no limit). In a child made by ``os.fork()`` the pool starts
    its own threads; the parent's queued tasks are cancelled there and its
    running ones fail with ``PoolClosed``. A worker thread that dies breaks
    the pool loudly (``PoolBroken`` chained from the cause).

    Raises:
        TypeError: an argument of the wrong type (the message names it).
        ValueError: an out-of-range argument (the message names it).
    """

    # Each worker's with_worker() object factory; set on the instance by
    # with_worker before __init__ runs, never by a caller.
    _factory: Callable[[], object] | None = None

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        min_workers: int = 0,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        queue_size: int | None = None,
        nonblocking: bool = False,
        max_blocking: int | None = None,
        on_error: ErrorHandler | None = None,
        finalizer: Callable[[], object] | None = None,
        name: str | None = None,
        clock: Clock = time.monotonic,
        timings: bool = False,
    ) -> None:
        if not isinstance(thread_name_prefix, str):
            raise TypeError(
                f"thread_name_prefix must be a str, got {type(thread_name_prefix).__name__}"
            )
        options = PoolOptions.build(
            max_workers=max_workers,
            min_workers=min_workers,
            idle_timeout=idle_timeout,
            queue_size=queue_size,
            nonblocking=nonblocking,
            max_blocking=max_blocking,
            on_error=on_error,
            name=_registry.name_for(self, thread_name_prefix or None if name is None else name),
        )
        hooks = WorkerHooks.build(initializer, initargs, finalizer, self._factory)
        self._clock = check_callable("clock", clock)
        self._core = Lifecycle(options)
        self._crew = ThreadCrew(
            self,
            self._core,
            thread_prefix=thread_name_prefix or options.name,
            hooks=hooks,
            clock=self._clock,
        )
        self._timings = TaskTimings() if check_bool("timings", timings) else None
        # The submit fast path's two calls, bound once (re-bound after a fork).
        self._put = self._timed(self._crew.put)
        self._seq = self._crew.seq
        self._bounded = self._crew.bounded
        self._home_size = self._crew.home.size
        self._at_home = self._crew.home.holds
        self._in_empty = self._crew.home.in_empty
        _fork.track(self)
        with self._crew.lock:
            count = self._core.start_min()
        if count:
            self._crew.start_threads(count)
        _registry.add(self)

    def go(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run ``fn(*args, **kwargs)`` on a worker; no result handle (fast path).

        A failure goes to ``on_error``. From pond ``Go``, ants ``Submit``,
        gammazero ``Submit``.

        Raises:
            PoolClosed: the pool is stopped.
            PoolOverload: the pool is full and may not wait (``nonblocking``,
                ``max_blocking``).
            PoolDeadlock: a task would block on its own full pool.
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        core = self._core
        if core.closed:
            raise core.closed_error()
        if self._bounded:
            self._crew.admit(True)
        next(self._seq)
        ctx = _copy_context()
        if args or kwargs or self._timings is not None:
            self._put((fn, args, kwargs, ctx, None))
        elif not ctx:
            # A bare item: the function alone from an empty home (see
            # ThreadCrew); from one holding variables, wrapped to run in an
            # empty context (see InEmptyContext). Nothing kept per task.
            self._put(self._in_empty(fn) if self._home_size else fn)
        elif self._home_size and self._at_home(ctx):
            self._put(fn)  # at home: a bare item too
        else:
            self._put((fn, args, kwargs, ctx, None))
        # Re-read after queueing: stop() may have run in between (see
        # ThreadCrew.raced_with_stop). mypy cannot know another thread changed it.
        if core.closed:
            self._crew.raced_with_stop()  # type: ignore[unreachable]
        if core.workers < core.max_workers:
            self._crew.maybe_spawn()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on a worker; return its Future.

        From ``Executor.submit``, pond ``Submit``.

        Raises:
            PoolClosed: the pool is stopped (a ``RuntimeError``, as Executor).
            PoolOverload: the pool is full and may not wait.
            PoolDeadlock: a task would block on its own full pool.
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        core = self._core
        if core.closed:
            raise core.closed_error()
        if self._bounded:
            self._crew.admit(True)
        fut: Future[T] = PoolFuture()
        next(self._seq)
        self._put((fn, args, kwargs, _copy_context(), fut))
        if core.closed:  # re-read, as in go()
            self._crew.raced_with_stop()  # type: ignore[unreachable]
        if core.workers < core.max_workers:
            self._crew.maybe_spawn()
        return fut

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """Like :meth:`submit`, but return ``None`` instead of waiting for room.

        From pond ``TrySubmit``, gpool ``TryEnqueue``.

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        self._core.check_open()
        if self._bounded and not self._crew.admit(False):
            return None
        fut: Future[T] = PoolFuture()
        self._enqueue((fn, args, kwargs, _copy_context(), fut))
        return fut

    def submit_wait(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a worker and return its result (gammazero ``SubmitWait``).

        Raises:
            PoolClosed: the pool is stopped.
            PoolDeadlock: called from one of this pool's own tasks.
            BaseException: whatever ``fn`` raised.
        """
        if current_pool() is self:
            raise PoolDeadlock(
                f"submit_wait() called from a task of {self._core.name}: the task "
                "would wait on its own pool; call fn directly or use another pool"
            )
        return self.submit(fn, *args, **kwargs).result()

    def submit_before(
        self, deadline: float, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Run ``fn`` only if a worker starts it within ``deadline`` seconds.

        A task still queued when its deadline passes is skipped: its Future
        fails with ``PoolTimeout`` and it counts as ``expired`` (pond v1
        ``SubmitBefore``).

        ``deadline`` may be any number of seconds; ``math.inf`` never expires.

        Raises:
            ValueError: ``deadline`` is negative or NaN.
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        seconds = check_seconds("deadline", deadline, allow_inf=True)
        check_callable("fn", fn)
        expiring = Expiring(fn, self._clock() + seconds, self._clock, seconds)
        self._core.check_open()
        if self._bounded:
            self._crew.admit(True)
        fut: Future[T] = PoolFuture()
        self._enqueue((expiring, args, kwargs, _copy_context(), fut))
        return fut

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        """Queue an admitted task (the slow-path twin of the inlined fast path)."""
        next(self._seq)
        self._put(item)
        core = self._core
        if core.closed:
            self._crew.raced_with_stop()
        if core.workers < core.max_workers:
            self._crew.maybe_spawn()

    def _map(
        self, fn: Callable[..., T], iterables: tuple[Iterable[Any], ...], how: MapArgs
    ) -> Iterator[T]:
        return lazy_map(self, fn, iterables, how, queue_size=self._core.options.queue_size)

    def group(
        self, *, cancel_on_error: bool = False, parent: CancelToken | GroupCore | None = None
    ) -> TaskGroup[Result]:
        """A task group on this pool (pond ``Group``, errgroup, go-playground ``Batch``).

        Args:
            cancel_on_error: the first failure cancels the group's tasks not
                yet started and sets its cancel token.
            parent: a :class:`~poolkit.CancelToken` or another group: cancelling
                it cancels this group (pond ``NewGroupContext(ctx)``).

        Returns:
            A :class:`~poolkit.workers.TaskGroup`.
        """
        return TaskGroup(self, cancel_on_error=cancel_on_error, parent=parent)

    def subpool(self, max_concurrency: int, *, queue_size: int | None = None) -> Subpool:
        """A view of this pool with its own concurrency limit (pond v2 ``NewSubpool``).

        Its tasks run on this pool's threads, at most ``max_concurrency`` at
        once, and count against this pool's limit too; it has its own queue
        (``queue_size``: ``None`` unbounded, ``N``, or ``0``), its own
        ``stats()``, and stops on its own or with this pool. See
        :class:`~poolkit.workers.Subpool`.

        Raises:
            TypeError: an argument is not an int.
            ValueError: ``max_concurrency`` below 1 or above ``max_workers``;
                ``queue_size`` below 0.
        """
        return Subpool(self, max_concurrency, queue_size=queue_size)

    def _report(self, exc: BaseException, fn: object) -> None:
        """A subpool's fire-and-forget failure: this pool's ``on_error``."""
        self._crew.report(exc, fn)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without stopping.

        Tasks submitted while waiting are waited for too: this returns when
        the pool goes idle (a WaitGroup, as asked in ants#73, gammazero#20).

        Args:
            timeout: most seconds to wait, any size; ``None`` or ``math.inf``
                waits without limit.

        Raises:
            PoolTimeout: not idle within ``timeout`` seconds.
            PoolDeadlock: called from one of this pool's own tasks.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        if current_pool() is self:
            raise PoolDeadlock(
                f"wait() called from a task of {self._core.name}: it would wait for "
                "itself; wait from outside the pool or use a group"
            )
        if not self._crew.wait_idle(deadline_after(seconds)):
            raise PoolTimeout(
                f"{self._core.name} still had work after {seconds} s "
                f"({self._crew.queue.qsize()} queued); raise timeout"
            )

    def pause(self) -> None:
        """Stop starting queued tasks until :meth:`resume`; running ones finish.

        Tasks can still be submitted (they queue). From gammazero ``Pause``.
        """
        self._crew.pause()

    def resume(self) -> None:
        """Start queued tasks again after :meth:`pause`."""
        self._crew.resume()

    def resize(self, max_workers: int | None = None, min_workers: int | None = None) -> None:
        """Change the worker bounds at runtime (ants ``Tune``, pond ``Resize``).

        Growing starts workers for queued tasks at once and wakes blocked
        submitters; shrinking lets surplus workers finish their task and exit.

        Raises:
            PoolClosed: the pool is stopped.
            ValueError: bad bounds (the message names the argument).
        """
        self._crew.resize(max_workers, min_workers)

    def stop(
        self,
        wait: bool = True,
        cancel_pending: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Stop the pool: refuse new tasks, then drain or cancel queued ones.

        ``stop()`` runs every queued task and waits (gammazero ``StopWait``,
        pond ``StopAndWait``); ``stop(wait=False)`` cancels queued tasks and
        returns at once (gammazero ``Stop``); ``timeout`` bounds the wait
        (pond ``StopAndWaitFor``, ants ``ReleaseTimeout``). After a stop that
        waited, no thread of the pool is alive. Stopping twice is harmless.

        Args:
            wait: wait for the workers to exit.
            cancel_pending: cancel queued tasks (default: ``not wait``).
            timeout: most seconds to wait, any size (``None`` or ``math.inf``:
                no limit); then queued tasks are cancelled and
                ``PoolTimeout`` is raised (running tasks cannot be interrupted).

        Raises:
            TypeError: ``wait`` or ``cancel_pending`` is not a bool.
            PoolTimeout: workers still running after ``timeout``.
            PoolDeadlock: ``wait`` requested from one of this pool's tasks.
        """
        cancel, seconds = stop_mode(wait, cancel_pending, timeout)
        if wait and current_pool() is self:
            raise PoolDeadlock(
                f"stop(wait=True) called from a task of {self._core.name}: it would "
                "wait for itself; use stop(wait=False) inside tasks"
            )
        self._crew.close(cancel)
        if wait:
            self._crew.join(deadline_after(seconds), seconds)

    def close(self, timeout: float | None = None) -> None:
        """Shut down: stop taking tasks, finish the queued ones, wait for the threads.

        The same as ``stop()`` (and as leaving a ``with`` block): every task
        submitted before the call runs; when it returns no thread of the pool
        is alive. Closing twice is harmless.

        Args:
            timeout: most seconds to wait, any size (``None`` or ``math.inf``:
                no limit); then queued tasks are cancelled and
                ``PoolTimeout`` is raised.

        Raises:
            PoolTimeout: workers still running after ``timeout``.
            PoolDeadlock: called from one of this pool's own tasks.
        """
        self.stop(wait=True, timeout=timeout)

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters (and timings, if on)."""
        stats = self._crew.stats()
        if self._timings is None:
            return stats
        queue_wait, run_time = self._timings.snapshot()
        return dataclasses.replace(stats, queue_wait=queue_wait, run_time=run_time)

    def _timed(self, put: Callable[[Any], None]) -> Callable[[Any], None]:
        return put if self._timings is None else self._timings.timed_put(put)

    def _after_fork_in_child(self) -> None:
        """Reset in a forked child: fresh locks and queue, the parent's threads forgotten."""
        self._crew.after_fork_in_child()
        self._put = self._timed(self._crew.put)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop(wait=True)

    @classmethod
    def with_worker(
        cls, factory: Callable[[], object], max_workers: int | None = None, **options: Any
    ) -> WorkerPool:
        """A pool whose workers each own an object built once by ``factory()``.

        Tasks are called as ``fn(obj, *args, **kwargs)`` with their worker's
        object (a parser, a model, a connection); ``obj.close()``, if it has
        one, runs when the worker exits, including on a resize down. From
        tunny's ``Worker`` interface.

        Raises:
            TypeError: ``factory`` is not callable.
        """
        return with_worker(cls, factory, max_workers, options)
