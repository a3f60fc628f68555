"""DaskTaskGroup: errgroup-style task groups on a DaskPool."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import as_completed as futures_as_completed
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from poolkit import CancelToken, PoolTimeout, TaskCancelled
from poolkit._validate import check_callable, check_optional_seconds

if TYPE_CHECKING:
    from poolkit.integrations.dask._pool import DaskPool

__all__ = ["DaskTaskGroup"]

T = TypeVar("T")
P = ParamSpec("P")


class DaskTaskGroup(Generic[T]):
    """Tasks submitted together to a :class:`DaskPool`; create with ``pool.group()``.

    ``wait()`` returns results in submission order and raises the first
    failure. With ``cancel_on_error=True`` the first failure cancels the
    group: submissions after it return cancelled Futures and never start,
    tasks on the cluster are cancelled there, and ``token`` is set. As a
    context manager, leaving the block waits; an exception in it cancels.
    """

    def __init__(self, pool: DaskPool, *, cancel_on_error: bool) -> None:
        self._pool = pool
        self._cancel_on_error = cancel_on_error
        self._lock = threading.Lock()
        self._futures: list[Future[Any]] = []
        self._first_error: BaseException | None = None
        self.token = CancelToken()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` as a member of the group.

        Returns:
            Its Future; already cancelled if the group is.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolClosed: the pool is closed (also a failure of the group).
        """
        check_callable("fn", fn)
        if self.token.cancelled:
            return self._cancelled_future()
        call = functools.partial(fn, **kwargs) if kwargs else fn
        try:
            self._pool._reserve(1, guard=self.token.raise_if_cancelled)
        except TaskCancelled:
            return self._cancelled_future()  # cancelled while waiting for room
        except BaseException as exc:
            self._note(exc)
            raise
        [fut] = self._pool._send(lambda: [self._pool._client.submit(call, *args, pure=False)], 1)
        with self._lock:
            self._futures.append(fut)
        fut.add_done_callback(self._on_done)
        if self.token.wait(0):  # cancelled while this one was being sent
            self._pool._cancel_all([fut])
        return fut

    def go(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Submit without keeping the Future; failures still reach ``wait()``."""
        self.submit(fn, *args, **kwargs)

    def _cancelled_future(self) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.cancel()
        fut.set_running_or_notify_cancel()  # wakes concurrent.futures.wait() on it
        with self._lock:
            self._futures.append(fut)
        return fut

    def _on_done(self, fut: Future[Any]) -> None:
        if not fut.cancelled():
            self._note(fut.exception())

    def _note(self, exc: BaseException | None) -> None:
        if exc is None:
            return
        with self._lock:
            if self._first_error is None:
                self._first_error = exc
        if self._cancel_on_error:
            self._cancel(exc)

    def cancel(self) -> None:
        """Cancel the group: nothing more starts, tasks on the cluster are cancelled."""
        self._cancel(None)

    def _cancel(self, reason: BaseException | None) -> None:
        self.token.cancel(reason)
        with self._lock:
            futures = [f for f in self._futures if not f.done()]
        self._pool._cancel_all(futures)

    def wait(self, timeout: float | None = None) -> list[T]:
        """Wait for every member; return results in submission order.

        Raises:
            BaseException: the first failure, after every member ended.
            CancelledError: the group was cancelled and no member failed.
            PoolTimeout: members still running after ``timeout`` seconds.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        with self._lock:
            futures = list(self._futures)
        _done, pending = futures_wait(futures, timeout=seconds)
        if pending:
            raise PoolTimeout(
                f"group tasks still running after {seconds} s ({len(pending)} of "
                f"{len(futures)} not done); raise timeout"
            )
        if self._first_error is not None:
            raise self._first_error
        return [f.result() for f in futures]

    def as_completed(self, timeout: float | None = None) -> Iterator[Future[T]]:
        """The members' Futures as they finish (``concurrent.futures.as_completed``)."""
        with self._lock:
            futures = list(self._futures)
        return futures_as_completed(futures, timeout=timeout)

    def __len__(self) -> int:
        return len(self._futures)

    def __enter__(self) -> DaskTaskGroup[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        exc = exc_info[1]
        if exc is not None:
            self.cancel()
            with contextlib.suppress(BaseException):
                self.wait()
            return
        self.wait()
