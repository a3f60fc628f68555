"""Lazy, bounded ``map`` for WorkerPool.

``ThreadPoolExecutor.map`` submits every item before returning (an endless
generator never returns; cpython gh-74028 added ``buffersize`` in 3.14). Here
at most ``buffersize`` chunks are in flight: the input is read as results are
taken. Each chunk is one fire-and-forget task that reports ``(index, results,
error)`` on a per-map ``SimpleQueue``, so no Future is built per item.

Ordered maps keep early arrivals in a dict until their turn (at most
``buffersize`` entries). When the consumer stops early (``break``, an error,
garbage collection), a flag makes the chunks not yet started return at once.
"""

from __future__ import annotations

import itertools
import math
import queue
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from poolkit._errors import PoolTimeout
from poolkit._validate import (
    check_bool,
    check_callable,
    check_int,
    check_optional_int,
    check_optional_seconds,
)
from poolkit._waits import deadline_after, left_until, slice_of

if TYPE_CHECKING:
    from poolkit.workers._thread_pool import WorkerPool

__all__ = [
    "MapArgs",
    "default_chunks_in_flight",
    "known_length",
    "lazy_map",
    "map_buffersize",
    "progress_bar",
    "within_queue",
]

T = TypeVar("T")

# Chunks in flight per worker by default: enough that workers never starve
# while the consumer handles a result, small enough to stay bounded (Python's
# own Executor.map(buffersize=) leaves the choice to the caller).
_CHUNKS_PER_WORKER = 4
_MIN_BUFFER = 16
# And at least this many items in flight, whatever the chunksize: with a few
# short chunks out, the workers empty the queue and sleep between the
# consumer's refills, and each result then costs a thread wake-up (4 workers,
# chunksize=1, trivial fn: 170k results/s with 16 in flight, 470k with 256,
# 530k with 512). A bound still: 256 items, where Executor.map and
# multiprocessing's imap queue the whole input.
_MIN_ITEMS_IN_FLIGHT = 256
# From this chunksize on, the result iterator pops each chunk's results in C
# (_Results); below it, the iterator objects it makes per chunk cost more
# than resuming a generator per result saves.
_CHAINED_CHUNKSIZE = 32


@dataclass(frozen=True, slots=True)
class MapArgs:
    """The keywords of every pool's ``map`` after ``fn`` and the iterables, as one value.

    Each pool's ``map`` (and ``ProcessPool.options(...).map``) packs them
    here and passes them on unchecked: :func:`lazy_map` validates them, so
    the rules and the error messages are the same for every pool.
    """

    timeout: float | None
    chunksize: int
    ordered: bool
    buffersize: int | None
    progress: bool


def default_chunks_in_flight(max_workers: int) -> int:
    """Chunks in flight by default, from the workers alone: 4 each, at least 16."""
    return max(_MIN_BUFFER, _CHUNKS_PER_WORKER * max_workers)


def within_queue(size: int, queue_size: int | None) -> int:
    """A default read-ahead of ``size``, at most a bounded pool's ``queue_size`` (at least 1).

    Every map's default (thread, process and asyncio pools): the map's own
    read-ahead never fills a bounded pool, so a ``nonblocking`` pool does not
    refuse its tasks and a map run by one of the pool's tasks does not wait on
    its own full pool (``PoolDeadlock``). ``queue_size`` rather than the
    capacity: a task whose result was taken may hold its slot a moment
    longer, at most one per worker.
    """
    return size if queue_size is None else min(size, max(1, queue_size))


