"""The buffer pools' locks: ``TryLock``, and ``held_briefly`` for their rare paths.

Buffer pools never block: a caller that finds the lock held allocates (a
take) or drops its buffer (a return) rather than wait. Their rare paths
(``clear``, ``close``, ``stats``) wait for the lock, but only briefly (see
:func:`held_briefly`): its holder runs a few operations and no user code, but
it may be the very thread that waits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["BRIEF_WAIT", "TryLock", "held_briefly"]

# Seconds the rare paths wait for a pool's lock. Another thread's holder lets
# go within microseconds of being scheduled; this bound is only ever reached
# when the holder is the waiting thread itself.
BRIEF_WAIT = 0.1


class TryLock:
    """A mutex whose non-blocking acquire is one ``list.pop``.

    The lock is a one-token list: ``pop`` takes the token or raises
    ``IndexError`` when another thread holds it, ``append`` gives it back.
    Both are single operations on one object (atomic under the GIL, and
    under the list's own lock, with its memory ordering, in the free-threaded
    build). ``threading.Lock().acquire(False)`` parses its arguments on every
    call: with ``release`` it measured ~125 ns against ~20 ns for the pair of
    list calls (CPython 3.11), on a put path that takes it once.

    Its holders never block or run user code, so the rare blocking acquire
    (``clear``, ``close``, ``stats``, through :func:`held_briefly`) waits by
    yielding. The hot
    paths inline the pair on :attr:`token` (``token.pop()`` or ``del
    token[0]`` in a ``try``, ``token.append(True)`` in a ``finally``).
    """

    __slots__ = ("token",)

    def __init__(self) -> None:
        self.token: list[bool] = [True]

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; with ``blocking=False`` give up at once if it is held.

        Args:
            blocking: wait for a holder (``False``: one try).
            timeout: with ``blocking``, give up after this many seconds
                (``None``: wait as long as it takes).

        Returns:
            Whether the lock was taken.
        """
        token = self.token
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0
        while True:
            try:
                token.pop()
            except IndexError:
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    return False
                time.sleep(delay)  # 0 first: just let the holder run
                delay = min(max(delay * 2, 1e-6), 1e-3)
            else:
                return True

    def release(self) -> None:
        """Give the lock back (only its holder may).

        Raises:
            RuntimeError: the lock was not held.
        """
        if self.token:
            raise RuntimeError("release of an unlocked TryLock")
        self.token.append(True)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.release()


class _Lock(Protocol):
    """``TryLock`` or ``threading.Lock``: what :func:`held_briefly` needs."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


@contextmanager
def held_briefly(lock: _Lock) -> Iterator[bool]:
    """Hold ``lock`` for a rare path, waiting at most :data:`BRIEF_WAIT` for it.

    Yields whether it was taken. When it was not, the caller goes on without
    it, as it must: a holder that does not let go is this very thread,
    interrupted inside its few operations by a signal handler or a finalizer
    (``__del__``, a weakref callback) that is now calling ``close()``,
    ``clear()`` or ``stats()``. It cannot resume until that call returns, so
    waiting for it would hang for good.
    """
    held = lock.acquire(timeout=BRIEF_WAIT)
    try:
        yield held
    finally:
        if held:
            lock.release()
