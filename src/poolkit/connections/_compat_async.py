"""The asyncio half of :mod:`poolkit.connections._compat` (see there).

Each object here is the event-loop twin of the name without ``Async`` in
``_compat``; the async pool modules import this module, and their generated
sync twins import ``_compat`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from poolkit._validate import Clock
from poolkit._waits import left_until
from poolkit.connections._compat import NO_LOCK, Closes
from poolkit.connections._core import Entry
from poolkit.connections._driver import cleaner_died, cleaner_pass

__all__ = ["AsyncGate", "AsyncRunner", "async_new_lock"]


def async_new_lock() -> Any:
    """An async pool's "lock": none (the loop runs one core call at a time)."""
    return NO_LOCK


class AsyncGate:
    """A queued task's wake-up: a future, re-armed after each wake-up."""

    __slots__ = ("_fut", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._fut: asyncio.Future[None] = self._loop.create_future()

    def wake(self) -> None:
        if not self._fut.done():
            self._fut.set_result(None)

    async def wait(self, deadline: float) -> bool:
        """Wait for a wake-up, at most until ``deadline``; False if none came."""
        # No limit: no timer at all (asyncio takes huge finite ones).
        when = None if math.isinf(deadline) else self._loop.time() + deadline - time.monotonic()
        try:
            async with asyncio.timeout_at(when):
                await self._fut
        except TimeoutError:
            return False
        # A wake-up can come to nothing (another caller took the connection):
        # the next wait needs a fresh future.
        self._fut = self._loop.create_future()
        return True


async def _run_async_cleaner(ref: Callable[[], Any], wake: asyncio.Event, clock: Clock) -> None:
    """The cleaner task's body (see :func:`_run_cleaner`); ends when the pool closes."""
    try:
        while True:
            wake.clear()
            sleep = cleaner_pass(
                ref, clock, until_closed=True, failures=AsyncRunner.background_failures
            )
            if sleep is None:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await wake.wait()
    except asyncio.CancelledError:
        raise  # close() stops it
    except BaseException as exc:
        cleaner_died(ref, exc)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise  # asyncio stops the loop for these two, as it would without us


class AsyncRunner:
    """An async pool's background work: tasks on its loop (see :class:`Runner`).

    Args:
        name: the pool's name.
        lock: unused (the sync twin's condition waits on it).
        wake: the cleaner's wake-up event to share; ``None``: a new one at :meth:`bind`.
    """

    # What a connect task's failed ``create()`` or a cleaner pass may raise and
    # be logged: CancelledError (close() stops these tasks) and KeyboardInterrupt go on.
    background_failures: tuple[type[BaseException], ...] = (Exception,)

    def __init__(self, name: str, lock: Any, wake: asyncio.Event | None = None) -> None:
        self._name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake = wake
        self.cleaner: asyncio.Task[None] | None = None
        self._cleaner_claimed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creators: set[asyncio.Task[Any]] = set()
        self._drained: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on ``loop`` from now on."""
        self.loop = loop
        if self.wake is None:
            self.wake = asyncio.Event()
        self._drained = asyncio.Event()

    def claim_cleaner(self) -> bool:
        """True the first time only."""
        if self._cleaner_claimed:
            return False
        self._cleaner_claimed = True
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        loop = self.loop if self.loop is not None else asyncio.get_running_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self, target: Callable[[], Coroutine[Any, Any, None]], role: str) -> None:
        """Run ``target()`` in a task, cancelled by :meth:`stop` (connect tasks)."""
        task = self._spawn(target())
        self._creators.add(task)
        task.add_done_callback(self._creators.discard)

    def start_cleaner(self, owner: object, clock: Clock) -> None:
        """Start the task that runs ``owner.maintain()`` at each deadline."""
        if self.wake is None:
            self.wake = asyncio.Event()
        self.cleaner = self._spawn(_run_async_cleaner(weakref.ref(owner), self.wake, clock))

    def rouse(self) -> None:
        """Wake the cleaner for an earlier deadline."""
        if self.wake is not None:
            self.wake.set()

    def dropped(self, flush: Callable[[], None]) -> None:
        """A proxy was collected holding its connection: flush on the loop.

        The finalizer may run in any thread, or while the loop is in a core call.
        """
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(flush)

    def close_all(
        self,
        to_close: Closes,
        close: Callable[[Entry, str], Coroutine[Any, Any, None]],
        after: Callable[[], None],
    ) -> None:
        """Close each entry in a task of its own, never on the caller's path."""
        for entry, reason in to_close:
            self._spawn(self._close_one(close, entry, reason, after))

    async def _close_one(
        self,
        close: Callable[[Entry, str], Coroutine[Any, Any, None]],
        entry: Entry,
        reason: str,
        after: Callable[[], None],
    ) -> None:
        try:
            await close(entry, reason)
        finally:
            loop = self.loop
            if loop is not None and not loop.is_closed():
                after()

    async def sleep(self, seconds: float) -> bool:
        """A retry's backoff (close() cancels it); never True."""
        await asyncio.sleep(seconds)
        return False

    def notify_drained(self) -> None:
        """Nothing is left in use, being opened or closed."""
        if self._drained is not None:
            self._drained.set()

    def stop(self) -> None:
        """The pool is closing: cancel connect tasks (not waited for) and the cleaner."""
        for task in list(self._creators):
            task.cancel()
        if self.cleaner is not None:
            self.cleaner.cancel()

    async def wait_drained(self, drained: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``drained()`` or ``deadline``; whether it came true."""
        event = self._drained
        if event is None:
            return drained()
        try:
            async with asyncio.timeout(_timeout(deadline)):
                while not drained():
                    event.clear()
                    if drained():
                        break
                    await event.wait()
        except TimeoutError:
            return False
        return True

    async def join(self, deadline: float) -> None:
        """Wait, up to ``deadline``, for the tasks started here; cancel the rest."""
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=_timeout(deadline))
            for task in still:
                task.cancel()


def _timeout(deadline: float) -> float | None:
    """Seconds left until ``deadline`` for asyncio (``None``: no limit)."""
    return None if math.isinf(deadline) else left_until(deadline)
