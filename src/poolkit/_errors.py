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

__all__ = [
    "PoolClosed",
    "PoolError",
    "PoolOverload",
    "PoolTimeout",
    "ReleaseError",
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
