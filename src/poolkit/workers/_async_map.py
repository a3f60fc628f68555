"""Lazy, bounded ``map`` for AsyncWorkerPool (``async for``).

At most ``buffersize`` tasks are in flight; the input (iterables, or one
async iterable) is read as results are taken. Each item is an ordinary
``submit`` whose Future is awaited in input order, or collected as they
complete. When the consumer stops early or is cancelled, the in-flight
Futures are cancelled: items not yet started never run, running ones get
``CancelledError`` at their await point. ``progress=True`` draws the bar the
thread pool's ``map`` draws (``_map.progress_bar``: tqdm, else poolkit's own).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import TYPE_CHECKING, Any, TypeVar

from poolkit._errors import PoolTimeout
from poolkit._validate import (
    check_bool,
    check_callable,
    check_optional_int,
    check_optional_seconds,
)
from poolkit._waits import deadline_after, left_until
from poolkit.workers._map import (
    default_chunks_in_flight,
    known_length,
    progress_bar,
    within_queue,
)

if TYPE_CHECKING:
    from poolkit.workers._async_pool import AsyncWorkerPool

__all__ = ["async_map"]

T = TypeVar("T")


def async_map(
    pool: AsyncWorkerPool,
    fn: Callable[..., Awaitable[T]],
    iterables: tuple[Iterable[Any] | AsyncIterable[Any], ...],
    ordered: bool,
    buffersize: int | None,
    timeout: float | None,
    progress: bool = False,
) -> AsyncIterator[T]:
    """Validate and return the result iterator (nothing runs until iterated).

    Raises:
        TypeError, ValueError: bad ``buffersize``/``timeout``/flag, no
            iterable, or an async iterable mixed with others.
    """
    check_callable("fn", fn)
    check_bool("ordered", ordered)
    check_bool("progress", progress)
    size = check_optional_int("buffersize", buffersize, minimum=1)
    if size is not None:
        limit = size
    else:
        # The thread map's default without its item floor: a task here is one item.
        limit = within_queue(
            default_chunks_in_flight(pool.max_workers), pool._core.options.queue_size
        )
    seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
    if not iterables:
        raise TypeError("map() needs at least one iterable")
    source: Iterator[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]]
    if any(isinstance(it, AsyncIterable) for it in iterables):
        if len(iterables) != 1:
            raise TypeError("map() takes one async iterable, or any number of plain ones")
        source = _aitems(iterables[0])  # type: ignore[arg-type]
    else:
        # Read in step, not through an async generator: one resumed frame
        # fewer per item.
        source = zip(*iterables, strict=False)
    deadline = deadline_after(seconds)
    results = _results(pool, fn, source, limit, ordered, deadline, seconds)
    if progress:
        return _with_progress(results, known_length(iterables))
    return results


async def _with_progress(results: AsyncGenerator[T, None], total: int | None) -> AsyncIterator[T]:
    """Wrap results in the thread map's progress bar (see ``_map.progress_bar``)."""
    try:
        with progress_bar(total) as advance:
            async for item in results:
                advance()
                yield item
                del item  # not kept while the next result is awaited
    finally:
        # Now, not at garbage collection: cancels the map's Futures in flight.
        await results.aclose()


async def _next_done(
    in_flight: deque[asyncio.Future[T]],
    ordered: bool,
    deadline: float,
    seconds: float | None,
) -> asyncio.Future[T]:
    """Remove and return the next Future to report (first, or first done)."""
    first = in_flight[0]
    if first.done():
        # The common case once the workers are ahead of the consumer: no
        # asyncio.wait (a set, a waiter Future and a callback per Future).
        return in_flight.popleft()
    left = left_until(deadline)
    timeout = None if left == math.inf else left
    if ordered:
        done, _ = await asyncio.wait([in_flight[0]], timeout=timeout)
    else:
        done, _ = await asyncio.wait(
            in_flight, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    if not done:
        raise PoolTimeout(f"map result not ready within {seconds} s of the call")
    fut = done.pop()
    in_flight.remove(fut)
    return fut


def _take(box: list[asyncio.Future[T]]) -> T:
    """The result of the one Future in ``box``, emptying the box first."""
    return box.pop().result()


async def _aitems(items: AsyncIterable[Any]) -> AsyncIterator[tuple[Any, ...]]:
    async for item in items:
        yield (item,)


async def _results(
    pool: AsyncWorkerPool,
    fn: Callable[..., Awaitable[T]],
    source: Iterator[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]],
    limit: int,
    ordered: bool,
    deadline: float,
    seconds: float | None,
) -> AsyncGenerator[T, None]:
    in_flight: deque[asyncio.Future[T]] = deque()
    exhausted = False

    plain = source if isinstance(source, Iterator) else None

    async def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(in_flight) < limit:
            if plain is not None:
                args = next(plain, None)  # zip gives tuples, never None
                if args is None:
                    exhausted = True
                    return
            else:
                try:
                    args = await source.__anext__()  # type: ignore[union-attr]
                except StopAsyncIteration:
                    exhausted = True
                    return
            in_flight.append(await pool.submit(fn, *args))

    try:
        await refill()
        while in_flight:
            box = [await _next_done(in_flight, ordered, deadline, seconds)]
            await refill()
            # Yield, then drop: the Future (which holds the result) leaves the
            # box before the result is yielded, so nothing here keeps a result
            # the consumer has taken alive while it waits for the next one
            # (Executor.map's contract, bpo-27144).
            yield _take(box)
    finally:
        for fut in in_flight:
            fut.cancel()
