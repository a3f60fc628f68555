"""``TokenLock``: the pools' mutex, taken with no call on the hot paths.

The lock is a one-token list. ``del lock.token[0]`` takes it, or raises
``IndexError`` when another thread holds it; ``lock.token.append(True)``
gives it back. Both are single operations on one object: atomic under the
GIL, and under the list's own lock, with its memory ordering, on the
free-threaded build.

Why not ``threading.Lock``:

* **Interrupts.** CPython raises a ``KeyboardInterrupt`` (and runs signal
  handlers and pending calls) only where it checks for them: when a call
  returns, when a Python function starts, at a loop's jump back. After
  ``lock.acquire()`` returns there is such a check *before* the ``try`` whose
  ``finally`` would release it, so an interrupt landing there leaves the
  lock held for good, and every later call on the pool hangs. ``del
  token[0]`` is not a call: the hot paths take the lock with it immediately
  before their ``try`` (see :func:`held_briefly` and ``scripts/gen_sync.py``),
  leaving no such point in between. (``with lock:`` is safe too, but costs
  75 to 110 ns more per section than ``acquire``/``try``/``finally``, CPython 3.11
  to 3.13.)
* **Cost.** The uncontended pair is ~30 ns, against ~70 ns for
  ``acquire``/``release`` of a ``threading.Lock``.

A contended caller waits in :meth:`TokenLock.wait_turn`, which sleeps and
lets the holder run. Holders keep the lock for a few operations and never
block or run user code inside it, so under the GIL the lock is seen held
only while its holder was switched out inside them.

The rare paths that wait for a pool's lock (``clear``, ``close``,
``stats``) wait through :func:`held_briefly`, at most :data:`BRIEF_WAIT`:
the holder may be the waiting thread itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BRIEF_WAIT", "TokenLock", "held_briefly"]

# Seconds the rare paths wait for a pool's lock. Another thread's holder lets
# go within microseconds of being scheduled; this bound is only ever reached
# when the holder is the waiting thread itself.
BRIEF_WAIT = 0.1
# The longest single sleep of a contended wait.
_MAX_NAP = 1e-3


class TokenLock:
    """A mutex taken with ``del token[0]`` and given back with ``token.append(True)``.

    Also a lock as ``threading`` knows one (``acquire``, ``release``, a
    context manager), so ``threading.Condition`` can wait on it. Not
    reentrant.
    """

    __slots__ = ("token",)

    def __init__(self) -> None:
        self.token: list[bool] = [True]

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock; with ``blocking=False`` give up at once if it is held.

        Args:
            blocking: wait for a holder (``False``: one try).
            timeout: with ``blocking``, give up after this many seconds
                (``None`` or -1: wait as long as it takes, as
                ``threading.Lock`` does).

        Returns:
            Whether the lock was taken.
        """
        token = self.token
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        nap = 0.0
        while True:
            try:
                del token[0]
            except IndexError:
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    return False
                time.sleep(nap)  # 0 first: just let the holder run
                nap = min(max(nap * 2, 1e-6), _MAX_NAP)
            else:
                return True

    def release(self) -> None:
        """Give the lock back (only its holder may).

        Raises:
            RuntimeError: the lock was not held.
        """
        if self.token:
            raise RuntimeError("release of an unlocked TokenLock")
        self.token.append(True)

    def locked(self) -> bool:
        """Whether some thread holds the lock now."""
        return not self.token

    @staticmethod
    def wait_turn() -> None:
        """What a contended inline acquire does before it tries again: let the holder run."""
        time.sleep(0)

    # A Python __enter__ is safe where a call to acquire() is not: no check
    # for interrupts falls between a Python function's last operation and
    # the with block it returns into.
    def __enter__(self) -> bool:
        token = self.token
        while True:
            try:
                del token[0]
            except IndexError:
                time.sleep(0)
            else:
                return True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.token.append(True)

    def __repr__(self) -> str:
        return f"<TokenLock {'locked' if not self.token else 'unlocked'}>"


@contextmanager
def held_briefly(lock: TokenLock) -> Iterator[bool]:
    """Hold ``lock`` for a rare path, waiting at most :data:`BRIEF_WAIT` for it.

    Yields whether it was taken. When it was not, the caller goes on without
    it, as it must: a holder that does not let go is this very thread,
    interrupted inside its few operations by a signal handler or a finalizer
    (``__del__``, a weakref callback) that is now calling ``close()``,
    ``clear()`` or ``stats()``. It cannot resume until that call returns, so
    waiting for it would hang for good.
    """
    # Taken inline, as the hot paths do: no call between taking the token
    # and the try that gives it back.
    token = lock.token
    deadline = time.monotonic() + BRIEF_WAIT
    nap = 0.0
    while True:
        try:
            del token[0]
        except IndexError:
            if time.monotonic() >= deadline:
                held = False
                break
            time.sleep(nap)
            nap = min(max(nap * 2, 1e-6), _MAX_NAP)
        else:
            held = True
            break
    try:
        yield held
    finally:
        if held:
            token.append(True)
