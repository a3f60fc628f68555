"""What really differs between the two worlds of the connection pools.

The async modules of this package are the source of their sync twins
(``scripts/gen_sync.py`` renames ``AsyncX`` to ``X`` and ``async_x`` to ``x``):
each ``Async`` object here has a twin without the prefix, with the same
methods, for threads. Only the pieces that cannot be written once live here:

- the lock: a ``threading.Lock`` shared by a pool's threads, none on the loop
  (a core call without an ``await`` inside is atomic there);
- a waiter's wake-up (:class:`Gate`): a pre-acquired lock released by the
  waker, or a future the waker resolves;
- background work (:class:`Runner`): connect and cleaner threads, closes made
  inline, or tasks on the pool's loop, closes made in tasks of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from poolkit._validate import Clock
from poolkit._waits import join_thread, left_until, slice_of
from poolkit._waits import wait_for as condition_wait_for
from poolkit.connections._core import Entry
from poolkit.connections._driver import cleaner_died, logger, next_sleep

__all__ = ["NO_LOCK", "AsyncGate", "AsyncRunner", "Gate", "Runner", "async_new_lock", "new_lock"]

# A pool's entries to close, each with the reason (the core's outbox).
Closes = list[tuple[Entry, str]]


class _NoLock:
    """A stand-in for a lock where none is needed (on the event loop)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


NO_LOCK: Any = _NoLock()


def new_lock() -> Any:
    """The lock around a sync pool's core calls."""
    return threading.Lock()


def async_new_lock() -> Any:
    """An async pool's "lock": none (the loop runs one core call at a time)."""
    return NO_LOCK


# -- a waiter's wake-up --------------------------------------------------------


class Gate:
    """A queued thread's wake-up: a lock held until :meth:`wake` releases it."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        # close() may fail a waiter that a return woke a moment before: one
        # release is enough, a second would raise in the waker.
        with contextlib.suppress(RuntimeError):
            self._lock.release()

    def wait(self, deadline: float) -> bool:
        """Wait for a wake-up, at most until ``deadline``; False if none came.

        One slice at a time: ``Lock.acquire`` refuses timeouts past
        ``threading.TIMEOUT_MAX`` (``acquire(timeout=1e10)``), so a False
        return before the deadline means "wait again".
        """
        return self._lock.acquire(timeout=slice_of(left_until(deadline)))


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


# -- background work -------------------------------------------------------------


def _stop_cleaner(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


def _run_cleaner(
    ref: Callable[[], Any], stop: threading.Event, wake: threading.Event, clock: Clock
) -> None:
    """A cleaner thread's body: ``maintain()`` at each deadline until stopped.

    It holds the pool only through the weak reference ``ref`` (and only during a
    pass), so a pool dropped without ``close()`` is still collected and its
    cleaner ends instead of living forever. A failed pass (a warning turned
    into an error by a filter) is logged and the cleaner goes on; if the
    cleaner itself dies, for any reason, the pool is broken (``_break``):
    ``acquire()`` raises :class:`~poolkit.PoolBroken` instead of serving from
    a pool whose idle expiry, leak warnings and ``min_size`` top-up stopped.
    """
    try:
        while not stop.is_set():
            wake.clear()
            pool = ref()
            if pool is None:
                return
            try:
                next_wake = pool.maintain()
            except Exception:  # a warning turned error by a filter, a hook
                logger.exception("connection pool cleaner pass failed")
                next_wake = math.inf
            del pool
            wake.wait(next_sleep(next_wake, clock))
    except BaseException as exc:
        # No caller to raise to in this thread: the pool carries the cause.
        cleaner_died(ref, exc)


async def _run_async_cleaner(ref: Callable[[], Any], wake: asyncio.Event, clock: Clock) -> None:
    """The cleaner task's body (see :func:`_run_cleaner`); ends when the pool closes."""
    try:
        while True:
            wake.clear()
            pool = ref()
            if pool is None or pool.closed:
                return
            try:
                next_wake = pool.maintain()
            except Exception:
                logger.exception("connection pool cleaner pass failed")
                next_wake = math.inf
            del pool
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_sleep(next_wake, clock)):
                    await wake.wait()
    except asyncio.CancelledError:
        raise  # close() stops it
    except BaseException as exc:
        cleaner_died(ref, exc)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise  # asyncio stops the loop for these two, as it would without us


