"""DaskPool.map: ordered batches through client.map/gather, or as completed.

Both keep at most ``window`` inputs taken from the source and not yet
yielded, and reserve room in the pool (``max_in_flight``) before sending.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from poolkit.integrations.dask._pool import DaskPool

__all__ = ["gather_batch", "map_ordered", "map_unordered", "with_bar", "with_callback"]

T = TypeVar("T")


def map_ordered(
    pool: DaskPool, fn: Callable[[Any], T], source: Iterator[Any], window: int
) -> Generator[T, None, None]:
    """Batches of ``window // 4`` items, each sent by one ``client.map`` and
    fetched by one ``client.gather``: the collector is not involved, so an
    ordered map costs what ``Client.map`` costs, per item.
    """
    size = max(1, window // 4)
    batches: deque[list[Any]] = deque()
    out = 0  # items sent and not yet yielded
    exhausted = False
    try:
        while True:
            while not exhausted and out < window:
                room = pool._reserve(min(size, window - out))
                items = list(itertools.islice(source, room))
                if len(items) < room:  # the input ran out
                    pool._release(room - len(items))
                    exhausted = True
                if not items:
                    break
                batches.append(pool._client.map(fn, items, pure=False))
                pool._count_sent(len(items))
                out += len(items)
            if not batches:
                return
            head = batches.popleft()
            values, error = gather_batch(pool, head)
            out -= len(head)
            del head
            values.reverse()  # pop from the end: drop each result as it is yielded
            while values:
                yield values.pop()
            if error is not None:
                raise error  # after the results before it, as Executor.map does
    finally:
        left = [f for batch in batches for f in batch]
        if left:
            pool._cancel_on_cluster(left)
            pool._release(len(left), cancelled=len(left))


def gather_batch(pool: DaskPool, batch: list[Any]) -> tuple[list[Any], BaseException | None]:
    """The results of ``batch`` in order, up to its first failure (the rest cancelled)."""
    try:
        values: list[Any] = pool._client.gather(batch)
    except Exception:
        pass  # a failure, or a result lost with its worker: look one by one
    else:
        pool._release(len(batch), succeeded=len(batch))
        return values, None
    values = []
    for index, dask_future in enumerate(batch):
        try:
            values.append(dask_future.result())
        except Exception as exc:
            rest = batch[index + 1 :]
            pool._cancel_on_cluster(rest)
            pool._release(len(batch), succeeded=index, failed=1, cancelled=len(rest))
            return values, exc
    pool._release(len(batch), succeeded=len(batch))
    return values, None


def map_unordered(
    pool: DaskPool, fn: Callable[[Any], T], source: Iterator[Any], window: int
) -> Generator[T, None, None]:
    out: set[Future[Any]] = set()
    finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
    exhausted = False
    try:
        while True:
            # Refill below half the window, in batches: one client.map
            # call per batch instead of one submit per item.
            while not exhausted and len(out) <= window // 2:
                room = pool._reserve(window - len(out))
                batch = list(itertools.islice(source, room))
                if not batch:
                    pool._release(room)
                    exhausted = True
                    break
                if len(batch) < room:
                    pool._release(room - len(batch))
                futs = pool._send(
                    lambda b=batch: pool._client.map(fn, b, pure=False),  # type: ignore[misc]
                    len(batch),
                )
                out.update(futs)
                for sent in futs:
                    sent.add_done_callback(finished.put)
            if not out:
                return
            fut = finished.get()
            out.discard(fut)
            result = fut.result()
            del fut
            yield result
    finally:
        if out:
            pool._cancel_all(list(out))


def with_callback(
    results: Generator[T, None, None], callback: Callable[[int], object]
) -> Generator[T, None, None]:
    with contextlib.closing(results):  # stopping early cancels what is out
        for count, result in enumerate(results, 1):
            yield result
            callback(count)


def with_bar(
    results: Generator[T, None, None], iterable: Iterable[Any]
) -> Generator[T, None, None]:
    total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    try:
        from tqdm import tqdm
    except ImportError:
        if total is None:
            raise ImportError(
                "progress=True on an input of unknown length needs tqdm: "
                "pip install 'poolkit[progress]'"
            ) from None
        from poolkit._progress import Progress

        def advance(count: int) -> None:
            bar.advance()

        with Progress("DaskPool.map", max(1, total)) as bar:
            yield from with_callback(results, advance)
        return
    with tqdm(total=total, desc="DaskPool.map") as tbar:
        yield from with_callback(results, lambda count: tbar.update(1))
