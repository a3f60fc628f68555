"""What really differs between the two worlds of the connection pools.

The async modules of this package are the source of their sync twins
(``scripts/gen_sync.py`` renames ``AsyncX`` to ``X``, ``async_x`` to ``x`` and
module ``_compat_async`` to ``_compat``): each ``Async`` object of
:mod:`poolkit.connections._compat_async` has a twin here without the prefix,
with the same methods, for threads. The two halves are separate modules so
that the sync pools never import asyncio. Only the pieces that cannot be
written once live here:

- the lock: a :class:`~poolkit._tokenlock.TokenLock` shared by a pool's threads, none on the loop
  (a core call without an ``await`` inside is atomic there);
- a waiter's wake-up (:class:`Gate`): a pre-acquired lock released by the
  waker, or a future the waker resolves;
- background work (:class:`Runner`): connect and cleaner threads, closes made
  inline, or tasks on the pool's loop, closes made in tasks of their own.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from poolkit._tokenlock import TokenLock
from poolkit._validate import Clock
from poolkit._waits import join_thread, left_until, slice_of
from poolkit._waits import wait_for as condition_wait_for
from poolkit.connections._core import Entry
from poolkit.connections._driver import cleaner_died, cleaner_pass, logger

__all__ = ["NO_LOCK", "Closes", "Gate", "Runner", "new_lock"]

# A pool's entries to close, each with the reason (the core's outbox).
Closes = list[tuple[Entry, str]]


class _NoLock:
    """A stand-in for a lock where none is needed (on the event loop)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


NO_LOCK: Any = _NoLock()


def new_lock() -> TokenLock:
    """The lock around a sync pool's core calls (taken inline: see poolkit._tokenlock)."""
    return TokenLock()


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


# -- background work -------------------------------------------------------------


def _stop_cleaner(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


def _run_cleaner(
    ref: Callable[[], Any], stop: threading.Event, wake: threading.Event, clock: Clock
) -> None:
    """A cleaner thread's body: ``maintain()`` at each deadline until stopped.

    It holds the pool only through the weak reference ``ref`` (and only during a
    pass, :func:`~poolkit.connections._driver.cleaner_pass`), so a pool dropped
    without ``close()`` is still collected and its cleaner ends instead of
    living forever. If the cleaner itself dies, for any reason, the pool is
    broken (``_break``): ``acquire()`` raises :class:`~poolkit.PoolBroken`
    instead of serving from a pool whose idle expiry, leak warnings and
    ``min_size`` top-up stopped.
    """
    try:
        while not stop.is_set():
            wake.clear()
            sleep = cleaner_pass(
                ref, clock, until_closed=False, failures=Runner.background_failures
            )
            if sleep is None:
                return
            wake.wait(sleep)
    except BaseException as exc:
        # No caller to raise to in this thread: the pool carries the cause.
        cleaner_died(ref, exc)


class Runner:
    """A sync pool's background work: connect threads, the cleaner thread, closes.

    Args:
        name: the pool's name, for thread names.
        lock: the pool's lock (the "drained" condition waits on it).
        wake: the cleaner's wake-up event to share (a keyed pool's sub-pools
            share their parent's cleaner); ``None``: a new one.
    """

    # What a connect thread's failed ``create()`` or a cleaner pass may raise
    # and be logged, the thread going on: anything, as these threads have no
    # caller to raise to (and a KeyboardInterrupt there came from a hook:
    # signals reach only the main thread).
    background_failures: tuple[type[BaseException], ...] = (BaseException,)

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
