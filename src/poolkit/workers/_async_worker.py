"""The asyncio side of AsyncWorkerPool: the worker loop and the coroutine driver.

A worker is one asyncio Task that takes queued items from a deque and runs
them itself — no Task per item (creating and scheduling a Task costs ~6 µs,
anchors/workers.md §5.4). Each item's coroutine is stepped with
``context.run(coro.send, None)`` so it runs in the submitter's context (as
``asyncio.to_thread`` and ``create_task`` give it); a coroutine that finishes
without suspending (the common cheap case) costs one ``send``. When it does
suspend, :func:`drive` hands whatever it yielded (a Future, or ``None`` for a
bare yield) to the worker's own Task through :class:`_Yield`, exactly as if
the coroutine were the Task's own; the Task's cancellation is thrown back in.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from poolkit._errors import PoolTimeout
from poolkit.workers._core import Expired

if TYPE_CHECKING:
    from poolkit.workers._async_base import AsyncPoolState as AsyncWorkerPool

__all__ = ["drive", "resume", "run_worker"]

_LOG = logging.getLogger("poolkit.workers")


class _Yield:
    """An awaitable that yields one value to the running Task, then returns."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, None]:
        yield self.value


async def drive(coro: Coroutine[Any, Any, Any], ctx: contextvars.Context, yielded: Any) -> Any:
    """Run ``coro`` (which just yielded ``yielded``) to completion inside ``ctx``."""
    send = coro.send
    throw = coro.throw
    while True:
        try:
            await _Yield(yielded)
        except BaseException as exc:  # cancellation, or a bad yield: the coroutine decides
            try:
                yielded = ctx.run(throw, exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = ctx.run(send, None)
        except StopIteration as stop:
            return stop.value


async def resume(coro: Coroutine[Any, Any, Any], ctx: contextvars.Context, yielded: Any) -> Any:
    """Finish a task that an eager start began and that suspended (see ``_start_now``)."""
    return await drive(coro, ctx, yielded)


async def run_worker(pool: AsyncWorkerPool) -> None:
    """A worker Task: initialise, run items until told to exit, clean up."""
    # Captured now: when an abandoned pool's worker is closed by the garbage
    # collector there is no running loop to ask.
    task = asyncio.current_task()
    state: object = None
    try:
        if pool._initializer is not None:
            await _maybe_await(pool._initializer(*pool._initargs))
        if pool._worker_factory is not None:
            state = await _maybe_await(pool._worker_factory())
    except BaseException as exc:  # break the pool, then leave
        pool._break(
            exc,
            f"a worker of {pool._options.name} failed to start: initializer raised {exc!r}",
        )
        pool._retire(task, counted=True)
        return
    counted = True
    try:
        await _loop(pool, state)
        counted = False  # the loop returns only after _next_item took us out
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise  # stop(timeout=) cancelling the worker, or a task's interrupt passed on
    except BaseException as exc:
        # Task failures never get here (the loop delivers them): the worker
        # itself failed. A pool quietly short of a worker could leave tasks
        # queued for ever, so it breaks, loudly.
        _LOG.error("a worker task of %s died", pool._options.name, exc_info=exc)
        pool._break(exc, f"a worker task of {pool._options.name} died: {exc!r}")
    finally:
        try:
            if state is not None:
                closer = getattr(state, "aclose", None) or getattr(state, "close", None)
                if callable(closer):
                    await _maybe_await(closer())
            if pool._finalizer is not None:
                await _maybe_await(pool._finalizer())
        except Exception as exc:
            _LOG.error("worker finalizer of %s raised", pool._options.name, exc_info=exc)
        finally:
            pool._retire(task, counted)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


async def _loop(pool: AsyncWorkerPool, state: object) -> None:
    queue = pool._queue
    popleft = queue.popleft
    stateless = pool._worker_factory is None
    while True:
        if (not queue or pool._gate) and not await pool._next_item():
            return
        if not queue:
            continue
        fn, args, kwargs, ctx, fut = popleft()
        if fut is None:
            # Fast path: a go() item. Most cheap coroutines finish in one send.
            try:
                coro = fn(*args, **kwargs) if stateless else fn(state, *args, **kwargs)
                yielded = ctx.run(coro.send, None)
            except StopIteration:
                pass  # successes are derived in stats()
            except BaseException as exc:
                _failed(pool, exc, fn, None)
                del exc
            else:
                try:
                    await drive(coro, ctx, yielded)
                except BaseException as exc:
                    _failed(pool, exc, fn, None)
                    del exc
                yielded = None
        elif fut.done():  # cancelled while queued
            pool._cancelled += 1
            if fn is resume:  # an eager start that suspended: end it properly
                coro, inner_ctx, _yielded = args
                inner_ctx.run(coro.close)
        else:
            await _run_with_future(pool, fn, args, kwargs, ctx, fut, state, stateless)
        # Drop references now: a finished task's callable, arguments and
        # coroutine must not be kept alive by an idle worker.
        fn = args = kwargs = ctx = fut = coro = None
        pool._pending -= 1
        if pool._room or not pool._pending:
            pool._finished_slow()


async def _run_with_future(
    pool: AsyncWorkerPool,
    fn: Any,
    args: Any,
    kwargs: Any,
    ctx: contextvars.Context,
    fut: asyncio.Future[Any],
    state: object,
    stateless: bool,
) -> None:
    task = asyncio.current_task()
    try:
        coro = fn(*args, **kwargs) if stateless else fn(state, *args, **kwargs)
        try:
            yielded = ctx.run(coro.send, None)
        except StopIteration as stop:
            result = stop.value
        else:
            result = await _drive_cancellable(pool, task, coro, ctx, yielded, fut)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and fut.cancelled():
            pool._cancelled += 1  # cancelled through its Future while running
        else:
            _failed(pool, exc, fn, fut)
    else:
        # The Future may have been cancelled meanwhile (its awaiter was).
        if not fut.done():
            fut.set_result(result)


async def _drive_cancellable(
    pool: AsyncWorkerPool,
    task: asyncio.Task[Any] | None,
    coro: Coroutine[Any, Any, Any],
    ctx: contextvars.Context,
    yielded: Any,
    fut: asyncio.Future[Any],
) -> Any:
    """Drive a suspended task whose Future, if cancelled, cancels the task itself.

    Cancelling the Future cancels this worker's Task, which throws
    ``CancelledError`` into the task's coroutine at its await point (as
    cancelling an asyncio Task would). Races handled:

    1. the done-callback runs later, from the loop: by then the worker may be
       on another item, so it only acts while ``_running[task]`` is ``fut``;
    2. the worker Task's cancel request is withdrawn (``uncancel``) once the
       coroutine has ended, so the worker itself is not left cancelled.
    """
    if task is None:
        return await drive(coro, ctx, yielded)
    running = pool._running

    def on_done(done: asyncio.Future[Any]) -> None:
        if done.cancelled() and running.get(task) is done:
            running[task] = None  # cancel once
            pool._cancel_requested.add(task)
            task.cancel()

    running[task] = fut
    fut.add_done_callback(on_done)
    try:
        return await drive(coro, ctx, yielded)
    finally:
        running.pop(task, None)
        fut.remove_done_callback(on_done)
        if task in pool._cancel_requested:
            pool._cancel_requested.discard(task)
            task.uncancel()


def explain(exc: BaseException, fn: Any) -> BaseException:
    """``exc``, or a clear ``TypeError`` if ``fn`` returned something not a coroutine.

    The pool steps what ``fn`` returned with ``.send``: for a plain function
    that fails with an ``AttributeError`` raised in the pool's own frame
    (the traceback has no deeper entry), which says nothing useful.
    """
    tb = exc.__traceback__
    if (
        isinstance(exc, AttributeError)
        and exc.name == "send"
        and tb is not None
        and tb.tb_next is None
    ):
        error = TypeError(
            f"fn must be a coroutine function (async def) or return a coroutine; "
            f"{fn!r} returned {type(exc.obj).__name__}: run plain functions on a "
            "WorkerPool or with asyncio.to_thread"
        )
        error.__suppress_context__ = True
        return error
    return exc


def _failed(
    pool: AsyncWorkerPool, exc: BaseException, fn: Any, fut: asyncio.Future[Any] | None
) -> None:
    """Count and deliver a failure; re-raise what must stop the worker."""
    exc = explain(exc, fn)
    if isinstance(exc, Expired):
        pool._expired += 1
        if fut is not None and not fut.done():
            fut.set_exception(PoolTimeout(f"task {fn!r} was not started within its deadline"))
        return
    pool._failed += 1
    if fut is None:
        pool._report(exc, fn)
    elif not fut.done():
        fut.set_exception(exc)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        pool._pending -= 1
        pool._finished_slow()
        raise exc
