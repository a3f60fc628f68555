"""DaskPool: submit, bounded map, groups, wait, close and stats on a Dask cluster."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from poolkit import PoolClosed, PoolTimeout, _registry
from poolkit._registry import NamedClosable
from poolkit._typing import Result
from poolkit._validate import (
    check_bool,
    check_callable,
    check_optional_int,
    check_optional_seconds,
)
from poolkit._waits import deadline_after, wait_for
from poolkit.integrations.dask import _map
from poolkit.integrations.dask._group import DaskTaskGroup
from poolkit.workers import WorkerPoolStats

__all__ = ["DaskPool", "DaskPoolStats"]

T = TypeVar("T")
P = ParamSpec("P")

# map's window when max_in_flight is not set: enough tasks out to cover the
# scheduler's per-task latency (~1 ms, distributed docs) on every thread and
# the round trip of each batch (a quarter window) to the workers, small
# enough that the client holds a few hundred inputs, not millions.
_MIN_MAP_WINDOW = 512
_WINDOW_PER_THREAD = 8


@dataclass(frozen=True)
class DaskPoolStats(WorkerPoolStats):
    """A snapshot of a :class:`DaskPool` (every :class:`poolkit.workers.WorkerPoolStats` field).

    ``max_workers`` and ``workers`` are the cluster's threads; ``running``
    counts tasks on the cluster (sent, not finished: running or waiting
    there); ``waiting`` counts callers waiting for room under
    ``max_in_flight``. ``queued``, ``overloads`` and ``expired`` are 0.

    Attributes:
        in_flight: tasks on the cluster (same as ``running``).
        max_in_flight: the bound on them (``None``: unbounded ``submit``).
        peak_in_flight: the most tasks that were on the cluster at once.
        cluster_workers: Dask workers connected to the scheduler.
    """

    family = "dask"

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


class DaskPool(NamedClosable):
    """Submit work to a Dask cluster with WorkerPool's vocabulary.

    Args:
        client: a ``distributed.Client`` (the pool never closes it).
        max_in_flight: most tasks of this pool on the cluster at once;
            ``submit`` waits for room beyond it and ``map`` keeps at most this
            many inputs out. ``None``: ``submit`` never waits and ``map`` keeps
            ``max(512, 8 × cluster threads)`` out.
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``DaskPool-1``); see :func:`poolkit.pools`.

    Raises:
        TypeError: ``client`` is not a ``distributed.Client``, or a bad
            ``max_in_flight`` type.
        ValueError: ``max_in_flight < 1``.
        ImportError: distributed is not installed.
    """

    def __init__(
        self, client: Any, *, max_in_flight: int | None = None, name: str | None = None
    ) -> None:
        self._name = _registry.name_for(self, name)
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
        _registry.add(self)

    # -- submission ---------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
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
            results = _map.map_ordered(self, fn, iter(iterable), window)
        else:
            results = _map.map_unordered(self, fn, iter(iterable), window)
        if progress is True:
            return _map.with_bar(results, iterable)
        if callable(progress):
            return _map.with_callback(results, progress)
        return results

    def group(self, *, cancel_on_error: bool = False) -> DaskTaskGroup[Result]:
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

    def _count_sent(self, count: int) -> None:
        """Reserved tasks went out outside the collector (an ordered map's batch)."""
        with self._cond:
            self._submitted += count
            self._peak = max(self._peak, self._out())

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

    def __exit__(self, *exc_info: object) -> None:
        exc = exc_info[1]
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
                idle=max(0, threads - out),
                running=out,
                queued=0,
                waiting=self._blocked,
                submitted=self._submitted,
                completed=self._succeeded + self._failed,
                succeeded=self._succeeded,
                failed=self._failed,
                overloads=0,
                cancelled=self._cancelled,
                expired=0,
                paused=False,
                closed=self._closed,
                in_flight=out,
                max_in_flight=self._max,
                peak_in_flight=self._peak,
                cluster_workers=len(nthreads),
                name=self._name,
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
