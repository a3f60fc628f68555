"""An AsyncWorkerPool worker: its loop, and how it drives coroutines it did not start.

A worker (:class:`AsyncWorker`) is one asyncio Task that takes queued items
from its crew's deque and runs them itself — no Task per item (creating and
scheduling a Task costs ~6 µs). Each item's coroutine is stepped with
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
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from poolkit._errors import PoolTimeout
from poolkit._log import log
from poolkit.workers._core import Expired
from poolkit.workers._home import InEmptyContext

if TYPE_CHECKING:
    from poolkit.workers._async_crew import AsyncCrew

__all__ = ["AsyncWorker", "drive", "explain", "maybe_await", "resume"]

_LOG = logging.getLogger("poolkit.workers")
_new_context = contextvars.Context
_Coroutine = types.CoroutineType
# A context that is never empty (see AsyncWorker._loop).
_NOT_EMPTY = _new_context()
_NOT_EMPTY.run(contextvars.ContextVar[bool]("poolkit_not_empty").set, True)


class _Yield:
    """An awaitable that yields one value to the running Task, then returns."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, None]:
        yield self.value


async def drive(
    coro: Coroutine[Any, Any, Any], ctx: contextvars.Context, yielded: Any, bare: bool = False
) -> Any:
    """Run ``coro`` (which just yielded ``yielded``) to completion inside ``ctx``.

    ``bare``: ``coro`` is a worker's :func:`bare_runner`, driven until it
    hands back (``_DONE`` or a ``_Failed``, returned) instead of to its end.
    """
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
        else:
            try:
                yielded = ctx.run(send, None)
            except StopIteration as stop:
                return stop.value
        if bare and (yielded is _DONE or type(yielded) is _Failed):
            return yielded


class _Failed:
    """What the bare runner hands back when a task raised."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()  # what the bare runner hands back when a task ended


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


@types.coroutine
def bare_runner(stateless: bool, state: object) -> Generator[Any, Any, None]:
    """Run a worker's bare items one after another, each awaited natively.

    Stepping each task's coroutine from outside costs a ``StopIteration`` per
    task; this one generator per worker instead takes functions through
    ``send`` and delegates to each task's coroutine (``yield from``), handing
    ``_DONE`` or a ``_Failed`` back with a plain ``yield``: no object per
    hand-over. A task that suspends suspends it: the worker drives it
    (:func:`drive`) until it hands back. Anything but a native coroutine has
    ``send`` looked up first, so that a plain function's result fails as in
    :func:`explain`, and is awaited as ``await`` would.
    """
    out: object = _DONE
    while True:
        fn = yield out
        try:
            coro = fn() if stateless else fn(state)
            if type(coro) is not _Coroutine:
                coro.send  # noqa: B018
                # What ``await`` takes and nothing more (a generator-based
                # coroutine, an object with ``__await__``; not a plain
                # generator), through one native coroutine.
                coro = _awaited(coro)
            yield from coro  # a native coroutine: allowed in a types.coroutine generator
        except GeneratorExit:
            raise  # the runner itself is being closed (its worker is gone)
        except BaseException as exc:
            out = _Failed(exc)
            del exc
        else:
            out = _DONE
        fn = coro = None  # a finished task must not be kept alive


# What first_step returns for a coroutine that finished in its first step.
FINISHED: Any = object()


def first_step(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its first suspension: what it yielded, or :data:`FINISHED`.

    A for loop ends on the coroutine's return without a ``StopIteration``
    raised and caught in Python, which ``coro.send(None)`` costs: about a
    third of running a trivial task. The value it returned is not kept, so
    this serves tasks without a result (``go()``).
    """
    for yielded in coro.__await__():
        return yielded
    return FINISHED


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


