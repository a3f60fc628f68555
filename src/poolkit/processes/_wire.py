"""What crosses a ProcessPool's pipes, seen from the parent: pickling, replies, futures.

* :func:`dumps` pickles a task with :mod:`pickle` (C, fast) and falls back to
  ``cloudpickle`` (lambdas, closures, notebook functions) when it is installed
  and plain pickle fails or would pickle a function the workers cannot import.
* :func:`decode_reply` turns a worker's reply into ``(ok, value)``, attaching
  the worker's traceback to exceptions as ``__cause__`` (as
  ``ProcessPoolExecutor`` does), so the remote frames print with the error.
* :class:`ProcessFuture` is a :class:`PoolFuture` whose ``cancel()`` can stop
  a *running* task (pebble semantics) when the pool allows it.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import Any, TypeVar

from poolkit.processes import _child as child
from poolkit.workers._future import PoolFuture

__all__ = ["ProcessFuture", "RemoteTraceback", "decode_reply", "dumps"]

T = TypeVar("T")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_PICKLE_ERRORS = (pickle.PicklingError, AttributeError, TypeError, RecursionError)


def _interactive_main(fn: object) -> bool:
    """Whether ``fn`` lives in a ``__main__`` that a worker cannot import (a REPL, a notebook)."""
    if getattr(fn, "__module__", None) != "__main__":
        return False
    main = sys.modules.get("__main__")
    return main is None or getattr(main, "__file__", None) is None


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def dumps(obj: object, what: str, fn: object = None) -> bytes:
    """Pickle ``obj`` (a task or the worker config) for a worker process.

    Args:
        obj: what to pickle.
        what: named in the error ("the task", "the initializer").
        fn: the function inside, checked for an interactive ``__main__``.

    Raises:
        pickle.PicklingError: neither pickle nor cloudpickle can pickle it;
            the message says what to change.
    """
    cp = _cloudpickle() if _interactive_main(fn) else None
    if cp is None:
        try:
            return pickle.dumps(obj, _PROTOCOL)
        except _PICKLE_ERRORS as exc:
            cp = _cloudpickle()
            if cp is None:
                raise pickle.PicklingError(
                    f"couldn't pickle {what} for a worker process: {exc}; pass a module-level "
                    "function and picklable arguments, or install cloudpickle "
                    "(pip install 'poolkit[cloudpickle]') for lambdas and closures"
                ) from exc
    try:
        data: bytes = cp.dumps(obj, _PROTOCOL)
    except Exception as exc:
        raise pickle.PicklingError(
            f"couldn't pickle {what} for a worker process, even with cloudpickle: {exc}; "
            "pass picklable arguments (no locks, sockets, open files or generators)"
        ) from exc
    return data


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (set as ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _with_traceback(exc: BaseException, text: str | None) -> BaseException:
    if text:
        exc.__cause__ = RemoteTraceback(text)
    return exc


def decode_reply(data: bytes) -> tuple[int, Any, int | None]:
    """A worker's reply as ``(kind, value, rss)``.

    For ``FAILED`` the value is the exception (or ``(partial_results,
    exception)`` for a map chunk) with the remote traceback attached. A reply
    that does not unpickle here becomes a ``FAILED`` with an UnpicklingError.
    """
    try:
        kind, value, text, rss = pickle.loads(data)
    except Exception as exc:
        error = pickle.UnpicklingError(
            f"couldn't unpickle a worker's reply in the parent: {exc!r}; return data whose "
            "classes the parent process can import"
        )
        return child.FAILED, error, None
    if kind in (child.FAILED, child.INIT_FAILED):
        if isinstance(value, tuple):
            value = (value[0], _with_traceback(value[1], text))
        else:
            value = _with_traceback(value, text)
    return kind, value, rss


class ProcessFuture(PoolFuture[T]):
    """The Future of a ProcessPool task (a ``concurrent.futures.Future``).

    With ``cancel_running=True`` on the pool, ``cancel()`` also stops a task
    that is already running: its worker process is killed and replaced, and
    the Future is cancelled. Otherwise a running task cannot be cancelled,
    as with any Executor.
    """

    _kill: Callable[[ProcessFuture[Any]], None] | None

    def __init__(self, kill: Callable[[ProcessFuture[Any]], None] | None) -> None:
        super().__init__()
        self._kill = kill

    def cancel(self) -> bool:
        """Cancel the task; a running one only if the pool has ``cancel_running=True``.

        Returns:
            Whether the Future is now cancelled.
        """
        return self._cancel(running_too=self._kill is not None, kill=True)

    def force_cancel(self) -> None:
        """Cancel even a running task: the pool killed its worker (terminate, stop deadline)."""
        self._cancel(running_too=True, kill=False)

    def _cancel(self, *, running_too: bool, kill: bool) -> bool:
        with self._condition:
            if self._state == FINISHED:
                return False
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            if self._state == PENDING:
                self._state = CANCELLED
                self._condition.notify_all()
                running = False
            elif not running_too:
                return False
            else:
                # RUNNING: cancel now, then have the pool kill the worker. A
                # result that arrives in between finds the Future cancelled
                # and is dropped (set_result is never called on it).
                assert self._state == RUNNING
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                self._condition.notify_all()
                running = True
        self._invoke_callbacks()
        if running and kill and self._kill is not None:
            self._kill(self)
        return True
