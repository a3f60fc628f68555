"""AsyncFuncPool: an AsyncWorkerPool bound to one coroutine function (tunny on asyncio).

The asyncio twin of :class:`~poolkit.workers.FuncPool`: ``await process(arg,
timeout=, cancel=)`` runs the job and returns its result; when the caller
gives up (the timeout, its ``cancel=`` token, or the caller's own
cancellation) the job is interrupted: its token is cancelled, its worker's
``interrupt()`` called (and awaited if it is a coroutine) and its coroutine
cancelled at its await point. ``AsyncFuncPool.with_worker(factory)`` gives
each worker an object whose ``process(arg)`` runs the jobs and whose
``ready()`` is awaited before each one.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from poolkit._validate import check_callable, check_optional_seconds
from poolkit.workers._async_pool import AsyncWorkerPool
from poolkit.workers._core import WorkerPoolStats
from poolkit.workers._group import CancelToken
from poolkit.workers._interrupt import AsyncJob, check_cancel, give_up_reason

__all__ = ["AsyncFuncPool"]

A = TypeVar("A")
R = TypeVar("R")


class _Wake:
    """Sets an asyncio Event from whichever thread cancels a token."""

    __slots__ = ("__weakref__", "event", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()

    def fire(self) -> None:
        try:
            here = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            here = False
        if here:
            self.event.set()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.event.set)


class AsyncFuncPool(Generic[A, R]):
    """A pool of asyncio workers that all run ``await fn(arg)``.

    Args:
        fn: the coroutine function every job runs.
        max_workers: most jobs at once.
        **options: any other :class:`~poolkit.AsyncWorkerPool` option.

    Raises:
        TypeError: ``fn`` is not callable, or a bad option.
    """

    def __init__(
        self, fn: Callable[[A], Awaitable[R]], max_workers: int | None = None, **options: Any
    ) -> None:
        self._fn: Callable[..., Awaitable[R]] = check_callable("fn", fn)
        self._stateful = False
        self.pool = AsyncWorkerPool(max_workers, **options)

    @classmethod
    def with_worker(
        cls, factory: Callable[[], Any], max_workers: int | None = None, **options: Any
    ) -> AsyncFuncPool[Any, Any]:
        """A pool of stateful workers (tunny ``New(n, ctor)``) on asyncio.

        Each worker builds ``obj = factory()`` (a coroutine function too) and
        runs each job as ``await obj.process(arg)``; ``ready()`` is awaited
        before each job, ``interrupt()`` called when :meth:`process` gives up
        on its job, ``aclose()``/``close()`` when the worker exits.

        Raises:
            TypeError: ``factory`` is not callable, or a bad option.
        """
        pool = cls.__new__(cls)
        pool._fn = _process_on
        pool._stateful = True
        pool.pool = AsyncWorkerPool.with_worker(factory, max_workers, **options)
        return pool

    async def process(
        self, arg: A, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> R:
        """Run the job on ``arg`` and return its result (tunny ``Process``, ``ProcessCtx``).

        Giving up — ``timeout`` passed, ``cancel`` cancelled, or the caller
        itself cancelled — interrupts the job (see the module docstring).

        Raises:
            PoolTimeout: no result within ``timeout`` seconds.
            TaskCancelled: ``cancel`` was cancelled first.
            TypeError: ``cancel`` is not a CancelToken.
            BaseException: whatever the job raised.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        check_cancel(cancel)
        job = AsyncJob(self._fn, stateful=self._stateful)
        fut: asyncio.Future[R] = await self.pool.submit(job.run, arg)
        waits: set[asyncio.Future[Any]] = {fut}
        wake = _Wake(asyncio.get_running_loop())
        watcher: asyncio.Task[Any] | None = None
        limit = None if seconds is None or seconds > 1e9 else seconds
        try:
            if cancel is not None:
                cancel._on_cancel(wake.fire)
                watcher = asyncio.ensure_future(wake.event.wait())
                waits.add(watcher)
            await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        except BaseException as exc:
            # The caller was cancelled (or anything else went wrong here):
            # nobody waits for the job any more.
            await self._give_up(job, fut, exc)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if fut.done():
            return fut.result()
        reason = give_up_reason(self._fn, arg, cancel, seconds)
        await self._give_up(job, fut, reason)
        raise reason

    @staticmethod
    async def _give_up(job: AsyncJob, fut: asyncio.Future[Any], reason: BaseException) -> None:
        interrupted = job.interrupt(reason)
        # Not started: skipped. Running: cancelled at its await point.
        fut.cancel()
        if inspect.isawaitable(interrupted):
            await interrupted

    async def invoke(self, arg: A) -> None:
        """Run the job on ``arg``, fire and forget (waits only for room)."""
        await self.pool.go(self._fn, arg)

    async def submit(self, arg: A) -> asyncio.Future[R]:
        """Run the job on ``arg``; its Future."""
        return await self.pool.submit(self._fn, arg)

    def stats(self) -> WorkerPoolStats:
        """The underlying pool's stats."""
        return self.pool.stats()

    async def aclose(self, timeout: float | None = None) -> None:
        """Shut down the pool (see ``AsyncWorkerPool.aclose``)."""
        await self.pool.aclose(timeout)

    def __repr__(self) -> str:
        return f"<AsyncFuncPool {self._fn!r} {self.pool!r}>"

    async def __aenter__(self) -> AsyncFuncPool[A, R]:
        await self.pool.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pool.__aexit__(*exc_info)


async def _process_on(worker: Any, arg: Any) -> Any:
    """A stateful pool's job: ``await worker.process(arg)`` (a plain method works too)."""
    result = worker.process(arg)
    if inspect.isawaitable(result):
        return await result
    return result
