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
derives from :class:`PoolError`. Names load on first use (PEP 562), so
``import poolkit`` imports no pool family and ``from poolkit import
ConnectionPool`` imports the connection family only.
"""

from __future__ import annotations

from poolkit import _lazy

# typing costs ~10 ms to import, half this package's budget; type checkers
# (mypy, pyright) read a name TYPE_CHECKING as True, so they see the imports.
TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from poolkit.processes import GroupTaskOptions, ProcessPool, ProcessPoolStats, TaskOptions
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

# Each public name and the package it is imported from on first use.
_EXPORTS = {
    "ConnectionDetached": "poolkit._errors",
    "EventLoopMismatch": "poolkit._errors",
    "LeakWarning": "poolkit._errors",
    "PoolBroken": "poolkit._errors",
    "PoolClosed": "poolkit._errors",
    "PoolDeadlock": "poolkit._errors",
    "PoolError": "poolkit._errors",
    "PoolOverload": "poolkit._errors",
    "PoolTimeout": "poolkit._errors",
    "ReleaseError": "poolkit._errors",
    "TaskTimeout": "poolkit._errors",
    "WorkerCrashed": "poolkit._errors",
    "BoundedBufferPool": "poolkit.buffers",
    "BoundedPoolStats": "poolkit.buffers",
    "BufferExportedError": "poolkit.buffers",
    "BufferPool": "poolkit.buffers",
    "BufferPoolStats": "poolkit.buffers",
    "ByteBuffer": "poolkit.buffers",
    "ByteBufferPool": "poolkit.buffers",
    "ByteBufferPoolStats": "poolkit.buffers",
    "BytesPool": "poolkit.buffers",
    "ObjectPool": "poolkit.buffers",
    "ObjectPoolStats": "poolkit.buffers",
    "SizedBufferPool": "poolkit.buffers",
    "accept_by_capacity": "poolkit.buffers",
    "AsyncConnectionPool": "poolkit.connections",
    "AsyncConnector": "poolkit.connections",
    "AsyncKeyedConnectionPool": "poolkit.connections",
    "ConnectionPool": "poolkit.connections",
    "ConnectionPoolStats": "poolkit.connections",
    "Connector": "poolkit.connections",
    "KeyedConnectionPool": "poolkit.connections",
    "GroupTaskOptions": "poolkit.processes",
    "ProcessPool": "poolkit.processes",
    "ProcessPoolStats": "poolkit.processes",
    "TaskOptions": "poolkit.processes",
    "AsyncTaskGroup": "poolkit.workers",
    "AsyncWorkerPool": "poolkit.workers",
    "CancelToken": "poolkit.workers",
    "FuncPool": "poolkit.workers",
    "MultiPool": "poolkit.workers",
    "PoolFuture": "poolkit.workers",
    "TaskCancelled": "poolkit.workers",
    "TaskGroup": "poolkit.workers",
    "WorkerPool": "poolkit.workers",
    "WorkerPoolStats": "poolkit.workers",
}


__dir__ = _lazy.listing(__name__, __all__)
if not TYPE_CHECKING:  # so that type checkers flag a misspelt name
    __getattr__ = _lazy.loader(__name__, _EXPORTS)
