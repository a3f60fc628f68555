"""PoolFuture: a ``concurrent.futures.Future`` that is cheap to create.

A stock Future builds its own ``threading.Condition`` (an RLock plus a
Python-level object, ~1.5 µs: over a third of a ``submit`` round trip). A
PoolFuture borrows one of a few shared Conditions
instead. It is a real ``Future``: ``concurrent.futures.wait``,
``as_completed``, ``add_done_callback``, ``cancel`` and
``loop.run_in_executor`` treat it as any other.

Sharing a Condition means ``notify_all`` for one future also wakes threads
waiting on others in the same shard. The stock ``result()`` and
``exception()`` wait once and take a wake-up as "done or timed out", so this
class re-checks the state in a loop until the future is done or the deadline
passes.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import CancelledError, Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from typing import Any, TypeVar

from poolkit import _fork
from poolkit._waits import deadline_after, wait_for

__all__ = ["PoolFuture"]

T = TypeVar("T")

# Shards of shared Conditions. Spurious wake-ups grow with the number of
# threads waiting on different futures of one shard; 64 keeps that small for
# any realistic number of waiting threads while costing nothing per future.
_SHARDS = 64
_CONDITIONS = [threading.Condition() for _ in range(_SHARDS)]
_next_shard = itertools.count()


def _fresh_conditions_after_fork() -> None:
    """In a forked child, give the shared Conditions new locks.

    A parent thread may have held one at fork time; it does not exist in the
    child, so that lock would never be released. Re-initialising the same
    Condition objects (rather than replacing them) fixes every Future that
    already refers to them.
    """
    for condition in _CONDITIONS:
        condition.__init__()  # type: ignore[misc]


# Through poolkit._fork, not a hook of its own: at-fork hooks run in the order
# they were registered, and the pools' resets (which cancel and fail Futures)
# must find these Conditions already usable.
_fork.first(_fresh_conditions_after_fork)
_FUTURES_LOG = logging.getLogger("concurrent.futures")  # where Future logs them
_DONE = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})
_CANCELLED = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED})


class PoolFuture(Future[T]):
    """The Future returned by ``WorkerPool.submit`` (a ``concurrent.futures.Future``)."""

    def __init__(self) -> None:
        # The fields Future.__init__ sets, with a shared Condition.
        self._condition = _CONDITIONS[next(_next_shard) % _SHARDS]
        self._state = PENDING
        self._result = None
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    def _invoke_callbacks(self) -> None:
        # Future's own loop stops at the first BaseException a callback raises
        # (SystemExit, KeyboardInterrupt), skipping the rest, among them a
        # group's bookkeeping, so group.wait() would never return. Run them
        # all, log Exceptions as Future does, re-raise the first BaseException.
        error: BaseException | None = None
        for callback in self._done_callbacks:
            try:
                callback(self)
            except Exception:
                _FUTURES_LOG.exception("exception calling callback for %r", self)
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def _wait_done(self, timeout: float | None) -> None:
        """Wait, under the condition, until done or ``timeout`` (then raise).

        ``timeout`` may be any number of seconds (``None`` or ``math.inf``:
        no limit): the waits go in slices the OS accepts.
        """
        if timeout is None:  # an untimed wait has no limit to overflow, and is cheaper
            while self._state not in _DONE:
                self._condition.wait()
            return
        if not wait_for(self._condition, lambda: self._state in _DONE, deadline_after(timeout)):
            raise TimeoutError()

    def result(self, timeout: float | None = None) -> T:
        """The task's return value, waiting up to ``timeout`` seconds.

        Raises:
            CancelledError: the task was cancelled.
            TimeoutError: not done within ``timeout``.
            BaseException: whatever the task raised.
        """
        try:
            with self._condition:
                self._wait_done(timeout)
                if self._state in _CANCELLED:
                    raise CancelledError()
                if self._exception is not None:
                    raise self._exception
                result: T = self._result  # type: ignore[assignment]
                return result
        finally:
            # Break the cycle exception -> frame -> self, as Future.result does.
            self = None  # type: ignore[assignment]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (``None`` if it returned), waiting up to ``timeout``.

        Raises:
            CancelledError: the task was cancelled.
            TimeoutError: not done within ``timeout``.
        """
        with self._condition:
            self._wait_done(timeout)
            if self._state in _CANCELLED:
                raise CancelledError()
            return self._exception
