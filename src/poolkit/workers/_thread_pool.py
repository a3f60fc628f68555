"""WorkerPool: a thread pool with the Go anchors' vocabulary, and an Executor.

The design (one SimpleQueue of plain tuples, a lock-free submit path, per-worker
outcome counters) and the invariants that keep a submission racing with stop
from being lost are stated once, in ``_thread_base``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from poolkit._errors import PoolDeadlock
from poolkit._validate import check_bool, check_callable, check_seconds
from poolkit.workers import _thread_worker as tw
from poolkit.workers._core import describe
from poolkit.workers._future import PoolFuture
from poolkit.workers._group import TaskGroup
from poolkit.workers._map import lazy_map
from poolkit.workers._thread_base import ThreadPoolBase

__all__ = ["WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

_copy_context = contextvars.copy_context


class WorkerPool(ThreadPoolBase, Executor):
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
        name: shown in ``repr``, logs and errors.
        clock: monotonic time source for ``submit_before`` deadlines.

    Every timeout it takes may be any number of seconds (``None`` or
    ``math.inf``: no limit). In a child made by ``os.fork()`` the pool starts
    its own threads; the parent's queued tasks are cancelled there and its
    running ones fail with ``PoolClosed``. A worker thread that dies breaks
    the pool loudly (``PoolBroken`` chained from the cause).

    Raises:
        TypeError: an argument of the wrong type (the message names it).
        ValueError: an out-of-range argument (the message names it).
    """

    def go(self, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
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
        if self._closed:
            raise self._closed_error()
        if self._limit is not None:
            self._admit(True)
        next(self._seq)
        self._put((fn, args, kwargs, _copy_context(), None))
        # Re-read after queueing: stop() may have run in between (see
        # _raced_with_stop). mypy cannot know another thread changed it.
        if self._closed:
            self._raced_with_stop()  # type: ignore[unreachable]
        if self._nworkers < self._max_workers:
            self._maybe_spawn()

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
        if self._closed:
            raise self._closed_error()
        if self._limit is not None:
            self._admit(True)
        fut: Future[T] = PoolFuture()
        next(self._seq)
        self._put((fn, args, kwargs, _copy_context(), fut))
        if self._closed:  # re-read, as in go()
            self._raced_with_stop()  # type: ignore[unreachable]
        if self._nworkers < self._max_workers:
            self._maybe_spawn()
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
        if self._closed:
            raise self._closed_error()
        if self._limit is not None and not self._admit(False):
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
        if tw.current_pool() is self:
            raise PoolDeadlock(
                f"submit_wait() called from a task of {self._options.name}: the task "
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
        expiring = tw.Expiring(fn, self._clock() + seconds, self._clock, seconds)
        if self._closed:
            raise self._closed_error()
        if self._limit is not None:
            self._admit(True)
        fut: Future[T] = PoolFuture()
        self._enqueue((expiring, args, kwargs, _copy_context(), fut))
        return fut

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        """Queue an admitted task (the slow-path twin of the inlined fast path)."""
        next(self._seq)
        self._put(item)
        if self._closed:
            self._raced_with_stop()
        if self._nworkers < self._max_workers:
            self._maybe_spawn()

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: bool = False,
    ) -> Iterator[T]:
        """Lazily map ``fn`` over ``iterables`` on the pool.

        Input is consumed as results are taken: at most ``buffersize`` chunks
        are in flight, so an endless generator works. The first chunks are
        submitted before this returns (as ``Executor.map`` starts work at
        once).

        Args:
            fn: called as ``fn(*items)`` with one item from each iterable.
            timeout: seconds from this call after which taking a result that
                is not ready raises ``PoolTimeout`` (a ``TimeoutError``); any
                size, ``None`` or ``math.inf`` for no limit.
            chunksize: items per task; larger chunks cost less per item.
            ordered: yield results in input order (``False``: as completed).
            buffersize: chunks in flight (default 4 × max_workers, at least 16).
            progress: draw a progress bar (tqdm if installed).

        Returns:
            An iterator of results; ``fn``'s exception is raised at its item.

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable, a flag is not a bool.
            ValueError: ``chunksize`` or ``buffersize`` below 1, bad ``timeout``.
        """
        return lazy_map(
            self,
            fn,
            iterables,
            timeout=timeout,
            chunksize=chunksize,
            ordered=ordered,
            buffersize=buffersize,
            progress=progress,
        )

    def group(self, *, cancel_on_error: bool = False) -> TaskGroup[Any]:
        """A task group on this pool (pond ``Group``, errgroup, go-playground ``Batch``).

        Args:
            cancel_on_error: the first failure cancels the group's tasks not
                yet started and sets its cancel token.

        Returns:
            A :class:`~poolkit.workers.TaskGroup`.
        """
        return TaskGroup(self, cancel_on_error=cancel_on_error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown``: stop taking tasks; ``cancel_futures`` cancels queued ones.

        Unlike :meth:`stop`, ``wait=False`` keeps queued tasks running in the
        background unless ``cancel_futures`` is true, as ThreadPoolExecutor.

        Raises:
            TypeError: ``wait`` or ``cancel_futures`` is not a bool.
        """
        check_bool("cancel_futures", cancel_futures)
        self.stop(wait=wait, cancel_pending=cancel_futures)

    def __repr__(self) -> str:
        return describe(type(self).__name__, self.stats(), self._options.name)

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
        check_callable("factory", factory)
        return cls(max_workers, _worker_factory=factory, **options)