class Runner:
    """A sync pool's background work: connect threads, the cleaner thread, closes.

    Args:
        name: the pool's name, for thread names.
        lock: the pool's lock (the "drained" condition waits on it).
        wake: the cleaner's wake-up event to share (a keyed pool's sub-pools
            share their parent's cleaner); ``None``: a new one.
    """

    # What a failed ``create()`` may raise and still be retried: anything, as
    # a connect thread has no caller to raise a KeyboardInterrupt to.
    create_failures: tuple[type[BaseException], ...] = (BaseException,)

    def __init__(self, name: str, lock: Any, wake: threading.Event | None = None) -> None:
        self._name = name
        self._stop = threading.Event()
        self.wake = wake if wake is not None else threading.Event()
        self.cleaner: threading.Thread | None = None
        self._cleaner_claimed = False
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._drained = threading.Condition(lock)

    def claim_cleaner(self) -> bool:
        """True the first time only (call it under the pool's lock).

        Flushes run in several threads at once (the caller, a connect thread,
        the cleaner); each seeing "no cleaner yet" would start one of its own.
        """
        if self._cleaner_claimed:
            return False
        self._cleaner_claimed = True
        return True

    def start(self, target: Callable[[], None], role: str) -> None:
        """Run ``target`` in a new daemon thread, joined by :meth:`join`."""
        self._start(target, role)

    def _start(self, target: Callable[[], None], role: str) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException:
                # No caller to raise to: an error out of a close this thread
                # made for the pool (a KeyboardInterrupt in connector.close or
                # on_discard) is logged; close_all() closed the rest first.
                logger.exception("connection pool %s thread of %s failed", role, self._name)
            finally:
                with self._threads_lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name=f"poolkit-{role}-{self._name}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def start_cleaner(self, owner: object, clock: Clock) -> None:
        """Start the thread that runs ``owner.maintain()`` at each deadline."""
        body = functools.partial(_run_cleaner, weakref.ref(owner), self._stop, self.wake, clock)
        self.cleaner = self._start(body, "cleaner")
        # Dropped without close(): stop the cleaner when the owner is collected.
        weakref.finalize(owner, _stop_cleaner, self._stop, self.wake)

    def rouse(self) -> None:
        """Wake the cleaner for an earlier deadline."""
        self.wake.set()

    def dropped(self, flush: Callable[[], None]) -> None:
        """A proxy was collected holding its connection: the cleaner's pass flushes.

        No lock here: a finalizer may run inside the pool's own locked section.
        """
        self.wake.set()

    def close_all(
        self,
        to_close: Closes,
        close: Callable[[Entry, str], None],
        after: Callable[[], None],
    ) -> None:
        """Close each entry now; the first ``BaseException`` is re-raised after all are closed."""
        error: BaseException | None = None
        try:
            for entry, reason in to_close:
                try:
                    close(entry, reason)
                except BaseException as exc:
                    error = error or exc
            if error is not None:
                raise error
        finally:
            # Each close freed a slot: a waiter or min_size may take it now.
            after()

    def sleep(self, seconds: float) -> bool:
        """A retry's backoff; True when the pool is closing (give up)."""
        return self._stop.wait(seconds)

    def notify_drained(self) -> None:
        """Nothing is left in use, being opened or closed (call under the lock)."""
        self._drained.notify_all()

    def stop(self) -> None:
        """The pool is closing: end the cleaner and backoffs."""
        self._stop.set()
        self.wake.set()

    def wait_drained(self, drained: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``drained()`` or ``deadline``; whether it came true."""
        with self._drained:
            return condition_wait_for(self._drained, drained, deadline)

    def join(self, deadline: float) -> None:
        """Wait, up to ``deadline``, for the threads started here to end."""
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            # A thread registered but not started yet has nothing to wait for.
            if thread is not threading.current_thread() and thread.ident is not None:
                join_thread(thread, left_until(deadline))


class AsyncRunner:
    """An async pool's background work: tasks on its loop (see :class:`Runner`).

    Args:
        name: the pool's name.
        lock: unused (the sync twin's condition waits on it).
        wake: the cleaner's wake-up event to share; ``None``: a new one at :meth:`bind`.
    """

    # CancelledError (close() stops a connect task) and KeyboardInterrupt go on.
    create_failures: tuple[type[BaseException], ...] = (Exception,)

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
