"""DaskPool: the worker-pool vocabulary on a Dask distributed cluster.

``pip install 'poolkit[dask]'``. What ``Client`` lacks and poolkit's pools
have (dask/distributed#864 "Throttling tasks", open since 2017):

* ``map`` is lazy and bounded: input is pulled as results come back, at most
  ``max_in_flight`` tasks are on the cluster, an endless generator works
  (``Client.map`` needs ``len()`` and submits everything at once);
* ``submit`` returns a ``concurrent.futures.Future``, so ``as_completed``,
  ``wait`` and ``asyncio.wrap_future`` work on it, and waits for room when
  ``max_in_flight`` tasks are already out;
* ``group(cancel_on_error=True)``: the first failure cancels the rest — work
  not yet sent never starts, tasks on the cluster are cancelled there;
* ``wait()``, ``close()`` / context manager, ``stats()`` in the worker-pool
  vocabulary.

How results come back: one *collector* thread per pool reads finished Dask
futures from a ``distributed.as_completed`` (which fetches results on the
client's event loop, many at once) and resolves the matching
``concurrent.futures.Future``. Callbacks of those Futures run on that thread;
they may call the pool (``submit``, ``cancel``) but must not block on other
results of the same pool.

Tasks are submitted with ``pure=False``: two calls with the same arguments
run twice, as they would on a ``WorkerPool``. The client belongs to the
caller: ``close()`` leaves it open.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import as_completed as futures_as_completed
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from poolkit import CancelToken, PoolClosed, PoolTimeout, TaskCancelled, WorkerPoolStats
from poolkit._validate import (
    check_bool,
    check_callable,
    check_optional_int,
    check_optional_seconds,
)
from poolkit._waits import deadline_after, wait_for

__all__ = ["DaskPool", "DaskPoolStats", "DaskTaskGroup"]

T = TypeVar("T")

# map's window when max_in_flight is not set: enough tasks out to cover the
# scheduler's per-task latency (~1 ms, distributed docs) on every thread,
# small enough that the client holds a few hundred inputs, not millions.
_MIN_MAP_WINDOW = 256
_WINDOW_PER_THREAD = 8


@dataclass(frozen=True)
class DaskPoolStats(WorkerPoolStats):
    """A snapshot of a :class:`DaskPool` (every :class:`poolkit.WorkerPoolStats` field).

    ``max_workers`` and ``workers`` are the cluster's threads; ``running``
    counts tasks on the cluster (sent, not finished: running or waiting
    there); ``blocked`` counts callers waiting for room under
    ``max_in_flight``. ``queued``, ``dropped`` and ``expired`` are 0.

    Attributes:
        in_flight: tasks on the cluster (same as ``running``).
        max_in_flight: the bound on them (``None``: unbounded ``submit``).
        peak_in_flight: the most tasks that were on the cluster at once.
        cluster_workers: Dask workers connected to the scheduler.
    """

    in_flight: int
    max_in_flight: int | None
    peak_in_flight: int
    cluster_workers: int


class _DaskFuture(Future[Any]):
    """A Future mirroring a Dask future; ``cancel()`` cancels it on the cluster too."""

    def __init__(self, pool: DaskPool, dask_future: Any) -> None:
        super().__init__()
        self._pool = pool
        self.dask_future: Any = dask_future

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        # Pending tasks are dropped; one already running on a worker thread
        # finishes there and its result is discarded (dask/distributed#4694).
        self._pool._cancel_on_cluster([self.dask_future])
        return True


class DaskPool:
    """Submit work to a Dask cluster with WorkerPool's vocabulary.

    Args:
        client: a ``distributed.Client`` (the pool never closes it).
        max_in_flight: most tasks of this pool on the cluster at once;
            ``submit`` waits for room beyond it and ``map`` keeps at most this
            many inputs out. ``None``: ``submit`` never waits and ``map`` keeps
            ``max(256, 8 × cluster threads)`` out.

    Raises:
        TypeError: ``client`` is not a ``distributed.Client``, or a bad
            ``max_in_flight`` type.
        ValueError: ``max_in_flight < 1``.
        ImportError: distributed is not installed.
    """

    def __init__(self, client: Any, *, max_in_flight: int | None = None) -> None:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "poolkit.integrations.dask needs distributed: pip install 'poolkit[dask]'"
            ) from exc
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        self._client: Any = client
        self._max = check_optional_int("max_in_flight", max_in_flight, minimum=1)
        self._cond = threading.Condition()
        self._by_key: dict[str, _DaskFuture] = {}
        self._tracker: Any = distributed.as_completed(  # type: ignore[no-untyped-call]
            [], loop=client.loop
        )
        self._collector: threading.Thread | None = None
        self._closed = False
        self._blocked = 0
        self._settling = 0  # taken off _by_key, Future not yet resolved
        self._reserved = 0  # room taken by submitters and by ordered maps' batches
        self._peak = 0
        self._submitted = self._succeeded = self._failed = self._cancelled = 0

    # -- submission ---------------------------------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the cluster; a ``concurrent.futures.Future``.

        Every keyword goes to ``fn`` (the Executor contract), none to Dask.
        Waits for room while ``max_in_flight`` tasks are out.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is closed (also while waiting for room).
        """
        check_callable("fn", fn)
        call = functools.partial(fn, **kwargs) if kwargs else fn
        self._reserve(1)
        [fut] = self._send(lambda: [self._client.submit(call, *args, pure=False)], 1)
        return fut

    def _reserve(self, wanted: int, guard: Callable[[], None] | None = None) -> int:
        """Wait for room; reserve and return how many of ``wanted`` tasks may go out.

        Reserved tasks count as out until :meth:`_send` tracks them or
        :meth:`_release` gives them back, so concurrent submitters never
        overshoot ``max_in_flight``.
        """
        with self._cond:
            self._blocked += 1
            try:
                while not self._closed and self._max is not None:
                    if self._out() < self._max:
                        break
                    self._cond.wait()
            finally:
                self._blocked -= 1
            if self._closed:
                raise PoolClosed("this DaskPool is closed; create a new one to submit more")
            if guard is not None:
                guard()
            granted = wanted if self._max is None else min(wanted, self._max - self._out())
            self._reserved += granted
            return granted

    def _release(
        self, count: int, *, succeeded: int = 0, failed: int = 0, cancelled: int = 0
    ) -> None:
        """Give back reserved room; count how the tasks that used it ended."""
        with self._cond:
            self._reserved -= count
            self._succeeded += succeeded
            self._failed += failed
            self._cancelled += cancelled
            self._cond.notify_all()

    def _send(self, make: Callable[[], list[Any]], reserved: int) -> list[_DaskFuture]:
        """Send reserved tasks; the collector resolves their Futures."""
        try:
            dask_futures = make()
        except BaseException:
            self._release(reserved)
            raise
        futs = [_DaskFuture(self, f) for f in dask_futures]
        with self._cond:
            self._reserved -= reserved
            for fut in futs:
                self._by_key[fut.dask_future.key] = fut
            self._submitted += len(futs)
            self._peak = max(self._peak, len(self._by_key))
            if self._collector is None:
                self._collector = threading.Thread(
                    target=self._collect, name="poolkit-dask-collector", daemon=True
                )
                self._collector.start()
            self._cond.notify_all()
        self._tracker.update(dask_futures)
        return futs

    def map(
        self,
        fn: Callable[[Any], T],
        iterable: Iterable[Any],
        *,
        ordered: bool = True,
        progress: bool | Callable[[int], object] = False,
    ) -> Generator[T, None, None]:
        """Lazy, bounded map: results as they come, input pulled as room frees.

        At most ``max_in_flight`` inputs (or the default window) are taken
        from ``iterable`` and not yet yielded, so an endless generator works
        and the client's memory does not grow with the input. A failed item
        raises from the iterator (in input order when ``ordered``); stopping
        early cancels what is still out.

        Args:
            fn: called once per item on the cluster.
            iterable: any iterable, endless ones included.
            ordered: yield in input order (``False``: as completed).
            progress: ``True`` draws a bar (tqdm if installed, else a line
                every 10 % when the length is known); a callable is called
                with the count of results yielded so far.

        Raises:
            TypeError: ``fn`` is not callable or a bad flag.
            PoolClosed: the pool is closed.
        """
        check_callable("fn", fn)
        check_bool("ordered", ordered)
        if not isinstance(progress, bool):
            check_callable("progress", progress)
        if self._closed:
            raise PoolClosed("this DaskPool is closed; create a new one to map")
        window = self._max or max(_MIN_MAP_WINDOW, _WINDOW_PER_THREAD * self._threads())
        if ordered:
            results = self._map_ordered(fn, iter(iterable), window)
        else:
            results = self._map_unordered(fn, iter(iterable), window)
        if progress is True:
            return _with_bar(results, iterable)
        if callable(progress):
            return _with_callback(results, progress)
        return results

    def _map_ordered(
        self, fn: Callable[[Any], T], source: Iterator[Any], window: int
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
                    room = self._reserve(min(size, window - out))
                    items = list(itertools.islice(source, room))
                    if len(items) < room:  # the input ran out
                        self._release(room - len(items))
                        exhausted = True
                    if not items:
                        break
                    batches.append(self._client.map(fn, items, pure=False))
                    with self._cond:
                        self._submitted += len(items)
                        self._peak = max(self._peak, self._out())
                    out += len(items)
                if not batches:
                    return
                head = batches.popleft()
                values, error = self._gather_batch(head)
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
                self._cancel_on_cluster(left)
                self._release(len(left), cancelled=len(left))

    def _gather_batch(self, batch: list[Any]) -> tuple[list[Any], BaseException | None]:
        """The results of ``batch`` in order, up to its first failure (the rest cancelled)."""
        try:
            values: list[Any] = self._client.gather(batch)
        except Exception:
            pass  # a failure, or a result lost with its worker: look one by one
        else:
            self._release(len(batch), succeeded=len(batch))
            return values, None
        values = []
        for index, dask_future in enumerate(batch):
            try:
                values.append(dask_future.result())
            except Exception as exc:
                rest = batch[index + 1 :]
                self._cancel_on_cluster(rest)
                self._release(len(batch), succeeded=index, failed=1, cancelled=len(rest))
                return values, exc
        self._release(len(batch), succeeded=len(batch))
        return values, None

    def _map_unordered(
        self, fn: Callable[[Any], T], source: Iterator[Any], window: int
    ) -> Generator[T, None, None]:
        out: set[Future[Any]] = set()
        finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        exhausted = False
        try:
            while True:
                # Refill below half the window, in batches: one client.map
                # call per batch instead of one submit per item.
                while not exhausted and len(out) <= window // 2:
                    room = self._reserve(window - len(out))
                    batch = list(itertools.islice(source, room))
                    if not batch:
                        self._release(room)
                        exhausted = True
                        break
                    if len(batch) < room:
                        self._release(room - len(batch))
                    futs = self._send(
                        lambda b=batch: self._client.map(fn, b, pure=False),  # type: ignore[misc]
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
                self._cancel_all(list(out))

    def group(self, *, cancel_on_error: bool = False) -> DaskTaskGroup[Any]:
        """A task group: ``wait()`` returns results in order and raises the first failure.

        Raises:
            TypeError: ``cancel_on_error`` is not a bool.
        """
        return DaskTaskGroup(self, cancel_on_error=check_bool("cancel_on_error", cancel_on_error))

    # -- results ------------------------------------------------------------

    def _collect(self) -> None:
        """The collector thread: resolve Futures as their Dask futures finish."""
        while True:
            with self._cond:
                while not self._by_key and not self._closed:
                    self._cond.wait()
                if not self._by_key:
                    return  # closed and nothing left out
            try:
                batch = self._tracker.next_batch(block=True)
            except StopIteration:
                continue  # sent but not yet tracked: look again
            finished = [f for f in batch if f.status == "finished"]
            values = self._gather(finished)
            for dask_future, value in zip(finished, values, strict=True):
                self._resolve(dask_future, value)
            for dask_future in batch:
                if dask_future.status != "finished":
                    self._resolve(dask_future, None)

    def _gather(self, finished: list[Any]) -> list[tuple[bool, Any]]:
        """``(ok, value or exception)`` for each finished future; one round trip for all."""
        if not finished:
            return []
        try:
            return [(True, v) for v in self._client.gather(finished)]
        except Exception:
            pass  # one result could not be fetched (its worker died): one by one
        out: list[tuple[bool, Any]] = []
        for f in finished:
            try:
                out.append((True, f.result()))
            except Exception as exc:
                out.append((False, exc))
        return out

    def _resolve(self, dask_future: Any, value: tuple[bool, Any] | None) -> None:
        with self._cond:
            fut = self._by_key.pop(dask_future.key, None)
            if fut is None:
                return
            self._settling += 1
        try:
            self._settle(fut, dask_future, value)
        finally:
            # Room for a waiting submitter, or wait() may return: only now,
            # after the Future's callbacks ran, so a group cancelled by this
            # failure refuses the submitter that was waiting for the room.
            with self._cond:
                self._settling -= 1
                self._cond.notify_all()

    def _settle(self, fut: _DaskFuture, dask_future: Any, value: tuple[bool, Any] | None) -> None:
        status = dask_future.status
        if status == "finished" and value is not None and value[0]:
            if fut.set_running_or_notify_cancel():
                self._count("succeeded")
                fut.set_result(value[1])
            else:
                self._count("cancelled")
            return
        if status == "error" or (value is not None and not value[0]):
            error = value[1] if value is not None else _exception_of(dask_future)
            if fut.set_running_or_notify_cancel():
                self._count("failed")
                fut.set_exception(error)
            else:
                self._count("cancelled")
            return
        # Cancelled by us (already marked) or lost by the cluster. Future.cancel
        # does not wake concurrent.futures.wait(); set_running_or_notify_cancel
        # does, as an executor calls it when a cancelled task's turn comes.
        self._count("cancelled")
        Future.cancel(fut)
        fut.set_running_or_notify_cancel()

    def _count(self, what: str) -> None:
        with self._cond:
            setattr(self, f"_{what}", getattr(self, f"_{what}") + 1)

    def _cancel_all(self, futs: list[Future[Any]]) -> None:
        """Cancel Futures of this pool: one message to the scheduler for all."""
        dask_futures = [
            f.dask_future for f in futs if isinstance(f, _DaskFuture) and Future.cancel(f)
        ]
        self._cancel_on_cluster(dask_futures)

    def _cancel_on_cluster(self, dask_futures: list[Any]) -> None:
        if dask_futures:
            with contextlib.suppress(Exception):  # the cluster is gone: nothing runs
                self._client.cancel(dask_futures)

    # -- lifecycle ----------------------------------------------------------

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without closing.

        Raises:
            PoolTimeout: tasks still out after ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        with self._cond:
            if not wait_for(self._cond, lambda: not self._out(), deadline_after(seconds)):
                raise PoolTimeout(
                    f"{self._out()} tasks still on the cluster after {seconds} s; raise timeout"
                )

    def close(self, *, cancel_pending: bool = False, timeout: float | None = None) -> None:
        """Refuse new work, then wait for what is out (or cancel it).

        The client stays open. Closing twice is harmless.

        Args:
            cancel_pending: cancel the tasks still on the cluster instead of
                waiting for them.
            timeout: most seconds to wait; then the rest is cancelled and
                ``PoolTimeout`` raised.

        Raises:
            PoolTimeout: tasks were still out after ``timeout`` (now cancelled).
        """
        check_bool("cancel_pending", cancel_pending)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            pending = list(self._by_key.values())
        if cancel_pending:
            self._cancel_all(list(pending))
        try:
            self.wait(timeout)
        except PoolTimeout:
            with self._cond:
                pending = list(self._by_key.values())
            self._cancel_all(list(pending))
            raise
        finally:
            collector = self._collector
            if collector is not None and collector is not threading.current_thread():
                with self._cond:
                    self._cond.notify_all()
                collector.join(timeout=1.0)

    def __enter__(self) -> DaskPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel_pending=exc is not None)

    def _out(self) -> int:
        """Tasks sent and not settled (call with the lock held)."""
        return len(self._by_key) + self._settling + self._reserved

    def _threads(self) -> int:
        try:
            return int(sum(self._client.nthreads().values()))
        except Exception:
            return 0

    def stats(self) -> DaskPoolStats:
        """A snapshot in the worker-pool vocabulary (asks the scheduler for its workers)."""
        try:
            nthreads: dict[str, int] = dict(self._client.nthreads())
        except Exception:
            nthreads = {}
        threads = int(sum(nthreads.values()))
        with self._cond:
            out = len(self._by_key)
            return DaskPoolStats(
                max_workers=threads,
                workers=threads,
                idle_workers=max(0, threads - out),
                running=out,
                queued=0,
                blocked=self._blocked,
                submitted=self._submitted,
                completed=self._succeeded + self._failed,
                succeeded=self._succeeded,
                failed=self._failed,
                dropped=0,
                cancelled=self._cancelled,
                expired=0,
                paused=False,
                closed=self._closed,
                in_flight=out,
                max_in_flight=self._max,
                peak_in_flight=self._peak,
                cluster_workers=len(nthreads),
            )

    def __repr__(self) -> str:
        with self._cond:
            out, done = len(self._by_key), self._succeeded + self._failed
        state = "closed" if self._closed else "open"
        return (
            f"<DaskPool {state} [in flight: {out}/{self._max or 'unbounded'} | done: {done}, "
            f"{self._failed} failed, {self._cancelled} cancelled]>"
        )


def _exception_of(dask_future: Any) -> BaseException:
    try:
        exc: Any = dask_future.exception()
    except BaseException as err:  # the cluster is gone
        return err
    tb = dask_future.traceback()
    return exc.with_traceback(tb) if isinstance(exc, BaseException) else RuntimeError(exc)


def _with_callback(
    results: Generator[T, None, None], callback: Callable[[int], object]
) -> Generator[T, None, None]:
    with contextlib.closing(results):  # stopping early cancels what is out
        for count, result in enumerate(results, 1):
            yield result
            callback(count)


def _with_bar(
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
            yield from _with_callback(results, advance)
        return
    with tqdm(total=total, desc="DaskPool.map") as tbar:
        yield from _with_callback(results, lambda count: tbar.update(1))


class DaskTaskGroup(Generic[T]):
    """Tasks submitted together to a :class:`DaskPool`; create with ``pool.group()``.

    ``wait()`` returns results in submission order and raises the first
    failure. With ``cancel_on_error=True`` the first failure cancels the
    group: submissions after it return cancelled Futures and never start,
    tasks on the cluster are cancelled there, and ``token`` is set. As a
    context manager, leaving the block waits; an exception in it cancels.
    """

    def __init__(self, pool: DaskPool, *, cancel_on_error: bool) -> None:
        self._pool = pool
        self._cancel_on_error = cancel_on_error
        self._lock = threading.Lock()
        self._futures: list[Future[Any]] = []
        self._first_error: BaseException | None = None
        self.token = CancelToken()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` as a member of the group.

        Returns:
            Its Future; already cancelled if the group is.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is closed (also a failure of the group).
        """
        check_callable("fn", fn)
        if self.token.cancelled:
            return self._cancelled_future()
        call = functools.partial(fn, **kwargs) if kwargs else fn
        try:
            self._pool._reserve(1, guard=self.token.raise_if_cancelled)
        except TaskCancelled:
            return self._cancelled_future()  # cancelled while waiting for room
        except BaseException as exc:
            self._note(exc)
            raise
        [fut] = self._pool._send(lambda: [self._pool._client.submit(call, *args, pure=False)], 1)
        with self._lock:
            self._futures.append(fut)
        fut.add_done_callback(self._on_done)
        if self.token.wait(0):  # cancelled while this one was being sent
            self._pool._cancel_all([fut])
        return fut

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Submit without keeping the Future; failures still reach ``wait()``."""
        self.submit(fn, *args, **kwargs)

    def _cancelled_future(self) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.cancel()
        fut.set_running_or_notify_cancel()  # wakes concurrent.futures.wait() on it
        with self._lock:
            self._futures.append(fut)
        return fut

    def _on_done(self, fut: Future[Any]) -> None:
        if not fut.cancelled():
            self._note(fut.exception())

    def _note(self, exc: BaseException | None) -> None:
        if exc is None:
            return
        with self._lock:
            if self._first_error is None:
                self._first_error = exc
        if self._cancel_on_error:
            self._cancel(exc)

    def cancel(self) -> None:
        """Cancel the group: nothing more starts, tasks on the cluster are cancelled."""
        self._cancel(None)

    def _cancel(self, reason: BaseException | None) -> None:
        self.token.cancel(reason)
        with self._lock:
            futures = [f for f in self._futures if not f.done()]
        self._pool._cancel_all(futures)

    def wait(self, timeout: float | None = None) -> list[T]:
        """Wait for every member; return results in submission order.

        Raises:
            BaseException: the first failure, after every member ended.
            CancelledError: the group was cancelled and no member failed.
            PoolTimeout: members still running after ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        with self._lock:
            futures = list(self._futures)
        _done, pending = futures_wait(futures, timeout=seconds)
        if pending:
            raise PoolTimeout(
                f"group tasks still running after {seconds} s ({len(pending)} of "
                f"{len(futures)} not done); raise timeout"
            )
        if self._first_error is not None:
            raise self._first_error
        return [f.result() for f in futures]

    def as_completed(self, timeout: float | None = None) -> Iterator[Future[T]]:
        """The members' Futures as they finish (``concurrent.futures.as_completed``)."""
        with self._lock:
            futures = list(self._futures)
        return futures_as_completed(futures, timeout=timeout)

    def __len__(self) -> int:
        return len(self._futures)

    def __enter__(self) -> DaskTaskGroup[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.cancel()
            with contextlib.suppress(BaseException):
                self.wait()
            return
        self.wait()
