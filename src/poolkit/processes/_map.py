"""ProcessPool's ``map`` and ``group``, built on WorkerPool's.

``map`` reuses :func:`poolkit.workers._map.lazy_map` (bounded in-flight chunks,
ordering, early-exit, progress): lazy_map hands its first chunks to
``go_all(state, [(index, chunk), ...])`` and each later one to ``pool.go(
_run_chunk, state, index, chunk)``; :class:`_ChunkSubmitter` stands in for the
pool and turns each chunk into one process task in :data:`CHUNK` (or :data:`EACH`) mode whose
outcome is put where lazy_map reads it (``state.done``); the first chunks are
accepted in one pass (``ProcessState.accept_all``). The chunk runs in the
worker as ``[fn(*args) for args in chunk]`` (``[fn(x) for x in items]`` over
one iterable).

``group`` reuses :class:`poolkit.workers.TaskGroup` (first error, cancel
token, ordered ``wait``): only ``submit`` differs, since a process task cannot
carry the group's guard (a bound method holding a lock) across a pipe; a
queued task of a cancelled group is skipped by its cancelled Future instead.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from poolkit._errors import PoolDeadlock
from poolkit.processes import _child as child
from poolkit.processes._dispatch import MAX_HELD
from poolkit.processes._options import NO_OPTIONS, GroupTaskOptions, Options
from poolkit.processes._wire import dumps, function_blob
from poolkit.processes._workers import Task
from poolkit.workers._group import CancelToken, GroupCore, TaskGroup
from poolkit.workers._map import MapArgs, default_chunks_in_flight, lazy_map, within_queue

if TYPE_CHECKING:
    from poolkit.processes._pool import ProcessPool
    from poolkit.workers._thread_pool import WorkerPool

__all__ = ["ProcessTaskGroup", "process_map"]

P = ParamSpec("P")
T = TypeVar("T")


class _ChunkSink:
    """Delivers one chunk's outcome to lazy_map's result queue."""

    __slots__ = ("index", "state")

    def __init__(self, state: Any, index: int) -> None:
        self.state = state
        self.index = index

    @property
    def abandoned(self) -> bool:
        """The consumer stopped early: skip the chunk if it has not started."""
        return bool(self.state.abandoned)

    def __call__(self, ok: bool, value: Any) -> None:
        if ok:
            self.state.done.put((self.index, value, None))
        elif isinstance(value, tuple):
            partial, error = value
            self.state.done.put((self.index, partial, error))
        else:
            self.state.done.put((self.index, [], value))


class _ChunkSubmitter:
    """The ``go``/``max_workers`` surface lazy_map drives, backed by a ProcessPool."""

    def __init__(self, pool: ProcessPool, options: Options) -> None:
        self._pool = pool
        self._timeout = options.timeout
        # The map function pickled once for every chunk of this map (the wire's
        # pickled-function form, see _child): pickling a function by reference
        # costs about as much as pickling a 100-item chunk of small items.
        self._fn_blob: bytes | None = None

    @property
    def max_workers(self) -> int:
        return self._pool.max_workers

    def go(self, _run_chunk: object, state: Any, index: int, chunk: list[Any]) -> None:
        self._pool._accept(self._task(state, index, chunk), True)

    def go_all(self, state: Any, chunks: list[tuple[int, list[Any]]]) -> None:
        """Submit the map's first chunks together (see ``ProcessState.accept_all``)."""
        if chunks:
            self._pool._accept_all([self._task(state, index, chunk) for index, chunk in chunks])

    def _task(self, state: Any, index: int, chunk: list[Any]) -> Task:
        fn = state.fn
        blob = self._fn_blob
        if blob is None:
            blob = function_blob(fn) or dumps(fn, "the map function {fn!r}", fn)
            self._fn_blob = blob
        # One iterable: lazy_map's chunk holds the bare items (they pickle
        # faster than 1-tuples); several: argument tuples.
        message = (child.EACH if state.single else child.CHUNK, blob, chunk, None)
        payload = dumps(message, "the map function {fn!r} or its items", fn)
        return Task(payload, fn, None, self._timeout, _ChunkSink(state, index))


