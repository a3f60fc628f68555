"""One exception hierarchy for every pool family.

Every error poolkit raises on purpose derives from :class:`PoolError`, so
``except poolkit.PoolError`` catches "the pool said no" without also catching
the user's own bugs. Where a standard exception already names the situation,
the poolkit error also derives from it (:class:`PoolTimeout` is a
``TimeoutError``, :class:`PoolClosed` is a ``RuntimeError`` as
``concurrent.futures`` callers expect), so code written against the standard
library keeps working.

Messages are lowercase, say what happened and what to change.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor

__all__ = [
    "BadConnection",
    "BufferExportedError",
    "ConnectionDetached",
    "EventLoopMismatch",
    "LeakWarning",
    "PoolBroken",
    "PoolClosed",
    "PoolDeadlock",
    "PoolError",
    "PoolOverload",
    "PoolTimeout",
    "ReleaseError",
    "TaskTimeout",
    "WorkerCrashed",
]


class PoolError(Exception):
    """Root of every error raised by a poolkit pool."""


class PoolClosed(PoolError, RuntimeError):
    """The pool was closed (by its owner) before or while the call ran.

    Raised by any call that needs a live pool: getting or submitting after
    ``close()``/``stop()``, and by waiters that were still queued when the pool
    closed. It is also a ``RuntimeError`` because ``Executor.submit`` after
    ``shutdown()`` raises one.
    """


class PoolTimeout(PoolError, TimeoutError):
    """A bounded wait ran out before the pool could serve the call.

    Raised when no resource (connection, worker slot) became free within the
    ``timeout`` the caller or the pool set. It is also a ``TimeoutError`` so
    generic timeout handling catches it.
    """


class PoolOverload(PoolError):
    """The pool refused the call instead of queueing it.

    Raised when a bound on waiting is reached (``max_waiting`` waiters,
    ``max_blocking`` blocked submitters, a full queue with ``nonblocking=True``):
    the pool sheds load rather than grow a queue without limit.
    """


class ReleaseError(PoolError, ValueError):
    """Something was given back that the pool cannot take.

    Raised on a double release (the object is already back in the pool), on the
    release of an object the pool never handed out, and on a buffer whose size
    is not one of the pool's size classes. Taking it would hand one object to
    two holders, or file a buffer where a later request would find it too small.
    """


class BadConnection(PoolError):
    """The connection is unusable and the operation was **not** sent (database/sql ``ErrBadConn``).

    Raise it (chained from the cause: ``raise BadConnection(...) from exc``)
    from the function given to a connection pool's ``run()`` only when nothing
    of the operation can have reached the server: a dead socket found before
    the write, a connection closed before the first statement. ``run()`` then
    discards the connection and runs the function again on another one, whatever
    its ``retry=`` mode. A failure after the write never qualifies: the server
    may have done the work, and doing it twice is worse than an error.
    """


class ConnectionDetached(PoolError, RuntimeError):
    """A pooled connection's proxy was used after it went back to its pool.

    Once released (or discarded) the proxy no longer reaches the connection:
    someone else may hold it now, so touching it would interleave two users'
    traffic on one wire.
    """


class EventLoopMismatch(PoolError, RuntimeError):
    """An asyncio pool was used from an event loop other than the one it is bound to.

    Connections (sockets, streams) belong to the loop that opened them; using
    them from another loop hangs or corrupts state, so the pool refuses.
    """


class LeakWarning(ResourceWarning):
    """A pooled resource was held too long, or dropped without being released.

    Carries the holder's acquisition stack when leak tracking is on. It is a
    ``ResourceWarning``, so it is silent by default and shown with ``-W default``
    or ``python -X dev``.
    """


class PoolDeadlock(PoolError, RuntimeError):
    """A call would wait on the pool from inside one of its own workers.

    Raised when a task blocks for room in its own full pool, waits for its own
    pool to go idle, or stops its own pool and waits for it: the worker would
    wait for itself. Run such calls outside the pool's tasks, or give the
    nested work its own pool.
    """


class PoolBroken(PoolError, BrokenExecutor):
    """A pool can no longer serve because something it relies on died.

    Raised, chained (``__cause__``) from the original error, when:

    - a worker's ``initializer`` (or ``with_worker`` factory) raised: queued
      tasks fail with this error and new submissions are refused, as
      ``ThreadPoolExecutor`` does with ``BrokenThreadPool``;
    - a background thread or task of a pool died (a worker pool's worker, a
      process pool's dispatcher, a connection pool's cleaner): pending work
      fails, ``acquire``/``submit`` raise, and ``repr`` and ``stats().broken``
      say so, so a pool never looks healthy when it is not;
    - an ``AsyncWorkerPool`` is used in a forked child (its event loop and
      worker tasks stayed in the parent).

    It is also a ``concurrent.futures.BrokenExecutor`` (a ``RuntimeError``).
    """


class BufferExportedError(PoolError, BufferError):
    """A buffer must resize while a ``memoryview`` of it is still alive.

    Raised when a :class:`poolkit.ByteBuffer` has to grow (a write, ``grow``,
    ``read_from``) while a view from ``view()`` is alive: CPython cannot resize
    a ``bytearray`` with live exports. Release the view (``view.release()``,
    or ``with buf.view() as v:``) first. It is also a ``BufferError``.
    """


class TaskTimeout(PoolError, TimeoutError):
    """A task ran past its ``timeout=`` and its worker process was killed to stop it.

    Set on the task's Future by :class:`poolkit.ProcessPool`; the pool starts a
    fresh worker in place of the killed one and other tasks are untouched. It
    is also a ``TimeoutError``. Attributes: ``timeout`` (seconds) and ``pid``
    (the killed worker).
    """

    def __init__(self, message: str, *, timeout: float | None = None, pid: int | None = None):
        super().__init__(message)
        self.timeout = timeout
        self.pid = pid

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), {"timeout": self.timeout, "pid": self.pid}))


class WorkerCrashed(PoolError):
    """The worker process running a task died (a segfault, ``os._exit``, an OOM kill).

    Only the task that worker was running fails with it; the pool replaces the
    worker and goes on (no ``BrokenProcessPool``). Attributes: ``pid``,
    ``exitcode`` (the process's exit status, negative for a signal, as
    ``multiprocessing`` reports it) and ``signal`` (the signal number or ``None``).
    """

    def __init__(self, message: str, *, pid: int | None = None, exitcode: int | None = None):
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = -exitcode if exitcode is not None and exitcode < 0 else None

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), {"pid": self.pid, "exitcode": self.exitcode}))


def _rebuild(cls: type[BaseException], message: str, fields: dict[str, object]) -> BaseException:
    """Unpickle an error whose ``__init__`` takes keyword-only fields."""
    return cls(message, **fields)


# Tracebacks and reprs name each error as users import it (poolkit.PoolBroken,
# not poolkit._errors.PoolBroken). Pickle looks a class up by __module__ and
# __qualname__, and ``poolkit`` resolves these names on first use, so the
# errors still cross process boundaries (a worker process imports poolkit).
for _name in __all__:
    globals()[_name].__module__ = "poolkit"
del _name
