"""Task groups and cancel tokens for WorkerPool.

A group collects the tasks submitted through it: ``wait()`` returns their
results in submission order (pond ``ResultTaskGroup.Wait``), ``as_completed()``
streams them as they finish (go-playground ``Batch.Results``). With
``cancel_on_error=True`` the first failure cancels the group's tasks that have
not started and sets the group's :class:`CancelToken`, which running tasks can
poll (errgroup, pond ``NewGroupContext``): threads cannot be interrupted, so
stopping a running task is cooperative.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, as_completed
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._validate import check_optional_seconds
from poolkit.workers._thread_worker import current_pool

if TYPE_CHECKING:
    from poolkit.workers._thread_pool import WorkerPool

__all__ = ["CancelToken", "GroupCore", "TaskCancelled", "TaskGroup"]

P = ParamSpec("P")
T = TypeVar("T")


class TaskCancelled(CancelledError):
    """Raised by :meth:`CancelToken.raise_if_cancelled` in a cancelled group's task."""


class CancelToken:
    """A flag a group sets when it is cancelled; tasks poll it to stop early.

    Works for threads and asyncio alike (reading it is one attribute load).
    """

    __slots__ = ("_cancelled", "_event", "reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._event = threading.Event()
        self.reason: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the group was cancelled."""
        return self._cancelled

    def cancel(self, reason: BaseException | None = None) -> None:
        """Set the token (idempotent; the first reason is kept)."""
        if not self._cancelled:
            self.reason = reason
            self._cancelled = True
            self._event.set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if the token is set.

        Raises:
            TaskCancelled: the group was cancelled.
        """
        if self._cancelled:
            raise TaskCancelled(f"the task's group was cancelled ({self.reason!r})")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout``; return whether cancelled."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"<CancelToken cancelled={self._cancelled} reason={self.reason!r}>"


class GroupCore:
    """What thread and asyncio groups share: futures, first error, token, cancel.

    The futures may be ``concurrent.futures`` or ``asyncio`` ones; both have
    ``cancel()``, ``cancelled()``, ``done()`` and ``exception()``.
    """

    def __init__(self, *, cancel_on_error: bool) -> None:
        if not isinstance(cancel_on_error, bool):
            raise TypeError(f"cancel_on_error must be a bool, got {type(cancel_on_error).__name__}")
        self._cancel_on_error = cancel_on_error
        self._futures: list[Any] = []
        self._lock = threading.Lock()  # thread groups call back from workers
        self._first_error: BaseException | None = None
        self.token = CancelToken()

    def _record(self, fut: Any) -> None:
        """Track a new member's Future (cancelled at once if the group is)."""
        with self._lock:
            self._futures.append(fut)
        fut.add_done_callback(self._on_done)
        if self.token.cancelled:
            fut.cancel()

    def _on_done(self, fut: Any) -> None:
        if not fut.cancelled():
            self._note_failure(fut.exception())

    def _note_failure(self, exc: BaseException | None) -> None:
        """Record a member's failure; with ``cancel_on_error`` cancel the rest.

        Called by the member itself as it fails (so no other member starts
        in between — asyncio runs done-callbacks later) and again from the
        done-callback; doing it twice is harmless.
        """
        if exc is None or isinstance(exc, TaskCancelled):
            return
        with self._lock:
            if self._first_error is None:
                self._first_error = exc
            futures = list(self._futures) if self._cancel_on_error else []
        if self._cancel_on_error:
            self.token.cancel(exc)
            for other in futures:
                self._cancel_unstarted(other)

    def cancel(self) -> None:
        """Cancel tasks not yet started and set the token."""
        self.token.cancel(None)
        with self._lock:
            futures = list(self._futures)
        for fut in futures:
            self._cancel_unstarted(fut)

    def _cancel_unstarted(self, fut: Any) -> None:
        """Cancel ``fut`` if its task has not started (a thread Future refuses otherwise)."""
        fut.cancel()

    def _guard(self) -> None:
        # A task taken by a worker after the group was cancelled must not
        # start (its Future cannot be cancelled once running).
        self.token.raise_if_cancelled()

    def __len__(self) -> int:
        return len(self._futures)

    def __repr__(self) -> str:
        done = sum(1 for f in self._futures if f.done())
        return (
            f"<{type(self).__name__} [{done}/{len(self._futures)} done"
            f"{', cancelled' if self.token.cancelled else ''}]>"
        )


class TaskGroup(GroupCore, Generic[T]):
    """Tasks submitted together to a WorkerPool; create with ``pool.group()``.

    Use as a context manager: leaving the block waits for every task and
    raises the first failure; an exception in the block cancels the tasks
    not yet started.
    """

    def __init__(self, pool: WorkerPool, *, cancel_on_error: bool = False) -> None:
        super().__init__(cancel_on_error=cancel_on_error)
        self._pool = pool

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` to the pool as part of this group.

        Returns:
            The task's Future (cancelled if the group is cancelled first).

        Raises:
            PoolClosed: the pool is stopped.
        """
        fut = self._pool.submit(self._guarded, fn, *args, **kwargs)
        self._record(fut)
        return fut

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Submit without keeping the Future; failures still reach ``wait()``."""
        self.submit(fn, *args, **kwargs)

    def _guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._guard()
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            self._note_failure(exc)
            raise

    def _check_not_in_pool(self) -> None:
        if current_pool() is self._pool:
            raise PoolDeadlock(
                "a task waited on a group of its own pool: if every worker does this, "
                "none is left to run the group's tasks; wait from outside the pool"
            )

    def wait(self, timeout: float | None = None) -> list[T]:
        """Wait for every task; return results in submission order.

        Raises:
            BaseException: the first failure (in time), after all tasks ended.
            CancelledError: a task was cancelled (by ``cancel()``) and none failed.
            PoolTimeout: not all done within ``timeout`` seconds.
            PoolDeadlock: called from a task of the same pool.
        """
        seconds = check_optional_seconds("timeout", timeout)
        self._check_not_in_pool()
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            futures = list(self._futures)
        results: list[T] = []
        for fut in futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                fut.exception(left)
            except TimeoutError:
                raise PoolTimeout(
                    f"group tasks still running after {seconds} s; raise timeout"
                ) from None
            except CancelledError:
                pass
        if self._first_error is not None:
            raise self._first_error
        for fut in futures:
            results.append(fut.result())
        return results

    def as_completed(self, timeout: float | None = None) -> Iterator[Future[T]]:
        """Yield the group's Futures as they finish (submitted so far).

        Raises:
            TimeoutError: not all done within ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout)
        self._check_not_in_pool()
        with self._lock:
            futures = list(self._futures)
        return as_completed(futures, timeout=seconds)

    def __enter__(self) -> TaskGroup[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.cancel()
            # The body's exception is the one to report.
            with contextlib.suppress(BaseException):
                self.wait()
            return
        self.wait()
