"""Interruptible jobs: tunny's ``Interrupt()`` and ``BlockUntilReady()`` for thread workers.

A thread cannot be killed: Python has no safe way to stop one from outside
(``PyThreadState_SetAsyncExc`` cannot break out of a blocking call and may
land in any ``finally``). So a job that must stop when its caller gives up
(a timeout, a cancellation) is stopped by cooperation, in two ways the pool
drives for it:

- its **cancel token** (:func:`current_token` inside the job) is cancelled:
  a loop checks ``token.cancelled`` or ``token.raise_if_cancelled()``, a wait
  uses ``token.wait(timeout)``;
- the stateful worker it runs on gets ``interrupt()`` called, from the
  caller's thread (tunny's ``Worker.Interrupt``): close the socket the job
  blocks on, cancel the query, set the event it waits for.

Before each job a stateful worker's ``ready()`` runs on its thread (tunny's
``BlockUntilReady``): after an interrupted job it can restore its state (a
fresh connection, a cleared flag) before the next job starts.

On asyncio (:class:`AsyncJob`, ``AsyncFuncPool``) the running coroutine is
also cancelled at its await point, and ``ready()`` may be a coroutine.

For work that must be killed rather than asked, use
:class:`~poolkit.ProcessPool`: its ``timeout=`` kills the worker process.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any

from poolkit._errors import PoolTimeout
from poolkit.workers._group import CancelToken, TaskCancelled

__all__ = ["AsyncJob", "Job", "check_cancel", "current_token", "give_up_reason"]

_TOKEN: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar(
    "poolkit_job_token", default=None
)


def current_token() -> CancelToken | None:
    """The cancel token of the job running in this thread (``None`` outside one).

    Cancelled when the caller of ``FuncPool.process`` times out or its
    ``cancel=`` token fires: poll it, or wait on it, to give up early.
    """
    return _TOKEN.get()


def check_cancel(cancel: object) -> None:
    """Validate ``process()``'s ``cancel=``.

    Raises:
        TypeError: not a :class:`~poolkit.CancelToken` (nor ``None``).
    """
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel must be a CancelToken, got {type(cancel).__name__}")


def give_up_reason(
    fn: object, arg: object, cancel: CancelToken | None, seconds: float | None
) -> BaseException:
    """What ``process()`` raises when it gives up: the token's cancel, or the timeout."""
    if cancel is not None and cancel.cancelled:
        return TaskCancelled(
            f"{fn!r}({arg!r}) was cancelled by its caller's token ({cancel.reason!r})"
        )
    return PoolTimeout(f"{fn!r}({arg!r}) gave no result within {seconds} s; raise timeout")


def _hook(state: object, name: str) -> Callable[[], object] | None:
    method = getattr(state, name, None)
    return method if callable(method) else None


class Job:
    """One call of ``fn`` that its caller can interrupt.

    Called by a worker as ``job(state, *args)`` (stateful) or ``job(*args)``.
    """

    __slots__ = ("_fn", "_lock", "_running_on", "_stateful", "interrupted", "token")

    def __init__(self, fn: Callable[..., Any], *, stateful: bool) -> None:
        self._fn = fn
        self._stateful = stateful
        self._lock = threading.Lock()
        # The worker object while the job runs (None: not running, or stateless).
        self._running_on: object = None
        self.interrupted = False
        self.token = CancelToken()

    def __call__(self, *args: Any) -> Any:
        state = args[0] if self._stateful else None
        if state is not None:
            ready = _hook(state, "ready")
            if ready is not None:
                ready()  # tunny's BlockUntilReady, on the worker's thread
        with self._lock:
            if self.token.cancelled:
                raise TaskCancelled("the caller gave up before the job started")
            self._running_on = state
        reset = _TOKEN.set(self.token)
        try:
            return self._fn(*args)
        finally:
            _TOKEN.reset(reset)
            with self._lock:
                self._running_on = None

    def interrupt(self, reason: BaseException) -> object:
        """Cancel the job's token and call its worker's ``interrupt()``, if it runs.

        The worker's ``interrupt()`` runs in the caller's thread (task), while
        the job still runs on the worker's: on threads it must be safe to call
        from another thread. An exception from it is raised here.

        Returns:
            What ``interrupt()`` returned (an awaitable for an async worker's).
        """
        with self._lock:
            self.token.cancel(reason)
            state = self._running_on
        if state is None:
            return None
        interrupt = _hook(state, "interrupt")
        if interrupt is None:
            return None
        self.interrupted = True
        return interrupt()

    def __repr__(self) -> str:
        return f"<Job {self._fn!r}>"


class AsyncJob(Job):
    """The asyncio twin of :class:`Job`: ``ready()`` (sync or async) is awaited
    before the job, and the job's coroutine runs with its token current."""

    __slots__ = ()

    async def run(self, *args: Any) -> Any:
        """The coroutine function the pool runs: ``job.run(state, *args)`` or ``job.run(*args)``."""
        state = args[0] if self._stateful else None
        if state is not None:
            ready = _hook(state, "ready")
            if ready is not None:
                result = ready()
                if inspect.isawaitable(result):
                    await result
        if self.token.cancelled:
            raise TaskCancelled("the caller gave up before the job started")
        self._running_on = state
        reset = _TOKEN.set(self.token)
        try:
            return await self._fn(*args)
        finally:
            _TOKEN.reset(reset)
            self._running_on = None