def process_buffersize(max_workers: int, queue_size: int | None = None) -> int:
    """A process map's default chunks in flight: two full pipelines per worker.

    A thread pool's default (4 per worker, at least 16) starves worker
    processes on short chunks: each may hold ``MAX_HELD + 1`` of them, and
    the in-order consumer frees room only as the oldest chunk comes back, so
    the workers ran dry between rounds of the dispatcher (57 against 42 µs
    a chunk of 100 trivial items, 2 workers, 16 against 64 in flight; fewer
    rounds of the dispatcher per chunk as well). Twice a full pipeline
    per worker keeps every pipe fed while the consumer works through
    results, and still bounds what an endless input holds. On a bounded
    pool, at most its queue (see ``within_queue``).
    """
    size = max(default_chunks_in_flight(max_workers), 2 * (MAX_HELD + 1) * max_workers)
    return within_queue(size, queue_size)


def process_map(
    pool: ProcessPool,
    fn: Callable[..., T],
    iterables: tuple[Iterable[Any], ...],
    how: MapArgs,
    options: Options,
) -> Iterator[T]:
    """Start a lazy map on ``pool`` (first chunks submitted now); see ``ProcessPool.map``.

    ``how.timeout`` is the whole map's deadline (``Executor.map``'s, enforced
    by lazy_map, which validates ``how``); ``options.timeout`` bounds each
    chunk (the dispatcher kills it).

    The default ``buffersize`` is :func:`process_buffersize` (at most the
    pool's ``queue_size``).
    """
    if how.buffersize is None:
        size = process_buffersize(pool.max_workers, pool._options.queue_size)
        how = dataclasses.replace(how, buffersize=size)
    submitter = _ChunkSubmitter(pool, options)
    return lazy_map(cast("WorkerPool", submitter), fn, iterables, how, submitter.go_all)


class ProcessTaskGroup(TaskGroup[T]):
    """Tasks submitted together to a ProcessPool; create with ``pool.group()``.

    Leaving the ``with`` block waits for every task and raises the first
    failure; an exception in the block cancels the tasks not yet started.
    A process task cannot add tasks to its group (the group stays in the
    parent), but a done-callback can: ``wait()`` covers those members too.
    """

    def __init__(
        self,
        pool: ProcessPool,
        *,
        cancel_on_error: bool = False,
        options: Options = NO_OPTIONS,
        parent: CancelToken | GroupCore | None = None,
    ) -> None:
        super().__init__(cast("WorkerPool", pool), cancel_on_error=cancel_on_error, parent=parent)
        self._process_pool = pool
        self._task_options = options

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` as part of this group; every keyword goes to ``fn``.

        Per-task options: ``group.options(timeout=...).submit(...)``.

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        return self._submit_with(fn, args, kwargs, self._task_options)

    def options(self, *, timeout: float | None = None) -> GroupTaskOptions:
        """This group with per-task options for the tasks submitted through it.

        Args:
            timeout: as ``ProcessPool.options``.

        Raises:
            TypeError, ValueError: a bad option (the message names it).
        """
        return GroupTaskOptions(self, Options.build(timeout=timeout))

    def _submit_with(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
    ) -> Future[Any]:
        try:
            fut = self._process_pool._submit(fn, args, kwargs, options, block=True)
        except BaseException as exc:
            self._submit_failed(exc)  # a member that could not start fails the group
            raise
        assert fut is not None
        self._record(fut)
        return fut

    def _check_not_in_pool(self) -> None:
        if threading.current_thread() is self._process_pool._thread:
            raise PoolDeadlock(
                "a done-callback waited on a group of its own pool; callbacks run on the "
                "thread that delivers results, so wait from outside the callbacks"
            )