class AsyncWorker:
    """One worker Task of an AsyncWorkerPool: its loop and how it runs an item.

    It takes items from its crew's queue and runs them itself. Per item it
    writes only the crew's counters (``pending``, and ``failed`` /
    ``cancelled`` / ``expired`` on those outcomes), on the loop thread; every
    other change goes through the crew's methods and, for decisions, the
    lifecycle core (``next_item`` asks it what a worker with nothing in hand
    does).
    """

    __slots__ = ("counted", "crew", "own_ctx")

    def __init__(self, crew: AsyncCrew, own_ctx: contextvars.Context | None = None) -> None:
        self.crew = crew
        # The context the worker's Task was created in, a copy of the pool's
        # home (None: unknown, a loop whose create_task takes no context);
        # see _loop.
        self.own_ctx = own_ctx
        # Whether the core still counts this worker in ``workers``: cleared
        # the moment the core counts it out (an exit step, or reaped while
        # parked), so a cancellation landing after that is not counted twice.
        self.counted = True

    async def run(self) -> None:
        """A worker Task: initialise, run items until told to exit, clean up."""
        # Captured now: when an abandoned pool's worker is closed by the
        # garbage collector there is no running loop to ask.
        crew = self.crew
        task = asyncio.current_task()
        state: object = None
        try:
            hooks = crew.hooks
            if hooks.initializer is not None:
                await maybe_await(hooks.initializer(*hooks.initargs))
            if hooks.factory is not None:
                state = await maybe_await(hooks.factory())
        except BaseException as exc:  # break the pool, then leave
            crew.break_(exc, f"a worker of {crew.name} failed to start: initializer raised {exc!r}")
            crew.retire(task, counted=True)
            return
        try:
            await self._loop(state)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise  # stop(timeout=) cancelling the worker, or a task's interrupt passed on
        except BaseException as exc:
            # Task failures never get here (the loop delivers them): the
            # worker itself failed. A pool quietly short of a worker could
            # leave tasks queued for ever, so it breaks, loudly.
            log(_LOG, logging.ERROR, crew.name, "a worker task died", exc_info=exc)
            crew.break_(exc, f"a worker task of {crew.name} died: {exc!r}")
        finally:
            try:
                if state is not None:
                    closer = getattr(state, "aclose", None) or getattr(state, "close", None)
                    if callable(closer):
                        await maybe_await(closer())
                if crew.hooks.finalizer is not None:
                    await maybe_await(crew.hooks.finalizer())
            except Exception as exc:
                _LOG.error("worker finalizer of %s raised", crew.name, exc_info=exc)
            finally:
                crew.retire(task, self.counted)

    async def _loop(self, state: object) -> None:
        crew = self.crew
        queue = crew.queue
        popleft = queue.popleft
        core = crew.core
        next_item = crew.next_item
        stateless = crew.hooks.factory is None
        # Where bare items (see poolkit.workers._async_crew) run: a copy of
        # the pool's home context, kept while it holds the home, so no task
        # sees another's variables and no copy is made per task. First the
        # worker Task's own context (the crew creates it as a copy of the
        # home): a bare item is awaited right here, as a worker of a
        # hand-written asyncio.Queue set would. Once anything changes it (a
        # task, the initializer, an on_error handler), and while it does
        # not hold the home, bare items go to a runner coroutine stepped
        # inside bare_ctx, itself replaced once a task changes it. With an
        # empty home (the common case) a context is at home while it is
        # empty, which needs no call to ``at_home``.
        # A worker whose Task context is unknown (own_ctx None) uses one
        # that never holds the home, so the test below sends it to the runner.
        own_ctx = self.own_ctx if self.own_ctx is not None else _NOT_EMPTY
        home_size = crew.home.size
        at_home = crew.home.holds
        home_copy = crew.home.copy
        bare_ctx = home_copy()
        empty_ctx = _new_context()
        runner = bare_runner(stateless, state)
        runner.send(None)  # to its first hand-over
        run_bare = runner.send
        item: Any
        out: Any
        coro: Any
        while True:
            if not queue or core.gate:
                if not await next_item(self):
                    return
                if not queue:
                    continue
            item = popleft()
            if type(item) is not tuple:
                if not (own_ctx or home_size) or (
                    type(item) is not InEmptyContext and at_home(own_ctx)
                ):
                    # A bare go() item (the function alone: no arguments,
                    # submitted from the pool's home context) in this
                    # Task's own context, at home now. Anything but a
                    # native coroutine has ``send`` looked up first, so
                    # that a plain function's result fails as in explain().
                    try:
                        coro = item() if stateless else item(state)
                        if type(coro) is not _Coroutine:
                            coro.send  # noqa: B018
                        await coro
                    except GeneratorExit:
                        raise  # the worker itself is being closed
                    except BaseException as exc:
                        self._failed(exc, item, None)
                        del exc
                    item = coro = None
                else:
                    # A bare go() item while this Task's context is not at
                    # home (or unknown): run by the runner in bare_ctx. A
                    # wrapped one (see InEmptyContext): its function, in
                    # empty_ctx, kept while it stays empty.
                    if type(item) is InEmptyContext:
                        item = item.args[0]
                        run_ctx = empty_ctx
                    else:
                        run_ctx = bare_ctx
                    out = run_ctx.run(run_bare, item)
                    if out is not _DONE and type(out) is not _Failed:
                        out = await drive(runner, run_ctx, out, bare=True)  # it suspended
                    if out is not _DONE:
                        self._failed(out.exc, item, None)
                    if run_ctx is empty_ctx:
                        if empty_ctx:
                            empty_ctx = _new_context()
                    elif (bare_ctx or home_size) and not at_home(bare_ctx):
                        bare_ctx = home_copy()
                    item = out = None
                pending = crew.pending - 1
                crew.pending = pending
                if not pending or crew.room:
                    crew.finished_slow()
                continue
            fn, args, kwargs, ctx, fut = item
            item = None
            if fut is None:
                # Fast path: a go() item. Most cheap coroutines finish in one step.
                try:
                    coro = fn(*args, **kwargs) if stateless else fn(state, *args, **kwargs)
                    if type(coro) is _Coroutine:
                        yielded = ctx.run(first_step, coro)
                    else:
                        yielded = ctx.run(coro.send, None)  # explain() names a non-coroutine
                except StopIteration:
                    pass  # successes are derived in stats()
                except BaseException as exc:
                    self._failed(exc, fn, None)
                    del exc
                else:
                    if yielded is not FINISHED:
                        try:
                            await drive(coro, ctx, yielded)
                        except BaseException as exc:
                            self._failed(exc, fn, None)
                            del exc
                    yielded = None
            elif fut.done():  # cancelled while queued
                crew.cancelled += 1
                if fn is resume:  # an eager start that suspended: end it properly
                    coro, inner_ctx, _yielded = args
                    inner_ctx.run(coro.close)
            else:
                await self._run_with_future(fn, args, kwargs, ctx, fut, state, stateless)
            # Drop references now: a finished task's callable, arguments and
            # coroutine must not be kept alive by an idle worker.
            fn = args = kwargs = ctx = fut = coro = None
            crew.pending -= 1
            if crew.room or not crew.pending:
                crew.finished_slow()

    async def _run_with_future(
        self,
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
                result = await self._drive_cancellable(task, coro, ctx, yielded, fut)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and fut.cancelled():
                self.crew.cancelled += 1  # cancelled through its Future while running
            else:
                self._failed(exc, fn, fut)
        else:
            # The Future may have been cancelled meanwhile (its awaiter was).
            if not fut.done():
                fut.set_result(result)

    async def _drive_cancellable(
        self,
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

        1. the done-callback runs later, from the loop: by then the worker
           may be on another item, so it only acts while ``running[task]``
           is ``fut``;
        2. the worker Task's cancel request is withdrawn (``uncancel``) once
           the coroutine has ended, so the worker itself is not left cancelled.
        """
        if task is None:
            return await drive(coro, ctx, yielded)
        running = self.crew.running
        requested = self.crew.cancel_requested

        def on_done(done: asyncio.Future[Any]) -> None:
            if done.cancelled() and running.get(task) is done:
                running[task] = None  # cancel once
                requested.add(task)
                task.cancel()

        running[task] = fut
        fut.add_done_callback(on_done)
        try:
            return await drive(coro, ctx, yielded)
        finally:
            running.pop(task, None)
            fut.remove_done_callback(on_done)
            if task in requested:
                requested.discard(task)
                task.uncancel()

    def _failed(self, exc: BaseException, fn: Any, fut: asyncio.Future[Any] | None) -> None:
        """Count and deliver a failure; re-raise what must stop the worker."""
        crew = self.crew
        exc = explain(exc, fn)
        if isinstance(exc, Expired):
            crew.expired += 1
            if fut is not None and not fut.done():
                fut.set_exception(PoolTimeout(f"task {fn!r} was not started within its deadline"))
            return
        crew.failed += 1
        if fut is None:
            crew.report(exc, fn)
        elif not fut.done():
            fut.set_exception(exc)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            crew.pending -= 1
            crew.finished_slow()
            raise exc
