"""poolkit: every kind of pool from the Go world, for Python.

Object and buffer pools (:class:`ObjectPool`, :class:`BufferPool`,
:class:`ByteBufferPool`), with retention policies that keep them from leaking or
wasting memory. The public API is flat: import everything from ``poolkit``.
"""

from __future__ import annotations

from poolkit._errors import (
    ConnectionDetached,
    EventLoopMismatch,
    LeakWarning,
    PoolBroken,
    PoolClosed,
    PoolDeadlock,
    PoolError,
    PoolOverload,
    PoolTimeout,
    ReleaseError,
)
from poolkit.buffers import (
    BoundedBufferPool,
    BoundedPoolStats,
    BufferExportedError,
    BufferPool,
    BufferPoolStats,
    ByteBuffer,
    ByteBufferPool,
    ByteBufferPoolStats,
    BytesPool,
    ObjectPool,
    ObjectPoolStats,
    SizedBufferPool,
    accept_by_capacity,
)
from poolkit.connections import (
    AsyncConnectionPool,
    AsyncConnector,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    ConnectionPoolStats,
    Connector,
    KeyedConnectionPool,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncConnectionPool",
    "AsyncConnector",
    "AsyncKeyedConnectionPool",
    "BoundedBufferPool",
    "BoundedPoolStats",
    "BufferExportedError",
    "BufferPool",
    "BufferPoolStats",
    "ByteBuffer",
    "ByteBufferPool",
    "ByteBufferPoolStats",
    "BytesPool",
    "ConnectionDetached",
    "ConnectionPool",
    "ConnectionPoolStats",
    "Connector",
    "EventLoopMismatch",
    "KeyedConnectionPool",
    "LeakWarning",
    "ObjectPool",
    "ObjectPoolStats",
    "PoolBroken",
    "PoolClosed",
    "PoolDeadlock",
    "PoolError",
    "PoolOverload",
    "PoolTimeout",
    "ReleaseError",
    "SizedBufferPool",
    "__version__",
    "accept_by_capacity",
]
