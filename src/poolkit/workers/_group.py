"""Task groups and cancel tokens for WorkerPool.

A group collects the tasks submitted through it: ``wait()`` returns their
results in submission order (pond ``ResultTaskGroup.Wait``), ``as_completed()``
streams them as they finish (go-playground ``Batch.Results``). With
``cancel_on_error=True`` the first failure cancels the group's tasks that have
not started and sets the group's :class:`CancelToken`, which running tasks can
poll (errgroup, pond ``NewGroupContext``): threads cannot be interrupted, so
stopping a running task is cooperative.

Guarantees (shared by the thread, asyncio and process groups):

* ``wait()`` returns only when every member has *settled* — ended, and its
  Future's done-callbacks have run — including members added while it waits
  (a crawler whose tasks submit their links, or, on a process pool, whose
  done-callbacks do). A member is counted before ``submit`` returns, so a
  task (or a callback) that adds children counts them before its own member
  settles: the count of unsettled members reaches zero only when no member
  is left that could still add one.
* No failure is dropped: a submission that raised (``PoolClosed`` because the
  pool stopped, ``PoolOverload``, ...) is recorded as a failure of the group
  even if the submitting task swallowed the error, and ``wait()`` raises it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, as_completed
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from poolkit._errors import PoolDeadlock, PoolError, PoolTimeout
from poolkit._validate import check_bool, check_callable, check_optional_seconds
from poolkit._waits import deadline_after, event_wait, wait_for
from poolkit.workers._thread_worker import current_pool

if TYPE_CHECKING:
    from poolkit.workers._thread_pool import WorkerPool

__all__ = ["CancelToken", "GroupCore", "TaskCancelled", "TaskGroup"]

P = ParamSpec("P")
T = TypeVar("T")


class TaskCancelled(PoolError, CancelledError):
    """Raised by :meth:`CancelToken.raise_if_cancelled` in a cancelled group's task.

    A :class:`~poolkit.PoolError` like every error poolkit raises, and a
    ``concurrent.futures.CancelledError``, so code that handles a cancelled
    Future handles it too.
    """


# Guards the links between tokens (a cancel racing with a link): both are rare.
_LINKS = threading.Lock()


class CancelToken:
    """A flag a group sets when it is cancelled; tasks poll it to stop early.

    Works for threads and asyncio alike (reading it is one attribute load).
    Create one yourself to cancel several groups at once: pass it as their
    ``parent`` (pond's ``NewGroupContext(ctx)``, a Go context).
    """

    __slots__ = ("__weakref__", "_cancelled", "_event", "_links", "reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._event = threading.Event()
        self.reason: BaseException | None = None
        # What cancel() also cancels: bound methods of child groups, held
        # weakly so a long-lived parent does not keep finished groups alive.
        self._links: list[weakref.WeakMethod[Callable[[], None]]] = []

    def _on_cancel(self, method: Callable[[], None]) -> None:
        """Call ``method`` (a bound method) when this token is cancelled (now, if it is)."""
        with _LINKS:
            if not self._cancelled:
                if len(self._links) >= 64:  # a long-lived parent: forget dead children
                    self._links = [ref for ref in self._links if ref() is not None]
                self._links.append(weakref.WeakMethod(method))
                return
        method()

    @property
    def cancelled(self) -> bool:
        """Whether the group was cancelled."""
        return self._cancelled

    def cancel(self, reason: BaseException | None = None) -> None:
        """Set the token (idempotent; the first reason is kept)."""
        with _LINKS:
            if self._cancelled:
                return
            self.reason = reason
            self._cancelled = True
            links, self._links = self._links, []
        self._event.set()
        for ref in links:
            method = ref()
            if method is not None:
                method()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if the token is set.

        Raises:
            TaskCancelled: the group was cancelled.
        """
        if self._cancelled:
            raise TaskCancelled(f"the task's group was cancelled ({self.reason!r})")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout``; return whether cancelled.

        ``timeout`` may be any number of seconds; ``None`` or ``math.inf``
        waits without limit.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        return event_wait(self._event, seconds)

    def __repr__(self) -> str:
        return f"<CancelToken cancelled={self._cancelled} reason={self.reason!r}>"


def parent_token_of(parent: object) -> CancelToken | None:
    """The token a group's ``parent=`` stands for (a group's own token).

    Raises:
        TypeError: ``parent`` is neither a :class:`CancelToken` nor a task group.
    """
    if parent is None or isinstance(parent, CancelToken):
        return parent
    if isinstance(parent, GroupCore):
        return parent.token
    raise TypeError(f"parent must be a CancelToken or a task group, got {type(parent).__name__}")


# The contract of wait(), one text for the thread and the asyncio group.
WAIT_DOC = """Wait for every task, including tasks added while waiting; return
        results in submission order.

        On an asyncio group, cancelling the caller does not cancel the
        group's tasks.

        Args:
            timeout: most seconds to wait, any size; ``None`` or ``math.inf``
                waits without limit.

        Raises:
            BaseException: the first failure (in time), after all tasks ended;
                a submission to the group that raised counts as a failure.
            CancelledError: a task was cancelled (by ``cancel()``) and none failed.
            PoolTimeout: not all done within ``timeout`` seconds.
            PoolDeadlock: called from a task of the same pool.
        """


class GroupCore:
    """What thread and asyncio groups share: futures, first error, token, cancel.

    The futures may be ``concurrent.futures`` or ``asyncio`` ones; both have
    ``cancel()``, ``cancelled()``, ``done()`` and ``exception()``.
    """

    def __init__(
        self, *, cancel_on_error: bool, parent: CancelToken | GroupCore | None = None
    ) -> None:
        self._cancel_on_error = check_bool("cancel_on_error", cancel_on_error)
        parent_token = parent_token_of(parent)
        self._futures: list[Any] = []
        self._lock = threading.Lock()  # thread groups call back from workers
        self._settled_cv = threading.Condition(self._lock)  # thread wait() sleeps here
        self._unsettled = 0  # members recorded whose Future has not settled
        self._first_error: BaseException | None = None
        self.token = CancelToken()
        # One bound method, so _on_done can find itself in a callback list.
        self._on_done_cb = self._on_done
        if parent_token is not None:
            parent_token._on_cancel(self._parent_cancelled)

    def _parent_cancelled(self) -> None:
        """The parent token or group was cancelled: so is this group."""
        self.cancel()

    def _submit_failed(self, exc: BaseException) -> None:
        """A submission to the group raised: that is a failure of the group.

        The caller gets the exception too; recording it here means a task
        that swallowed it cannot make the group look successful.
        """
        self._note_failure(exc)

    def _record(self, fut: Any) -> None:
        """Track a new member's Future (cancelled at once if the group is)."""
        with self._lock:
            self._futures.append(fut)
            self._unsettled += 1
        fut.add_done_callback(self._on_done_cb)
        if self.token.cancelled:
            fut.cancel()

    def _on_done(self, fut: Any) -> None:
        if not fut.cancelled():
            self._note_failure(fut.exception())
        # A concurrent.futures Future runs the callbacks registered before it
        # finished by iterating its _done_callbacks list (this one is first:
        # _record adds it before the caller sees the Future); a callback
        # appended now runs after all of them, so the member settles after
        # the user's callbacks have added whatever they add. A callback
        # registered after the Future finished runs at once, outside that
        # list, and asyncio Futures schedule theirs: settle now then.
        callbacks = getattr(fut, "_done_callbacks", None)
        if callbacks is not None and any(cb is self._on_done_cb for cb in callbacks):
            callbacks.append(self._settle)
        else:
            self._settle(fut)

    def _settle(self, fut: Any) -> None:
        with self._lock:
            self._unsettled -= 1
            if not self._unsettled:
                self._settled_cv.notify_all()

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
                self._cancel_member(other)

    def cancel(self) -> None:
        """Cancel the group: skip tasks not yet started and set the token.

        On an asyncio pool running members are cancelled too (as
        ``asyncio.TaskGroup``); running threads cannot be, they see the token.
        """
        self.token.cancel(None)
        with self._lock:
            futures = list(self._futures)
        for fut in futures:
            self._cancel_member(fut)

    def _leaving(self, exc: object) -> contextlib.AbstractContextManager[object]:
        """Leave the ``with`` block: what to wrap the final ``wait()`` in.

        An exception in the block cancels the group and is the one to report,
        so the wait after it is quiet; otherwise the wait raises the group's
        first failure. One rule for the thread and the asyncio group.
        """
        if exc is None:
            return contextlib.nullcontext()
        self.cancel()
        return contextlib.suppress(BaseException)

    def _cancel_member(self, fut: Any) -> None:
        """Cancel a member: a thread Future refuses once its task runs (cooperative
        token); the asyncio group cancels running coroutines too."""
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

    def __init__(
        self,
        pool: WorkerPool,
        *,
        cancel_on_error: bool = False,
        parent: CancelToken | GroupCore | None = None,
    ) -> None:
        super().__init__(cancel_on_error=cancel_on_error, parent=parent)
        self._pool = pool

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` to the pool as part of this group.

        Returns:
            The task's Future (cancelled if the group is cancelled first).

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is stopped (also recorded as a failure of
                the group: ``wait()`` raises it).
        """
        check_callable("fn", fn)
        try:
            fut = self._pool.submit(self._guarded, fn, *args, **kwargs)
        except BaseException as exc:
            self._submit_failed(exc)
            raise
        self._record(fut)
        return fut

    def go(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Submit without keeping the Future; failures still reach ``wait()``.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is stopped (also a failure of the group).
        """
        self.submit(fn, *args, **kwargs)

    def _guarded(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        # Positional-only: a keyword named "fn" belongs to the task (Executor contract).
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
        # The docstring is WAIT_DOC, set below (shared with AsyncTaskGroup.wait).
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        self._check_not_in_pool()
        deadline = deadline_after(seconds)
        with self._lock:
            # Zero unsettled members: none is left that could add another
            # (only code outside the group can, after this returns).
            if not wait_for(self._settled_cv, lambda: not self._unsettled, deadline):
                raise PoolTimeout(
                    f"group tasks still running after {seconds} s "
                    f"({self._unsettled} of {len(self._futures)} not done); raise timeout"
                )
            futures = list(self._futures)
        if self._first_error is not None:
            raise self._first_error
        return [fut.result() for fut in futures]

    wait.__doc__ = WAIT_DOC

    def as_completed(self, timeout: float | None = None) -> Iterator[Future[T]]:
        """Yield the group's Futures as they finish (submitted so far).

        Raises:
            TimeoutError: not all done within ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        if seconds is not None and seconds > _AS_COMPLETED_MAX:
            seconds = None  # as_completed hands it to Condition.wait as is
        self._check_not_in_pool()
        with self._lock:
            futures = list(self._futures)
        return as_completed(futures, timeout=seconds)

    def __enter__(self) -> TaskGroup[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._leaving(exc_info[1]):
            self.wait()


# Past this, an as_completed() wait is "no limit": concurrent.futures passes
# its timeout to Condition.wait unsliced, and nobody waits 100 years.
_AS_COMPLETED_MAX = 100 * 365 * 86400.0
