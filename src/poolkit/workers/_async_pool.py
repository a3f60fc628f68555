"""AsyncWorkerPool: asyncio worker tasks with WorkerPool's options and vocabulary.

``AsyncWorkerPool`` is the driver: it holds a lifecycle core
(:class:`~poolkit.workers._lifecycle.Lifecycle`, every decision) and a crew
of worker tasks (:class:`~poolkit.workers._async_crew.AsyncCrew`, the queue
and the workers that act on the core's decisions). Everything runs on the
pool's event loop (the loop of first use), so nothing takes a lock. The
submission fast path reads plain attributes of the crew and the core.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import math
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack, overload

from poolkit import _fork, _registry
from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._typing import Result
from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_optional_seconds,
    check_seconds,
)
from poolkit.workers._async_crew import AsyncCrew
from poolkit.workers._async_group import AsyncTaskGroup
from poolkit.workers._async_map import async_map
from poolkit.workers._async_subpool import AsyncSubpool
from poolkit.workers._core import (
    DEFAULT_IDLE_TIMEOUT,
    Admission,
    ErrorHandler,
    Expiring,
    PoolOptions,
    WorkerHooks,
    WorkerPoolStats,
    stop_mode,
)
from poolkit.workers._group import CancelToken, GroupCore
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._timing import TaskTimings
from poolkit.workers._verbs import CoreViews, with_worker

__all__ = ["AsyncWorkerPool"]

T = TypeVar("T")
P = ParamSpec("P")
A1 = TypeVar("A1")
A2 = TypeVar("A2")
A3 = TypeVar("A3")


class AsyncMapOptions(TypedDict, total=False):
    """The keywords of :meth:`AsyncWorkerPool.map` (for type checkers: a typo is an error)."""

    ordered: bool
    buffersize: int | None
    timeout: float | None
    progress: bool


_copy_context = contextvars.copy_context
_get_ident = threading.get_ident


class AsyncWorkerPool(CoreViews):
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

    Shut it down with :meth:`aclose` (stop taking tasks, finish the queued
    ones, wait for the workers), ``async with`` (the same on exit), or
    :meth:`stop` for the other modes.

    ``eager=True`` runs a task's first step in the caller when a worker slot
    is free (off by default): that step runs as the *caller's* asyncio task,
    so ``asyncio.timeout()``, ``TaskGroup`` or ``current_task()`` entered in
    it would act on the caller (a timeout that expires after the task
    suspended cancels the caller). Turn it on only for coroutines that use
    none of them before their first ``await``.

    ``timings=True`` records each task's ``queue_wait`` and ``run_time`` in
    :meth:`stats`, as for :class:`WorkerPool` (an eagerly started task
    waited 0 s); off by default.

    Raises:
        TypeError, ValueError: a bad option (the message names it).
    """

    # Each worker's with_worker() object factory; set on the instance by
    # with_worker before __init__ runs, never by a caller.
    _factory: Callable[[], object] | None = None

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int = 0,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        queue_size: int | None = None,
        nonblocking: bool = False,
        max_blocking: int | None = None,
        on_error: ErrorHandler | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        finalizer: Callable[[], object] | None = None,
        name: str | None = None,
        clock: Clock = time.monotonic,
        eager: bool = False,
        timings: bool = False,
    ) -> None:
        options = PoolOptions.build(
            max_workers=100 if max_workers is None else max_workers,
            min_workers=min_workers,
            idle_timeout=idle_timeout,
            queue_size=queue_size,
            nonblocking=nonblocking,
            max_blocking=max_blocking,
            on_error=on_error,
            name=_registry.name_for(self, name),
        )
        hooks = WorkerHooks.build(initializer, initargs, finalizer, self._factory)
        self._clock = check_callable("clock", clock)
        check_bool("eager", eager)
        self._core = Lifecycle(options)
        self._crew = AsyncCrew(
            self._core,
            hooks=hooks,
            clock=self._clock,
            eager=eager,
            timings=TaskTimings() if check_bool("timings", timings) else None,
        )
        # For go()'s fast path (see poolkit.workers._home).
        self._home_size = self._crew.home.size
        self._at_home = self._crew.home.holds
        self._in_empty = self._crew.home.in_empty
        _fork.track(self)
        _registry.add(self)

    def go_nowait(
        self, fn: Callable[P, Awaitable[object]], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Queue ``fn(*args, **kwargs)`` without waiting; no result handle.

        Failures go to ``on_error``. Must be called on the pool's loop.

        Raises:
            PoolClosed: the pool is stopped.
            PoolOverload: the pool is full (it never waits).
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            check_callable("fn", fn)  # type: ignore[unreachable]
        crew = self._crew
        if (
            crew.eager_ready
            and not crew.queue
            and crew.pending < crew.max_workers
            and not crew.eager_depth
        ):
            crew.start_now(fn, args, kwargs, None)
            return
        core = self._core
        if core.closed:
            core.check_open()
        if crew.loop is None:
            crew.bind()
        if crew.bounded and crew.decide(False) is not Admission.ACCEPT:
            raise crew.overload()
        if crew.can_start_now():
            crew.start_now(fn, args, kwargs, None)
        else:
            crew.put((fn, args, kwargs, _copy_context(), None))

    def go(
        self, fn: Callable[P, Awaitable[object]], /, *args: P.args, **kwargs: P.kwargs
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
        crew = self._crew
        loop = crew.direct_loop
        if loop is not None and loop._thread_id == _get_ident():
            # The default pool's fast path, open pools only (sync_gate clears
            # direct_loop on close): straight to the queue (see put).
            ctx = _copy_context()
            # From the pool's home context, a task without arguments is
            # queued as the bare function (see poolkit.workers._async_crew):
            # nothing is kept per task. An empty context is at home in an
            # empty home; in one holding variables, the function goes in a
            # wrapper reused while a task holds it (see InEmptyContext).
            if args or kwargs:
                crew.queue.append((fn, args, kwargs, ctx, None))
            elif not ctx:
                crew.queue.append(self._in_empty(fn) if self._home_size else fn)
            elif self._home_size and self._at_home(ctx):
                crew.queue.append(fn)
            else:
                crew.queue.append((fn, args, kwargs, ctx, None))
            crew.submitted += 1
            crew.pending += 1
            if crew.wake:
                crew.dispatch()
            return crew.accepted
        if (
            crew.eager_ready
            and not crew.queue
            and crew.pending < crew.max_workers
            and not crew.eager_depth
        ):
            crew.start_now(fn, args, kwargs, None)
            return crew.accepted
        core = self._core
        if core.closed:
            core.check_open()
        if crew.loop is None:
            crew.bind()
        if crew.bounded:
            decision = crew.decide(True)
            if decision is Admission.OVERLOAD:
                raise crew.overload()
            if decision is Admission.WAIT:
                if crew.in_own_task():
                    raise core.intake.deadlock(crew.pending)
                return self._go_when_admitted(fn, args, kwargs)
        if crew.can_start_now():
            crew.start_now(fn, args, kwargs, None)
        else:
            crew.put((fn, args, kwargs, _copy_context(), None))
        return crew.accepted

    async def _go_when_admitted(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        await self._crew.admit()
        self._crew.put((fn, args, kwargs, _copy_context(), None))

    async def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
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
        crew = self._crew
        self._core.check_open()
        loop = crew.bind()
        if crew.bounded:
            await crew.admit()
        fut: asyncio.Future[T] = loop.create_future()
        if crew.can_start_now():
            crew.start_now(fn, args, kwargs, fut)
        else:
            crew.put((fn, args, kwargs, _copy_context(), fut))
        return fut

    def submit_nowait(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Like :meth:`submit` but never waits.

        Raises:
            PoolOverload: the pool is full.
            PoolClosed: the pool is stopped.
        """
        fut = self.try_submit(fn, *args, **kwargs)
        if fut is None:
            raise self._crew.overload(count=False)  # try_submit counted the drop
        return fut

    def try_submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T] | None:
        """Queue the task if there is room now; else return ``None`` (pond ``TrySubmit``).

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        crew = self._crew
        self._core.check_open()
        loop = crew.bind()
        if crew.bounded and crew.decide(False) is not Admission.ACCEPT:
            self._core.intake.count_drop()
            return None
        fut: asyncio.Future[T] = loop.create_future()
        if crew.can_start_now():
            crew.start_now(fn, args, kwargs, fut)
        else:
            crew.put((fn, args, kwargs, _copy_context(), fut))
        return fut

    async def submit_wait(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run the task on the pool and return its result (gammazero ``SubmitWait``).

        Raises:
            PoolDeadlock: called from one of this pool's own tasks.
            BaseException: whatever the task raised.
        """
        if self._crew.in_own_task():
            raise PoolDeadlock(
                f"submit_wait() called from a task of {self._core.name}: the task "
                "would wait on its own pool; await the coroutine directly or use another pool"
            )
        return await (await self.submit(fn, *args, **kwargs))

    async def submit_before(
        self, deadline: float, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
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

    # One to three iterables: each item's type is checked against fn's
    # parameter (as for builtins.map); more take any iterables.
    @overload
    def map(
        self,
        fn: Callable[[A1], Awaitable[T]],
        it1: Iterable[A1] | AsyncIterable[A1],
        /,
        **options: Unpack[AsyncMapOptions],
    ) -> AsyncIterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[[A1, A2], Awaitable[T]],
        it1: Iterable[A1],
        it2: Iterable[A2],
        /,
        **options: Unpack[AsyncMapOptions],
    ) -> AsyncIterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[[A1, A2, A3], Awaitable[T]],
        it1: Iterable[A1],
        it2: Iterable[A2],
        it3: Iterable[A3],
        /,
        **options: Unpack[AsyncMapOptions],
    ) -> AsyncIterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        it1: Iterable[Any],
        it2: Iterable[Any],
        it3: Iterable[Any],
        it4: Iterable[Any],
        /,
        *iterables: Iterable[Any],
        **options: Unpack[AsyncMapOptions],
    ) -> AsyncIterator[T]: ...
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any] | AsyncIterable[Any],
        ordered: bool = True,
        buffersize: int | None = None,
        timeout: float | None = None,
        progress: bool = False,
    ) -> AsyncIterator[T]:
        """Lazily map ``fn`` over ``iterables`` (or one async iterable); ``async for`` it.

        At most ``buffersize`` tasks are in flight (default 4 × max_workers,
        at least 16; at most ``queue_size`` on a bounded pool, so the map's
        own tasks never fill it); the input is read as results are taken.
        Results come in input order unless ``ordered`` is false; ``fn``'s
        exception is raised at its item. ``progress=True`` draws a progress
        bar as :meth:`WorkerPool.map` does (tqdm if installed, else poolkit's
        own line, which needs inputs with a length).

        Raises:
            TypeError: a flag is not a bool, no iterable, or an async iterable
                mixed with others.
            ValueError: ``buffersize`` below 1, bad ``timeout``.
            RuntimeError: when iterated, ``progress=True`` without tqdm on an
                input of unknown length.
        """
        return async_map(self, fn, iterables, ordered, buffersize, timeout, progress)

    def group(
        self, *, cancel_on_error: bool = False, parent: CancelToken | GroupCore | None = None
    ) -> AsyncTaskGroup[Result]:
        """An asyncio task group on this pool (see :class:`AsyncTaskGroup`).

        Args:
            cancel_on_error: the first failure cancels the group's other tasks.
            parent: a :class:`~poolkit.CancelToken` or another group: cancelling
                it cancels this group (pond ``NewGroupContext(ctx)``).
        """
        return AsyncTaskGroup(self, cancel_on_error=cancel_on_error, parent=parent)

    def subpool(self, max_concurrency: int, *, queue_size: int | None = None) -> AsyncSubpool:
        """A view of this pool with its own concurrency limit (pond v2 ``NewSubpool``).

        The asyncio twin of ``WorkerPool.subpool`` (see
        :class:`~poolkit.workers.AsyncSubpool`).

        Raises:
            TypeError: an argument is not an int.
            ValueError: ``max_concurrency`` below 1 or above ``max_workers``;
                ``queue_size`` below 0.
        """
        return AsyncSubpool(self, max_concurrency, queue_size=queue_size)

    def _report(self, exc: BaseException, fn: object) -> None:
        """A subpool's fire-and-forget failure: this pool's ``on_error``."""
        self._crew.report(exc, fn)

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without stopping.

        ``timeout`` may be any number of seconds; ``None`` or ``math.inf``
        waits without limit.

        Raises:
            PoolTimeout: not idle within ``timeout`` seconds.
            PoolDeadlock: called from one of this pool's tasks.
        """
        seconds = _no_inf(check_optional_seconds("timeout", timeout, allow_inf=True))
        crew = self._crew
        if self._core.intake.settled(crew.pending):
            return
        loop = crew.bind()
        if crew.in_own_task():
            raise PoolDeadlock(
                f"wait() called from a task of {self._core.name}: it would wait for itself"
            )
        waiter = crew.idle_waiter(loop)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), seconds)
        except TimeoutError:
            raise PoolTimeout(
                f"{self._core.name} still had work after {seconds} s "
                f"({len(crew.queue)} queued); raise timeout"
            ) from None
        finally:
            crew.forget_idle_waiter(waiter)

    def pause(self) -> None:
        """Stop starting queued tasks until :meth:`resume` (gammazero ``Pause``)."""
        self._core.pause()
        self._crew.sync_gate()

    def resume(self) -> None:
        """Start queued tasks again."""
        self._core.resume()
        self._crew.resumed()

    def resize(self, max_workers: int | None = None, min_workers: int | None = None) -> None:
        """Change the worker bounds (ants ``Tune``, pond ``Resize``).

        Growing starts workers for queued tasks and wakes blocked submitters;
        shrinking lets surplus workers finish their task and exit.

        Raises:
            PoolClosed: the pool is stopped.
            ValueError: bad bounds (the message names the argument).
        """
        self._crew.resize(max_workers, min_workers)

    async def stop(
        self,
        wait: bool = True,
        cancel_pending: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Stop the pool; same modes as ``WorkerPool.stop``.

        ``stop()`` drains queued tasks and waits; ``stop(wait=False)`` cancels
        queued ones and returns; after ``timeout`` the running tasks are
        cancelled (unlike threads, coroutines can be) and ``PoolTimeout`` is
        raised. After a stop that waited no worker task is left.

        ``timeout`` may be any number of seconds; ``None`` or ``math.inf``
        waits without limit.

        Raises:
            TypeError: ``wait`` or ``cancel_pending`` is not a bool.
            PoolTimeout: tasks still running after ``timeout`` (now cancelled).
            PoolDeadlock: ``wait`` requested from one of this pool's tasks.
        """
        cancel, seconds = stop_mode(wait, cancel_pending, timeout)
        crew = self._crew
        if wait and crew.in_own_task():
            raise PoolDeadlock(
                f"stop(wait=True) called from a task of {self._core.name}; "
                "use stop(wait=False) inside tasks"
            )
        crew.close(cancel)
        if wait:
            await crew.join(_no_inf(seconds))

    async def aclose(self, timeout: float | None = None) -> None:
        """Shut down: stop taking tasks, finish the queued ones, wait for the workers.

        The same as ``await stop()`` (and as leaving an ``async with`` block):
        every task submitted before the call runs; when it returns no worker
        task of the pool is left. Closing twice is harmless.

        Args:
            timeout: most seconds to wait, any size (``None`` or ``math.inf``:
                no limit); then the running tasks are cancelled and
                ``PoolTimeout`` is raised.

        Raises:
            PoolTimeout: tasks still running after ``timeout`` (now cancelled).
            PoolDeadlock: called from one of this pool's own tasks.
        """
        await self.stop(wait=True, timeout=timeout)

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters (and timings, if on)."""
        stats = self._crew.stats()
        if self._crew.timings is None:
            return stats
        queue_wait, run_time = self._crew.timings.snapshot()
        return dataclasses.replace(stats, queue_wait=queue_wait, run_time=run_time)

    def _in_own_task(self) -> bool:
        """Whether the caller is one of this pool's tasks (groups refuse to wait there)."""
        return self._crew.in_own_task()

    def _after_fork_in_child(self) -> None:
        """Break the pool in a forked child: its loop and workers stay in the parent."""
        self._crew.after_fork_in_child()

    async def __aenter__(self) -> AsyncWorkerPool:
        self._crew.bind()
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
        return with_worker(cls, factory, max_workers, options)


def _no_inf(seconds: float | None) -> float | None:
    """``None`` for ``math.inf``: asyncio's timeouts spell "no limit" that way.

    Finite values of any size are fine as they are: the event loop caps each
    select() wait at a day and re-checks its timers.
    """
    return None if seconds == math.inf else seconds