def map_buffersize(
    buffersize: object, max_workers: int, chunksize: int, queue_size: int | None = None
) -> int:
    """The validated number of chunks in flight of a thread map.

    The default is :func:`default_chunks_in_flight`, raised to hold at least
    256 items when chunks are small, then bounded by :func:`within_queue`.

    Raises:
        TypeError, ValueError: ``buffersize`` is not an int ≥ 1.
    """
    size = check_optional_int("buffersize", buffersize, minimum=1)
    if size is not None:
        return size
    size = max(default_chunks_in_flight(max_workers), -(-_MIN_ITEMS_IN_FLIGHT // chunksize))
    return within_queue(size, queue_size)


class _MapState:
    """Shared by a map's chunks: where to report, and whether to bother.

    ``single``: the map has one iterable, so a chunk holds the bare items
    (``fn(x)``), not argument tuples (``fn(*args)``): no 1-tuple is built per
    item, and a process pool pickles the chunk as it is.
    """

    __slots__ = ("abandoned", "done", "fn", "single")

    def __init__(self, fn: Callable[..., Any], single: bool = False) -> None:
        self.fn = fn
        self.single = single
        self.done: queue.SimpleQueue[tuple[int, list[Any], BaseException | None]] = (
            queue.SimpleQueue()
        )
        self.abandoned = False


def _run_chunk(state: _MapState, index: int, chunk: list[Any]) -> None:
    """Run one chunk; report its results and the first error, never raise."""
    results: list[Any] = []
    error: BaseException | None = None
    if not state.abandoned:
        fn = state.fn
        try:
            if state.single:
                for item in chunk:
                    results.append(fn(item))
            else:
                for args in chunk:
                    results.append(fn(*args))
        except BaseException as exc:  # delivered to the consumer, in order
            error = exc
    state.done.put((index, results, error))


def lazy_map(
    pool: WorkerPool,
    fn: Callable[..., T],
    iterables: tuple[Iterable[Any], ...],
    how: MapArgs,
    go_all: Callable[[Any, list[tuple[int, list[Any]]]], None] | None = None,
    queue_size: int | None = None,
) -> Iterator[T]:
    """Start the map (first chunks submitted now) and return its result iterator.

    ``go_all(state, [(index, chunk), ...])``, if given, submits the first
    chunks at once (a process pool hands them out in one pass); later chunks
    go one by one through ``pool.go``, as each result is taken.

    Raises:
        PoolClosed: the pool is stopped.
        ValueError, TypeError: bad ``fn``, ``chunksize``, ``buffersize``,
            ``timeout`` or flag (the message names it).
    """
    check_callable("fn", fn)
    ordered = check_bool("ordered", how.ordered)
    progress = check_bool("progress", how.progress)
    size = check_int("chunksize", how.chunksize, minimum=1)
    limit = map_buffersize(how.buffersize, pool.max_workers, size, queue_size)
    seconds = check_optional_seconds("timeout", how.timeout, allow_inf=True)
    if not iterables:
        raise TypeError("map() needs at least one iterable")
    total = known_length(iterables)
    deadline = deadline_after(seconds)
    single = len(iterables) == 1
    state = _MapState(fn, single)
    # One iterable: chunks of its items as they are; several: argument tuples,
    # stopping at the shortest iterable, as map() does.
    chunks: Iterator[list[Any]]
    if single and type(iterables[0]) is list:
        chunks = _slices(iterables[0], size)
    else:
        args_iter = iter(iterables[0]) if single else zip(*iterables, strict=False)
        chunks = iter(lambda: list(itertools.islice(args_iter, size)), [])
    counter = itertools.count()
    in_flight = 0
    if go_all is not None:
        first = list(itertools.islice(chunks, limit))
        go_all(state, [(next(counter), chunk) for chunk in first])
        in_flight = len(first)
    else:
        for chunk in itertools.islice(chunks, limit):
            pool.go(_run_chunk, state, next(counter), chunk)
            in_flight += 1
    results = _results(pool, state, chunks, counter, in_flight, deadline, seconds, ordered, size)
    if progress:
        return _with_progress(results, total)
    return results


class _Results(itertools.chain[T]):
    """A map's result iterator over long chunks: their results, one by one, taken in C.

    ``_source`` (a :func:`_result_source` generator) waits for each chunk's
    report and gives an iterator that pops its results; chaining those runs
    the per-item step in C (no generator frame resumed per result). ``close()`` stops the
    map, as closing ``Executor.map``'s generator does; so does dropping it.
    """

    __slots__ = ("_source",)
    _source: Generator[Iterator[T], None, None]

    def close(self) -> None:
        """Stop the map early: chunks not started yet are skipped."""
        self._source.close()
        # Then drop the rest of the chunk being taken: nothing more comes
        # out, as from a closed generator.
        for _ in self:
            pass


def _slices(items: list[Any], size: int) -> Iterator[list[Any]]:
    """A list's chunks as slices, each taken when asked for (as its iterator would read it).

    A slice copies the items in one step; ``islice`` over the list's
    iterator takes them one by one (several times the cost on a chunk of 100).
    """
    start = 0
    while chunk := items[start : start + size]:
        start += size
        yield chunk


def _results(
    pool: WorkerPool,
    state: _MapState,
    chunks: Iterator[list[Any]],
    counter: Iterator[int],
    in_flight: int,
    deadline: float,
    seconds: float | None,
    ordered: bool,
    size: int,
) -> Iterator[Any]:
    chained = size >= _CHAINED_CHUNKSIZE
    source = _result_source(
        pool, state, chunks, counter, in_flight, deadline, seconds, ordered, chained
    )
    if not chained:
        return source  # the results themselves
    results = cast("_Results[Any]", _Results.from_iterable(source))  # an instance of cls
    results._source = source
    return results


def _result_source(
    pool: WorkerPool,
    state: _MapState,
    chunks: Iterator[list[Any]],
    counter: Iterator[int],
    in_flight: int,
    deadline: float,
    seconds: float | None,
    ordered: bool,
    popping: bool,
) -> Generator[Any, None, None]:
    """Each chunk's results in turn, then its error, if any.

    ``popping``: give, instead of each result, an iterator that pops a
    chunk's results one by one, for :class:`_Results` to chain. Either way
    each result is popped as it goes out, so neither the chunk's list nor a local
    keeps a result the consumer has taken alive while it waits for the next
    one (Executor.map's contract, bpo-27144).
    """
    get = state.done.get
    early: dict[int, tuple[list[Any], BaseException | None]] = {}
    want = 0
    try:
        while in_flight:
            if ordered and want in early:
                results, error = early.pop(want)
            else:
                index, results, error = _next_report(get, deadline, seconds)
                if ordered and index != want:
                    early[index] = (results, error)
                    continue
            want += 1
            in_flight -= 1
            # Refill before yielding so workers stay busy while the caller
            # handles this chunk's results.
            chunk = next(chunks, None)
            if chunk is not None:
                pool.go(_run_chunk, state, next(counter), chunk)
                in_flight += 1
            if results:
                results.reverse()
                if popping:
                    yield map(results.pop, itertools.repeat(-1, len(results)))
                else:
                    while results:
                        yield results.pop()
            del results
            if error is not None:
                raise error
    finally:
        state.abandoned = True


def _next_report(
    get: Callable[..., tuple[int, list[Any], BaseException | None]],
    deadline: float,
    seconds: float | None,
) -> tuple[int, list[Any], BaseException | None]:
    """The next chunk report, waiting until ``deadline`` in slices (any size)."""
    if deadline == math.inf:
        return get()  # no deadline: a plain blocking get, the cheapest wait
    while True:
        try:
            return get(timeout=slice_of(left_until(deadline)))
        except queue.Empty:
            if time.monotonic() >= deadline:
                raise PoolTimeout(
                    f"map result not ready within {seconds} s of the call; "
                    "raise timeout or take results sooner"
                ) from None


def known_length(iterables: tuple[object, ...]) -> int | None:
    """The shortest length of ``iterables``, or None if one has no ``len()``."""
    lengths = []
    for it in iterables:
        try:
            lengths.append(len(it))  # type: ignore[arg-type]
        except TypeError:
            return None
    return min(lengths) if lengths else None


@contextmanager
def progress_bar(total: int | None) -> Iterator[Callable[[], object]]:
    """A progress bar for a map of ``total`` results: tqdm if installed, else poolkit's own.

    Yields the function that counts one result; the bar is closed on exit.
    The thread map and the asyncio map (``_async_map``) share it.

    Raises:
        RuntimeError: tqdm is missing and ``total`` is unknown (poolkit's own
            line needs a length).
    """
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, unit="task")
        try:
            yield lambda: bar.update(1)
        finally:
            bar.close()
        return
    from poolkit._progress import Progress

    if total is None or total == 0:
        raise RuntimeError(
            "progress=True on an input of unknown length needs tqdm: "
            "pip install 'poolkit[progress]'"
        )
    with Progress("map", total) as line:
        yield line.advance


def _with_progress(results: Iterator[T], total: int | None) -> Iterator[T]:
    """Wrap results in a progress bar (see :func:`progress_bar`)."""
    with progress_bar(total) as advance:
        for item in results:
            advance()
            yield item
            del item  # not kept while the next result is awaited
