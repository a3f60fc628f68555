"""AsyncTaskGroup: a task group on an AsyncWorkerPool.

The same rules as the thread :class:`~poolkit.workers.TaskGroup` (the shared
part is :class:`~poolkit.workers._group.GroupCore`): results in submission
order, first failure raised, ``wait()`` covering members added while it
waits, submissions that raised counted as failures, ``as_completed``
streaming results. One difference, as ``asyncio.TaskGroup``: cancelling the
group (``cancel_on_error``'s first failure, ``cancel()``, an exception in the
``async with`` body) cancels running members at once — ``CancelledError`` is
thrown in at their await point — besides setting the cancel token.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._validate import check_callable, check_optional_seconds
from poolkit._waits import deadline_after, left_until
from poolkit.workers._group import WAIT_DOC, CancelToken, GroupCore

if TYPE_CHECKING:
    from poolkit.workers._async_pool import AsyncWorkerPool

__all__ = ["AsyncTaskGroup"]


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


T = TypeVar("T")
P = ParamSpec("P")


class AsyncTaskGroup(GroupCore, Generic[T]):
    """Tasks submitted together to an AsyncWorkerPool; create with ``pool.group()``.

    Use with ``async with``: leaving the block waits for every task and
    raises the first failure; an exception in the block cancels the group's
    tasks, running ones included (as ``asyncio.TaskGroup``).
    """

    def __init__(
        self,
        pool: AsyncWorkerPool,
        *,
        cancel_on_error: bool = False,
        parent: CancelToken | GroupCore | None = None,
    ) -> None:
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        super().__init__(cancel_on_error=cancel_on_error, parent=parent)
        self._pool = pool
        # Members whose coroutine has already ended (raised): cancelling the
        # group must not cancel the Future of the member that is failing and
        # is about to set its own exception.
        self._numbers = itertools.count()
        self._number_of: dict[asyncio.Future[Any], int] = {}
        self._ended: set[int] = set()

    async def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Submit ``fn(*args, **kwargs)`` as part of this group; return its Future.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is stopped (also recorded as a failure of
                the group: ``wait()`` raises it).
        """
        check_callable("fn", fn)
        number = next(self._numbers)
        try:
            fut = await self._pool.submit(self._guarded, number, fn, *args, **kwargs)
        except asyncio.CancelledError:
            raise  # the submitter was cancelled while waiting for room: not a failure
        except BaseException as exc:
            self._submit_failed(exc)
            raise
        self._number_of[fut] = number
        self._record(fut)
        return fut

    def _parent_cancelled(self) -> None:
        # asyncio Futures are cancelled on their loop: a parent cancelled
        # from another thread hands the cancel over to it.
        loop = self._loop
        if loop is None or _on_loop(loop):
            self.cancel()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.cancel)

    def _cancel_member(self, fut: Any) -> None:
        # Cancelling the Future of a running member throws CancelledError into
        # its coroutine (see AsyncWorkerPool.submit); one not started is skipped.
        if self._number_of.get(fut) not in self._ended:
            fut.cancel()

    async def _guarded(
        self, number: int, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        try:
            self._guard()
            return await fn(*args, **kwargs)
        except (asyncio.CancelledError, GeneratorExit):
            # Cancelled by the group or its Future's owner, or closed while
            # queued after a stop that cancelled pending tasks: not a failure.
            raise
        except BaseException as exc:
            self._ended.add(number)
            self._note_failure(exc)
            raise

    def _check_not_in_pool(self) -> None:
        if self._pool._in_own_task():
            raise PoolDeadlock(
                "a task waited on a group of its own pool: if every worker does this, "
                "none is left to run the group's tasks; wait from outside the pool"
            )

    async def wait(self, timeout: float | None = None) -> list[T]:
        # The docstring is WAIT_DOC, set below (shared with TaskGroup.wait).
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        self._check_not_in_pool()
        deadline = deadline_after(seconds)
        waited = 0
        while True:
            futures = list(self._futures)
            if len(futures) == waited:
                break  # a member records its children before it ends (see _group)
            pending = [fut for fut in futures[waited:] if not fut.done()]
            if pending:
                left = left_until(deadline)
                _done, still = await asyncio.wait(
                    pending, timeout=None if left == math.inf else left
                )
                if still:
                    raise PoolTimeout(f"group tasks still running after {seconds} s; raise timeout")
            waited = len(futures)
        if self._first_error is not None:
            raise self._first_error
        return [fut.result() for fut in futures]

    wait.__doc__ = WAIT_DOC

    async def as_completed(self, timeout: float | None = None) -> AsyncIterator[asyncio.Future[T]]:
        """Yield the group's Futures as they finish (those submitted so far).

        Raises:
            PoolTimeout: not all done within ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        self._check_not_in_pool()
        pending = set(self._futures)
        deadline = deadline_after(seconds)
        while pending:
            left: float | None = left_until(deadline)
            if left == math.inf:
                left = None
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise PoolTimeout(f"group tasks still running after {seconds} s; raise timeout")
            for fut in done:
                yield fut

    async def __aenter__(self) -> AsyncTaskGroup[T]:
        return self

    async def go(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Submit without keeping the Future; failures still reach ``wait()``.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is stopped (also a failure of the group).
        """
        await self.submit(fn, *args, **kwargs)

    async def __aexit__(self, *exc_info: object) -> None:
        with self._leaving(exc_info[1]):
            await self.wait()
