"""How an AsyncWorkerPool worker runs a coroutine it did not create as a Task.

A worker is one asyncio Task that takes queued items from a deque and runs
them itself — no Task per item (creating and scheduling a Task costs ~6 µs).
Each item's coroutine is stepped with
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
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["drive", "explain", "maybe_await", "resume"]


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


async def maybe_await(value: Any) -> Any:
    """``await value`` if it is a coroutine or Future, else ``value`` (sync or async hooks)."""
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


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
