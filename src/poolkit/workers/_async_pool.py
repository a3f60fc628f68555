"""AsyncWorkerPool: asyncio worker tasks with WorkerPool's options and vocabulary.

Queued items are tuples ``(coro_fn, args, kwargs, context, future_or_None)``
in a deque; ``max_workers`` worker Tasks take them (see ``_async_worker``).
Coroutine *functions* are queued, not coroutine objects: nothing is created
for a task until a worker takes it, and a dropped task leaves no "coroutine
was never awaited" warning.

Everything runs on the pool's event loop (the loop of first use), so the
bookkeeping is plain attributes, with no lock. Sizing, admission and stats
come from the shared core (:mod:`poolkit.workers._core`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from poolkit._errors import PoolDeadlock
from poolkit._validate import check_callable, check_seconds
from poolkit.workers._async_control import AsyncPoolBase
from poolkit.workers._async_group import AsyncTaskGroup
from poolkit.workers._async_map import async_map
from poolkit.workers._core import Admission, Expiring, describe

__all__ = ["AsyncWorkerPool"]

T = TypeVar("T")
_copy_context = contextvars.copy_context


class AsyncWorkerPool(AsyncPoolBase):
    """A pool of asyncio worker tasks running coroutine functions.

    Takes the options of :class:`WorkerPool` (``max_workers``,
    ``min_workers``, ``idle_timeout``, ``queue_size``, ``nonblocking``,
    ``max_blocking``, ``on_error``, ``initializer``/``initargs``,
    ``finalizer``, ``name``), with the same meaning; ``initializer`` and
    ``finalizer`` may be coroutine functions. Bound to the event loop it is
    first used on; in a child made by ``os.fork()`` it raises ``PoolBroken``
    (its loop and workers stay in the parent).

    Tasks are coroutine functions, or callables returning a coroutine (a
    ``lambda`` or ``functools.partial`` around one): a non-callable is
    refused at the call with ``TypeError``; a callable that returns anything
    else fails its task with a ``TypeError`` saying so.

    Raises:
        TypeError, ValueError: a bad option (the message names it).
    """

    def go_nowait(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)`` without waiting; no result handle.

        Failures go to ``on_error``. Must be called on the pool's loop.

        Raises:
            PoolClosed: the pool is stopped.
            PoolOverload: the pool is full (it never waits).
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        if (
            self._eager_ready
            and not self._queue
            and self._pending < self._max_workers
            and not self._eager_depth
        ):
            self._start_now(fn, args, kwargs, None)
            return
        if self._closed:
            self._check_open()
        if self._loop is None:
            self._bind()
        if self._limit is not None and self._decide(False) is not Admission.ACCEPT:
            raise self._overload()
        if self._can_start_now():
            self._start_now(fn, args, kwargs, None)
        else:
            self._put((fn, args, kwargs, _copy_context(), None))

    def go(
        self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Awaitable[None]:
        """Queue ``fn(*args, **kwargs)``; ``await`` the result to wait for room.

        The fast path of pond ``Go`` / ants ``Submit``: no result handle;
        failures go to ``on_error``. Returns an awaitable that completes when
        the task is accepted: at once if there is room (the common case costs
        no coroutine), else once a slot frees up. Cancelling the wait
        withdraws the task.

        Raises:
            PoolClosed: the pool is stopped.
            PoolOverload: full and not allowed to wait.
            PoolDeadlock: a task of this pool would wait on its own full pool.
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        if (
            self._eager_ready
            and not self._queue
            and self._pending < self._max_workers
            and not self._eager_depth
        ):
            self._start_now(fn, args, kwargs, None)
            return self._accepted
        if self._closed:
            self._check_open()
        if self._loop is None:
            self._bind()
        if self._limit is not None:
            decision = self._decide(True)
            if decision is Admission.OVERLOAD:
                raise self._overload()
            if decision is Admission.WAIT:
                if self._in_own_task():
                    self._admit_deadlock()
                return self._go_when_admitted(fn, args, kwargs)
        if self._can_start_now():
            self._start_now(fn, args, kwargs, None)
        else:
            self._put((fn, args, kwargs, _copy_context(), None))
        return self._accepted

    async def _go_when_admitted(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        await self._admit()
        self._put((fn, args, kwargs, _copy_context(), None))

    async def submit(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Queue ``fn(*args, **kwargs)`` and return an ``asyncio.Future`` of its result.

        Cancelling the Future before the task starts skips it; once the task
        has suspended, cancelling the Future throws ``CancelledError`` into it
        at its await point, as cancelling an asyncio Task does (either way it
        counts as ``cancelled``).

        Raises:
            PoolClosed, PoolOverload, PoolDeadlock, TypeError: as :meth:`go`.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        self._check_open()
        loop = self._bind()
        if self._limit is not None:
            await self._admit()
        fut: asyncio.Future[T] = loop.create_future()
        if self._can_start_now():
            self._start_now(fn, args, kwargs, fut)
        else:
            self._put((fn, args, kwargs, _copy_context(), fut))
        return fut

    def submit_nowait(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Like :meth:`submit` but never waits.

        Raises:
            PoolOverload: the pool is full.
            PoolClosed: the pool is stopped.
        """
        fut = self.try_submit(fn, *args, **kwargs)
        if fut is None:
            raise self._overload(count=False)  # try_submit counted the drop
        return fut

    def try_submit(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T] | None:
        """Queue the task if there is room now; else return ``None`` (pond ``TrySubmit``).

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        self._check_open()
        loop = self._bind()
        if self._limit is not None and self._decide(False) is not Admission.ACCEPT:
            self._dropped += 1
            return None
        fut: asyncio.Future[T] = loop.create_future()
        if self._can_start_now():
            self._start_now(fn, args, kwargs, fut)
        else:
            self._put((fn, args, kwargs, _copy_context(), fut))
        return fut

    async def submit_wait(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run the task on the pool and return its result (gammazero ``SubmitWait``).

        Raises:
            PoolDeadlock: called from one of this pool's own tasks.
            BaseException: whatever the task raised.
        """
        if self._in_own_task():
            raise PoolDeadlock(
                f"submit_wait() called from a task of {self._options.name}: the task "
                "would wait on its own pool; await the coroutine directly or use another pool"
            )
        return await (await self.submit(fn, *args, **kwargs))

    async def submit_before(
        self, deadline: float, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Queue the task, skipped if not started within ``deadline`` seconds.

        A skipped task's Future fails with ``PoolTimeout`` (pond v1 ``SubmitBefore``).

        ``deadline`` may be any number of seconds; ``math.inf`` never expires.

        Raises:
            ValueError: ``deadline`` negative or NaN.
        """
        seconds = check_seconds("deadline", deadline, allow_inf=True)
        check_callable("fn", fn)
        expiring = Expiring(fn, self._clock() + seconds, self._clock, seconds)
        return await self.submit(expiring, *args, **kwargs)

    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any] | AsyncIterable[Any],
        ordered: bool = True,
        buffersize: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[T]:
        """Lazily map ``fn`` over ``iterables`` (or one async iterable); ``async for`` it.

        At most ``buffersize`` tasks are in flight; the input is read as
        results are taken. Results come in input order unless ``ordered`` is
        false; ``fn``'s exception is raised at its item.

        Raises:
            ValueError: ``buffersize`` below 1, bad ``timeout``.
        """
        return async_map(self, fn, iterables, ordered, buffersize, timeout)

    def group(self, *, cancel_on_error: bool = False) -> AsyncTaskGroup[Any]:
        """An asyncio task group on this pool (see :class:`AsyncTaskGroup`)."""
        return AsyncTaskGroup(self, cancel_on_error=cancel_on_error)

    def __repr__(self) -> str:
        return describe(type(self).__name__, self.stats(), self._options.name)

    async def __aenter__(self) -> AsyncWorkerPool:
        self._bind()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    def with_worker(
        cls, factory: Callable[[], object], max_workers: int | None = None, **options: Any
    ) -> AsyncWorkerPool:
        """A pool whose workers each own an object from ``factory()`` (tunny ``Worker``).

        Tasks are called as ``fn(obj, *args, **kwargs)``; ``factory`` may be a
        coroutine function; ``obj.aclose()`` or ``obj.close()`` runs when the
        worker exits.

        Raises:
            TypeError: ``factory`` is not callable.
        """
        check_callable("factory", factory)
        return cls(max_workers, _worker_factory=factory, **options)
