"""AsyncSubpool: a subpool of an :class:`~poolkit.AsyncWorkerPool` (pond v2 ``NewSubpool``).

The asyncio twin of :mod:`poolkit.workers._subpool` (the rules are written
there): at most ``max_concurrency`` drains, each a task of the parent that
runs the subpool's queued coroutines one after another. Everything runs on
the parent's event loop, so no lock is needed. Each task runs as an asyncio
Task of its own, so cancelling its Future cancels it at its await point, as
on the pool; a drain the parent cancels (its ``stop(cancel_pending=True)``)
fails the tasks no other drain will take with ``PoolClosed``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from poolkit._errors import PoolClosed
from poolkit._validate import check_bool, check_callable, check_optional_seconds
from poolkit.workers._async_group import AsyncTaskGroup
from poolkit.workers._group import CancelToken, GroupCore
from poolkit.workers._subpool import SubpoolBase

if TYPE_CHECKING:
    from poolkit.workers._async_pool import AsyncWorkerPool

__all__ = ["AsyncSubpool"]

T = TypeVar("T")

_copy_context = contextvars.copy_context


class _Drain:
    """One drain's record: whether its parent task started (then it frees its own slot)."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = False


class AsyncSubpool(SubpoolBase):
    """A view of an :class:`~poolkit.AsyncWorkerPool` with its own concurrency limit.

    Create with ``pool.subpool(max_concurrency, queue_size=None)`` (or
    ``subpool.subpool(...)`` to nest); the arguments mean what they mean for
    :class:`~poolkit.workers.Subpool`.

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        parent: AsyncWorkerPool | AsyncSubpool,
        max_concurrency: int,
        *,
        queue_size: int | None = None,
    ) -> None:
        self._setup(parent, max_concurrency, queue_size)
        # Woken whenever a queued task is taken or a drain ends.
        self._changed: asyncio.Event | None = None

    # -- submission -----------------------------------------------------------

    async def submit(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Queue ``fn(*args, **kwargs)`` under the subpool's limit; its Future.

        Waits for room when the subpool's queue is full.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._put((fn, args, kwargs, _copy_context(), fut), wait=True)
        return fut

    async def go(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> None:
        """Like :meth:`submit` without a Future; a failure goes to the pool's ``on_error``.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        await self._put((fn, args, kwargs, _copy_context(), None), wait=True)

    async def try_submit(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T] | None:
        """Like :meth:`submit`, but ``None`` (counted as ``overloads``) when the queue is full.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if not await self._put((fn, args, kwargs, _copy_context(), fut), wait=False):
            return None
        return fut

    async def submit_wait(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run the task under the subpool's limit and return its result.

        Raises:
            PoolClosed: the subpool or its parent is stopped.
            BaseException: whatever the task raised.
        """
        return await (await self.submit(fn, *args, **kwargs))

    def _wake(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def _until_changed(self) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    async def _put(self, item: tuple[Any, ...], *, wait: bool) -> bool:
        if self.closed:
            raise self._closed_error()
        bound = self._queue_size
        if bound is not None:
            while not self._room(bound):
                if not wait:
                    self._counts["overloads"] += 1
                    return False
                await self._until_changed()
                if self.closed:
                    raise self._closed_error()
        if self._queue(item):
            await self._start_drain(item)
        return True

    async def _start_drain(self, item: tuple[Any, ...]) -> None:
        drain = _Drain()
        try:
            handle = await self._parent.submit(self._drain, drain)
        except BaseException as exc:
            # The parent refused (stopped, full and may not wait, or this
            # submitter was cancelled while waiting for room there).
            self._workers -= 1
            orphans = self._orphans()
            self._wake()
            self._fail(orphans, exc)
            if any(o is item for o in orphans):
                raise
            return
        handle.add_done_callback(lambda h: self._drain_ended(h, drain))

    @staticmethod
    def _fail(items: list[tuple[Any, ...]], exc: BaseException) -> None:
        for *_, fut in items:
            if fut is not None and not fut.done():
                fut.set_exception(PoolClosed(f"the parent pool did not run the task: {exc!r}"))

    def _drain_ended(self, handle: asyncio.Future[None], drain: _Drain) -> None:
        if drain.started:
            return  # it ran: _drain gave its slot back itself
        self._workers -= 1
        self._wake()
        self._fail(self._orphans(), PoolClosed("the parent pool stopped before running it"))

    async def _drain(self, drain: _Drain) -> None:
        """One drain: run queued tasks until the queue is empty (a parent task)."""
        drain.started = True
        pending = self._pending
        try:
            while pending:
                item = pending.popleft()
                self._wake()  # room in the queue
                await self._run(*item)
        except BaseException:
            # Cancelled by the parent (its stop cancelled running tasks), or
            # interrupted: free the slot; the tasks left may be orphans.
            self._workers -= 1
            self._wake()
            self._fail(self._orphans(), PoolClosed("a drain of the subpool was cancelled"))
            raise
        self._workers -= 1
        self._wake()

    async def _run(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: contextvars.Context,
        fut: asyncio.Future[Any] | None,
    ) -> None:
        counts = self._counts
        if fut is not None and fut.cancelled():
            counts["cancelled"] += 1
            return
        loop = asyncio.get_running_loop()
        try:
            coro = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:  # fn is not a coroutine function, or raised at once
            self._ended(fn, fut, exc)
            return
        task: asyncio.Task[Any] = loop.create_task(coro, context=ctx)  # type: ignore[arg-type]
        if fut is not None:
            fut.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)
        self._running += 1
        try:
            result = await task
        except asyncio.CancelledError:
            self._running -= 1
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                if fut is not None and not fut.done():
                    fut.cancel()
                raise  # the drain itself is cancelled
            counts["cancelled"] += 1
            if fut is not None and not fut.done():
                fut.cancel()
            return
        except BaseException as exc:
            self._running -= 1
            self._ended(fn, fut, exc)
            return
        self._running -= 1
        counts["succeeded"] += 1
        if fut is not None and not fut.done():
            fut.set_result(result)

    def _ended(self, fn: object, fut: asyncio.Future[Any] | None, exc: BaseException) -> None:
        self._counts["failed"] += 1
        if fut is None:
            self._report(exc, fn)
        elif not fut.done():
            fut.set_exception(exc)

    # -- groups and nesting -----------------------------------------------------

    def subpool(self, max_concurrency: int, *, queue_size: int | None = None) -> AsyncSubpool:
        """A subpool of this subpool: it respects this limit and every one above.

        Raises:
            ValueError: ``max_concurrency`` above this subpool's limit.
        """
        return AsyncSubpool(self, max_concurrency, queue_size=queue_size)

    def group(
        self, *, cancel_on_error: bool = False, parent: CancelToken | GroupCore | None = None
    ) -> AsyncTaskGroup[Any]:
        """A task group whose tasks run under this subpool's limit."""
        return AsyncTaskGroup(self, cancel_on_error=cancel_on_error, parent=parent)  # type: ignore[arg-type]

    def _in_own_task(self) -> bool:
        # Groups ask it before waiting; the parent pool knows its own tasks.
        return bool(self._parent._in_own_task())

    # -- stop -------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until no task of the subpool is queued or running (without stopping).

        Raises:
            PoolTimeout: still busy after ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        try:
            async with asyncio.timeout(seconds if seconds is None or seconds < 1e9 else None):
                while self._workers:
                    await self._until_changed()
        except TimeoutError:
            raise self._busy_error(seconds) from None

    async def stop(
        self, wait: bool = True, *, cancel_pending: bool = False, timeout: float | None = None
    ) -> None:
        """Stop taking tasks; the parent goes on. Idempotent.

        Args:
            wait: wait until the subpool's tasks have ended.
            cancel_pending: cancel its queued tasks instead of running them.
            timeout: most seconds to wait.

        Raises:
            PoolTimeout: ``wait`` and still busy after ``timeout`` seconds.
        """
        check_bool("wait", wait)
        for *_, fut in self._shut(cancel_pending):
            if fut is not None:
                fut.cancel()
        self._wake()
        if wait:
            await self.wait(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop and wait for the subpool's tasks (``stop()``)."""
        await self.stop(timeout=timeout)

    async def __aenter__(self) -> AsyncSubpool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
