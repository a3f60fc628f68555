"""What crosses a ProcessPool's pipes, seen from the parent: pickling, replies, futures.

* :func:`dumps` pickles a task with :mod:`pickle` (C, fast) and falls back to
  ``cloudpickle`` (lambdas, closures, notebook functions) when it is installed
  and plain pickle fails or would pickle a function the workers cannot import.
* :func:`function_blob` keeps the pickled reference of module-level functions
  a pool sends again and again, so a task pickles its arguments only.
* :func:`decode_reply` turns a worker's reply into ``(ok, value)``, attaching
  the worker's traceback to exceptions as ``__cause__`` (as
  ``ProcessPoolExecutor`` does), so the remote frames print with the error.
* :class:`ProcessFuture` is a :class:`PoolFuture` whose ``cancel()`` can stop
  a *running* task (pebble semantics) when the pool allows it.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Callable
from concurrent.futures import InvalidStateError
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

__all__ = ["ProcessFuture", "RemoteTraceback", "decode_reply", "dumps", "function_blob"]

T = TypeVar("T")
_DONE = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_PICKLE_ERRORS = (pickle.PicklingError, AttributeError, TypeError, RecursionError)


def _interactive_main(fn: object) -> bool:
    """Whether ``fn`` lives in a ``__main__`` a worker cannot import (a REPL, stdin, a notebook)."""
    if getattr(fn, "__module__", None) != "__main__":
        return False
    # _workers.main_is_a_file's rule, inlined: this runs on every submit of a
    # __main__ function, and the call would double its cost.
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return not path or path[0] == "<"


# Pickled references of module-level functions, by function (see function_blob).
# Bounded: a program that makes functions on the fly must not grow it for ever.
_BLOBS: dict[Any, tuple[bytes, Any, str]] = {}
_MAX_BLOBS = 256
_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)


def function_blob(fn: object) -> bytes | None:
    """``fn`` pickled by reference (its module and name), kept for its next task; or None.

    Pickling a function by reference looks the name up through its module
    on every call, which costs several times what pickling a task's small
    arguments does. The kept bytes are what ``pickle.dumps(fn)`` returns, and
    are used only while the name still leads to ``fn`` (as pickle checks),
    so a rebound name is pickled afresh. Only plain functions and a module's
    builtins qualify: their pickle holds nothing but the name (a builtin
    bound to an object, such as ``random.random``, pickles that object's
    state, and a bound method its instance). A worker unpickles the bytes
    before the call (the wire's pickled-function form, see ``_child``).

    Returns:
        The bytes, or None when ``fn`` does not qualify (the caller pickles
        it with the task as before).
    """
    if type(fn) not in _FUNCTION_TYPES:
        return None  # before the lookup: any other callable may be unhashable
    kept = _BLOBS.get(fn)
    if kept is not None:
        if getattr(kept[1], kept[2], None) is fn:
            return kept[0]
        _BLOBS.pop(fn, None)  # pop: another thread may have dropped it too
    if _interactive_main(fn):
        return None
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return None
    name = getattr(fn, "__qualname__", None)
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    # A nested name (a class's staticmethod, a function's local) is left to
    # the task's own pickling: checking it would walk the dotted path.
    if not isinstance(name, str) or "." in name or getattr(module, name, None) is not fn:
        return None
    try:
        blob = pickle.dumps(fn, _PROTOCOL)
    except _PICKLE_ERRORS:
        return None
    if len(_BLOBS) >= _MAX_BLOBS:
        _BLOBS.clear()
    _BLOBS[fn] = (blob, module, name)
    return blob


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
        what: named in the error ("the task {fn!r}", "the initializer"); a
            ``{fn!r}`` in it is replaced by ``fn``'s repr, on the error path
            only (a repr per task would cost as much as pickling small arguments).
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
                what = what.replace("{fn!r}", repr(fn))
                raise pickle.PicklingError(
                    f"couldn't pickle {what} for a worker process: {exc}; pass a module-level "
                    "function and picklable arguments, or install cloudpickle "
                    "(pip install 'poolkit[cloudpickle]') for lambdas and closures"
                ) from exc
    try:
        data: bytes = cp.dumps(obj, _PROTOCOL)
    except Exception as exc:
        what = what.replace("{fn!r}", repr(fn))
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

    # The three calls every task makes (the dispatcher marks it running and
    # sets its result; the caller takes it) cost several microseconds as
    # Future writes them: `with` on the Condition and a callback loop are
    # Python calls. These take the Condition's lock by its own bound methods
    # and skip empty loops; the states and notifications are Future's.

    def set_running_or_notify_cancel(self) -> bool:
        """As ``Future.set_running_or_notify_cancel``."""
        condition = self._condition
        condition.acquire()
        try:
            if self._state == PENDING:
                self._state = RUNNING
                return True
        finally:
            condition.release()
        return super().set_running_or_notify_cancel()  # cancelled (or misused): Future's path

    def set_result(self, result: T) -> None:
        """As ``Future.set_result``."""
        condition = self._condition
        condition.acquire()
        try:
            if self._state in _DONE:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
            condition.notify_all()
        finally:
            condition.release()
        if self._done_callbacks:
            self._invoke_callbacks()

    def result(self, timeout: float | None = None) -> T:
        """As ``Future.result``; a finished result is returned without taking the lock.

        ``set_result`` stores the result before the FINISHED state, so a
        FINISHED future without an exception has its result.
        """
        if self._state == FINISHED and self._exception is None:
            return self._result  # type: ignore[return-value]
        return super().result(timeout)

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
