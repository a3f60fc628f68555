"""Where handlers run: a WorkerPool, an AsyncWorkerPool or a ProcessPool.

A runner takes ``(slot, fn, args)`` from the worker's control thread, runs
``fn(*args)`` on its pool and reports ``done(slot, error)`` (``error`` is
``None`` on success) from whatever thread finishes the job. Reporting goes
through a ``queue.SimpleQueue`` the control thread reads, so a runner never
touches Redis and never blocks on it.

Each pool comes from poolkit's public API with ``max_workers=concurrency``:
the control thread hands a runner at most one job per free slot, so no job
ever waits in a pool's queue and the concurrency bound is the pool's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from poolkit import AsyncWorkerPool, PoolTimeout, ProcessPool, TaskTimeout, WorkerPool

__all__ = ["MODES", "Done", "Runner", "make_runner"]

MODES = ("threads", "asyncio", "processes")

Done = Callable[[str, BaseException | None], None]


class Runner(Protocol):
    """What the worker needs from a pool of handlers."""

    def start(self) -> None:
        """Start the pool."""

    def run(self, slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
        """Run ``fn(*args)``; call ``done(slot, error_or_None)`` when it ends."""

    def shutdown(self) -> None:
        """Stop the pool; nothing is running."""

    def abort(self) -> None:
        """Stop what still runs, as far as the pool can: kill, cancel, or abandon."""


class ThreadRunner:
    """Handlers on a :class:`poolkit.WorkerPool` (threads)."""

    def __init__(self, concurrency: int, options: Mapping[str, Any]) -> None:
        self._pool = WorkerPool(**{"name": "resque", **options, "max_workers": concurrency})

    def start(self) -> None:
        pass  # threads start on demand

    def run(self, slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
        self._pool.go(_call, slot, fn, args, done)

    def shutdown(self) -> None:
        self._pool.stop()

    def abort(self) -> None:
        # A running thread cannot be interrupted: it finishes in the
        # background (the pool's threads are daemons) and its report is
        # ignored, since the control thread already requeued its job.
        self._pool.stop(wait=False)


def _call(slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
    try:
        fn(*args)
    except BaseException as exc:
        done(slot, exc)
        if not isinstance(exc, Exception):
            raise  # SystemExit, KeyboardInterrupt: reported, then left to the pool
    else:
        done(slot, None)


class AsyncRunner:
    """Coroutine handlers on a :class:`poolkit.AsyncWorkerPool`, on a loop thread of its own."""

    def __init__(
        self, concurrency: int, options: Mapping[str, Any], job_timeout: float | None
    ) -> None:
        self._concurrency = concurrency
        self._options = dict(options)
        self._timeout = job_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="resque-asyncio", daemon=True
        )
        self._pool: AsyncWorkerPool | None = None

    def start(self) -> None:
        self._thread.start()
        self._pool = self._on_loop(self._make_pool())

    async def _make_pool(self) -> AsyncWorkerPool:
        # eager=False: a handler always runs in a worker task of its own. An
        # eager first step runs in the caller, where asyncio.timeout() (and
        # so job_timeout) would be bound to the wrong task.
        return AsyncWorkerPool(
            **{"name": "resque", "eager": False, **self._options, "max_workers": self._concurrency}
        )

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def run(self, slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
        pool = self._pool
        assert pool is not None, "start() first"
        self._loop.call_soon_threadsafe(pool.go_nowait, self._job, slot, fn, args, done)

    async def _job(self, slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
        try:
            if self._timeout is None:
                await fn(*args)
            else:
                try:
                    async with asyncio.timeout(self._timeout):
                        await fn(*args)
                except TimeoutError as exc:
                    raise TaskTimeout(
                        f"job ran past job_timeout={self._timeout} s and was cancelled",
                        timeout=self._timeout,
                    ) from exc
        except BaseException as exc:
            done(slot, exc)
            if not isinstance(exc, Exception):
                raise  # cancellation (abort) goes on to the pool
        else:
            done(slot, None)

    def shutdown(self) -> None:
        self._close(timeout=None)

    def abort(self) -> None:
        self._close(timeout=0.0)  # running coroutines are cancelled at their await point

    def _close(self, timeout: float | None) -> None:
        pool = self._pool
        if pool is not None:
            # PoolTimeout: running tasks were cancelled, which is what abort asks.
            with contextlib.suppress(PoolTimeout):
                self._on_loop(pool.stop(timeout=timeout))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class ProcessRunner:
    """CPU-bound handlers on a :class:`poolkit.ProcessPool`, with a per-job timeout."""

    def __init__(
        self, concurrency: int, options: Mapping[str, Any], job_timeout: float | None
    ) -> None:
        self._pool = ProcessPool(**{"name": "resque", **options, "max_workers": concurrency})
        self._tasks = self._pool.options(timeout=job_timeout)

    def start(self) -> None:
        pass  # processes start on demand

    def run(self, slot: str, fn: Callable[..., Any], args: list[Any], done: Done) -> None:
        try:
            future = self._tasks.submit(fn, *args)
        except Exception as exc:  # unpicklable handler or argument: the job fails
            done(slot, exc)
            return

        def report(fut: concurrent.futures.Future[Any]) -> None:
            if fut.cancelled():
                done(slot, concurrent.futures.CancelledError("the job's process was stopped"))
            else:
                done(slot, fut.exception())

        future.add_done_callback(report)

    def shutdown(self) -> None:
        self._pool.stop()

    def abort(self) -> None:
        self._pool.terminate()


def make_runner(
    mode: str, concurrency: int, options: Mapping[str, Any], job_timeout: float | None
) -> Runner:
    """The runner for ``mode`` (one of :data:`MODES`, already checked)."""
    if mode == "threads":
        return ThreadRunner(concurrency, options)
    if mode == "asyncio":
        return AsyncRunner(concurrency, options, job_timeout)
    return ProcessRunner(concurrency, options, job_timeout)
