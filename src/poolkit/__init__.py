"""poolkit: every kind of pool from the Go world, for Python.

- Object and buffer pools: :class:`ObjectPool`, :class:`BufferPool`,
  :class:`ByteBuffer` / :class:`ByteBufferPool`, kept from leaking or wasting
  memory by the retention policies in :mod:`poolkit.buffers.retention`
  (:class:`MaxCapacity` with :func:`accept_by_capacity` here; the others,
  and the bpool ports, in :mod:`poolkit.buffers`).
- Connection pools: :class:`ConnectionPool`, :class:`AsyncConnectionPool` and
  their keyed twins, fed by a :class:`Connector`, handing out
  :class:`PooledConnection` proxies; ready connectors for sockets, DB-API
  drivers, psycopg, HTTP and memcached in :mod:`poolkit.adapters`; fakes for
  tests in :mod:`poolkit.testing`.
- Worker pools: :class:`WorkerPool` (threads, an ``Executor``),
  :class:`AsyncWorkerPool` (asyncio) and :class:`ProcessPool` (processes); the
  ants and tunny ports in :mod:`poolkit.workers`, the process pool's helper
  types in :mod:`poolkit.processes`.
- Observability: :func:`pools` lists the live pools of the process, each
  with its ``name`` and ``stats()`` (docs/stats.md); durations in stats are
  :class:`Histogram` objects.

Here are the pools, the errors (every one derives from :class:`PoolError`)
and the names the README's examples use; statistics classes and the niche
ports live in their family packages (``poolkit.buffers.ObjectPoolStats``,
``poolkit.workers.FuncPool``...). Names load on first use (PEP 562), so
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
        BadConnection,
        BufferExportedError,
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
    from poolkit._histogram import Histogram
    from poolkit._registry import pools
    from poolkit.buffers import (
        BufferPool,
        ByteBuffer,
        ByteBufferPool,
        MaxCapacity,
        ObjectPool,
        accept_by_capacity,
    )
    from poolkit.connections import (
        AsyncConnectionPool,
        AsyncConnector,
        AsyncKeyedConnectionPool,
        AsyncPooledConnection,
        ConnectionPool,
        Connector,
        KeyedConnectionPool,
        PooledConnection,
    )
    from poolkit.processes import ProcessPool
    from poolkit.workers import (
        AsyncTaskGroup,
        AsyncWorkerPool,
        CancelToken,
        PoolFuture,
        TaskCancelled,
        TaskGroup,
        WorkerPool,
    )


# Moved to their family packages; importable from here for one more release
# (see _MOVED), so type checkers accept them meanwhile.
if TYPE_CHECKING:
    from poolkit.buffers import BoundedBufferPool as BoundedBufferPool
    from poolkit.buffers import BoundedPoolStats as BoundedPoolStats
    from poolkit.buffers import BufferPoolStats as BufferPoolStats
    from poolkit.buffers import ByteBufferPoolStats as ByteBufferPoolStats
    from poolkit.buffers import BytesPool as BytesPool
    from poolkit.buffers import ObjectPoolStats as ObjectPoolStats
    from poolkit.buffers import SizedBufferPool as SizedBufferPool
    from poolkit.connections import ConnectionPoolStats as ConnectionPoolStats
    from poolkit.processes import GroupTaskOptions as GroupTaskOptions
    from poolkit.processes import ProcessPoolStats as ProcessPoolStats
    from poolkit.processes import TaskOptions as TaskOptions
    from poolkit.workers import FuncPool as FuncPool
    from poolkit.workers import MultiPool as MultiPool
    from poolkit.workers import WorkerPoolStats as WorkerPoolStats

__version__ = "0.1.0"

__all__ = [
    "AsyncConnectionPool",
    "AsyncConnector",
    "AsyncKeyedConnectionPool",
    "AsyncPooledConnection",
    "AsyncTaskGroup",
    "AsyncWorkerPool",
    "BadConnection",
    "BufferExportedError",
    "BufferPool",
    "ByteBuffer",
    "ByteBufferPool",
    "CancelToken",
    "ConnectionDetached",
    "ConnectionPool",
    "Connector",
    "EventLoopMismatch",
    "Histogram",
    "KeyedConnectionPool",
    "LeakWarning",
    "MaxCapacity",
    "ObjectPool",
    "PoolBroken",
    "PoolClosed",
    "PoolDeadlock",
    "PoolError",
    "PoolFuture",
    "PoolOverload",
    "PoolTimeout",
    "PooledConnection",
    "ProcessPool",
    "ReleaseError",
    "TaskCancelled",
    "TaskGroup",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkerPool",
    "__version__",
    "accept_by_capacity",
    "pools",
]

# Each module and the public names it defines, imported on first use; the
# errors (every other name of __all__) come from poolkit._errors.
_EXPORTS = {
    "poolkit.buffers": (
        "BufferPool",
        "ByteBuffer",
        "ByteBufferPool",
        "MaxCapacity",
        "ObjectPool",
        "accept_by_capacity",
    ),
    "poolkit.connections": (
        "AsyncConnectionPool",
        "AsyncConnector",
        "AsyncKeyedConnectionPool",
        "AsyncPooledConnection",
        "ConnectionPool",
        "Connector",
        "KeyedConnectionPool",
        "PooledConnection",
    ),
    "poolkit._histogram": ("Histogram",),
    "poolkit._registry": ("pools",),
    "poolkit.processes": ("ProcessPool",),
    "poolkit.workers": (
        "AsyncTaskGroup",
        "AsyncWorkerPool",
        "CancelToken",
        "PoolFuture",
        "TaskCancelled",
        "TaskGroup",
        "WorkerPool",
    ),
}
# Names that moved: still resolved here, with a DeprecationWarning naming the
# new import path.
_MOVED = {
    "BoundedBufferPool": "poolkit.buffers",
    "BoundedPoolStats": "poolkit.buffers",
    "BufferPoolStats": "poolkit.buffers",
    "ByteBufferPoolStats": "poolkit.buffers",
    "BytesPool": "poolkit.buffers",
    "ObjectPoolStats": "poolkit.buffers",
    "SizedBufferPool": "poolkit.buffers",
    "ConnectionPoolStats": "poolkit.connections",
    "GroupTaskOptions": "poolkit.processes",
    "ProcessPoolStats": "poolkit.processes",
    "TaskOptions": "poolkit.processes",
    "FuncPool": "poolkit.workers",
    "MultiPool": "poolkit.workers",
    "WorkerPoolStats": "poolkit.workers",
}

_lazy.install(__name__, _EXPORTS, _MOVED, rest="poolkit._errors")
