"""poolkit: every kind of pool from the Go world, for Python.

Object and buffer pools (:class:`ObjectPool`, :class:`BufferPool`,
:class:`ByteBufferPool`), with retention policies that keep them from leaking or
wasting memory. The public API is flat: import everything from ``poolkit``.
"""

from __future__ import annotations

from poolkit._errors import PoolClosed, PoolError, PoolOverload, PoolTimeout, ReleaseError

__version__ = "0.1.0"

__all__ = [
    "PoolClosed",
    "PoolError",
    "PoolOverload",
    "PoolTimeout",
    "ReleaseError",
    "__version__",
]
