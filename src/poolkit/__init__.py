"""poolkit: every kind of pool from the Go world, for Python.

- Object and buffer pools: :class:`ObjectPool`, :class:`BufferPool`,
  :class:`ByteBuffer` / :class:`ByteBufferPool` and the bpool-style
  :class:`BoundedBufferPool`, :class:`BytesPool`, :class:`SizedBufferPool`,
  kept from leaking or wasting memory by the policies in
  :mod:`poolkit.buffers.retention`.
- Connection pools: :class:`ConnectionPool`, :class:`AsyncConnectionPool` and
  their keyed twins, fed by a :class:`Connector`; ready connectors for
  sockets, DB-API drivers, psycopg, HTTP and memcached in
  :mod:`poolkit.adapters`; fakes for tests in :mod:`poolkit.testing`.
- Worker pools: :class:`WorkerPool` (threads, an ``Executor``),
  :class:`AsyncWorkerPool` (asyncio) and :class:`ProcessPool` (processes).

The public API is flat: import everything from ``poolkit``. Every error
derives from :class:`PoolError`.
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
    TaskTimeout,
    WorkerCrashed,
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
from poolkit.workers import (
    AsyncTaskGroup,
    AsyncWorkerPool,
    CancelToken,
    FuncPool,
    MultiPool,
    PoolFuture,
    TaskCancelled,
    TaskGroup,
    WorkerPool,
    WorkerPoolStats,
)
from poolkit.workers._process_options import GroupTaskOptions, TaskOptions
from poolkit.workers._process_pool import ProcessPool
from poolkit.workers._process_stats import ProcessPoolStats

__version__ = "0.1.0"

__all__ = [
    "AsyncConnectionPool",
    "AsyncConnector",
    "AsyncKeyedConnectionPool",
    "AsyncTaskGroup",
    "AsyncWorkerPool",
    "BoundedBufferPool",
    "BoundedPoolStats",
    "BufferExportedError",
    "BufferPool",
    "BufferPoolStats",
    "ByteBuffer",
    "ByteBufferPool",
    "ByteBufferPoolStats",
    "BytesPool",
    "CancelToken",
    "ConnectionDetached",
    "ConnectionPool",
    "ConnectionPoolStats",
    "Connector",
    "EventLoopMismatch",
    "FuncPool",
    "GroupTaskOptions",
    "KeyedConnectionPool",
    "LeakWarning",
    "MultiPool",
    "ObjectPool",
    "ObjectPoolStats",
    "PoolBroken",
    "PoolClosed",
    "PoolDeadlock",
    "PoolError",
    "PoolFuture",
    "PoolOverload",
    "PoolTimeout",
    "ProcessPool",
    "ProcessPoolStats",
    "ReleaseError",
    "SizedBufferPool",
    "TaskCancelled",
    "TaskGroup",
    "TaskOptions",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkerPool",
    "WorkerPoolStats",
    "__version__",
    "accept_by_capacity",
]
