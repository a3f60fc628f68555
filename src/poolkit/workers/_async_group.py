"""AsyncTaskGroup: a task group on an AsyncWorkerPool.

The same rules as the thread :class:`~poolkit.workers.TaskGroup` (the shared
part is :class:`~poolkit.workers._group.GroupCore`): results in submission
order, first failure raised, ``cancel_on_error`` cancelling unstarted tasks
and setting the cancel token, ``as_completed`` streaming results.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._validate import check_optional_seconds
from poolkit.workers._group import GroupCore

if TYPE_CHECKING:
    from poolkit.workers._async_pool import AsyncWorkerPool

__all__ = ["AsyncTaskGroup"]

T = TypeVar("T")


class AsyncTaskGroup(GroupCore, Generic[T]):
    """Tasks submitted together to an AsyncWorkerPool; create with ``pool.group()``.

    Use with ``async with``: leaving the block waits for every task and
    raises the first failure; an exception in the block cancels the tasks
    not yet started.
    """

    def __init__(self, pool: AsyncWorkerPool, *, cancel_on_error: bool = False) -> None:
        super().__init__(cancel_on_error=cancel_on_error)
        self._pool = pool
        # An asyncio Future has no "running" state: remember which members
        # started, so cancelling the group only cancels the others (running
        # ones see the token, as with threads).
        self._numbers = itertools.count()
        self._number_of: dict[asyncio.Future[Any], int] = {}
        self._started: set[int] = set()

    async def submit(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Submit ``fn(*args, **kwargs)`` as part of this group; return its Future.

        Raises:
            PoolClosed: the pool is stopped.
        """
        number = next(self._numbers)
        fut = await self._pool.submit(self._guarded, number, fn, *args, **kwargs)
        self._number_of[fut] = number
        self._record(fut)
        return fut

    def _cancel_unstarted(self, fut: Any) -> None:
        if self._number_of.get(fut) not in self._started:
            fut.cancel()

    async def _guarded(
        self, number: int, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        self._started.add(number)
        self._guard()
        try:
            return await fn(*args, **kwargs)
        except BaseException as exc:
            self._note_failure(exc)
            raise

    def _check_not_in_pool(self) -> None:
        if self._pool._in_own_task():
            raise PoolDeadlock(
                "a task waited on a group of its own pool: if every worker does this, "
                "none is left to run the group's tasks; wait from outside the pool"
            )

    async def wait(self, timeout: float | None = None) -> list[T]:
        """Wait for every task; return results in submission order.

        Cancelling the caller does not cancel the group's tasks.

        Raises:
            BaseException: the first failure (in time), after all tasks ended.
            CancelledError: a task was cancelled and none failed.
            PoolTimeout: not all done within ``timeout`` seconds.
            PoolDeadlock: called from a task of the same pool.
        """
        seconds = check_optional_seconds("timeout", timeout)
        self._check_not_in_pool()
        futures = list(self._futures)
        if futures:
            _done, pending = await asyncio.wait(futures, timeout=seconds)
            if pending:
                raise PoolTimeout(f"group tasks still running after {seconds} s; raise timeout")
        if self._first_error is not None:
            raise self._first_error
        return [fut.result() for fut in futures]

    async def as_completed(self, timeout: float | None = None) -> AsyncIterator[asyncio.Future[T]]:
        """Yield the group's Futures as they finish (those submitted so far).

        Raises:
            PoolTimeout: not all done within ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout)
        self._check_not_in_pool()
        pending = set(self._futures)
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while pending:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise PoolTimeout(f"group tasks still running after {seconds} s; raise timeout")
            for fut in done:
                yield fut

    async def __aenter__(self) -> AsyncTaskGroup[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.cancel()
            # The body's exception is the one to report.
            with contextlib.suppress(BaseException):
                await self.wait()
            return
        await self.wait()
