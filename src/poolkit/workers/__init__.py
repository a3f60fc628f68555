"""Worker pools on threads and asyncio, with one vocabulary.

:class:`WorkerPool` runs callables on threads (and is a
``concurrent.futures.Executor``); :class:`AsyncWorkerPool` runs coroutine
functions on asyncio worker tasks. Both take the same options, and both are
drivers over one sans-io lifecycle core (:mod:`poolkit.workers._lifecycle`)
that decides admission, sizing, idle reaping, pause, resize, stop and break.
Names load on first use, so ``WorkerPool`` does not import asyncio, and
:mod:`poolkit.processes`, which builds on ``_core``, loads no thread pool.
"""

from __future__ import annotations

from poolkit import _lazy

TYPE_CHECKING = False  # see poolkit/__init__.py: typing is not imported at run time
if TYPE_CHECKING:
    from poolkit.workers._async_func_pool import AsyncFuncPool
    from poolkit.workers._async_group import AsyncTaskGroup
    from poolkit.workers._async_pool import AsyncWorkerPool
    from poolkit.workers._async_subpool import AsyncSubpool
    from poolkit.workers._core import WorkerPoolStats
    from poolkit.workers._func_pool import FuncPool
    from poolkit.workers._future import PoolFuture
    from poolkit.workers._group import CancelToken, TaskCancelled, TaskGroup
    from poolkit.workers._interrupt import current_token
    from poolkit.workers._multi import MultiPool
    from poolkit.workers._subpool import Subpool, SubpoolStats
    from poolkit.workers._thread_pool import WorkerPool

__all__ = [
    "AsyncFuncPool",
    "AsyncSubpool",
    "AsyncTaskGroup",
    "AsyncWorkerPool",
    "CancelToken",
    "FuncPool",
    "MultiPool",
    "PoolFuture",
    "Subpool",
    "SubpoolStats",
    "TaskCancelled",
    "TaskGroup",
    "WorkerPool",
    "WorkerPoolStats",
    "current_token",
]

# Each module and the public names it defines, imported on first use.
_EXPORTS = {
    "poolkit.workers._async_func_pool": ("AsyncFuncPool",),
    "poolkit.workers._async_group": ("AsyncTaskGroup",),
    "poolkit.workers._async_pool": ("AsyncWorkerPool",),
    "poolkit.workers._async_subpool": ("AsyncSubpool",),
    "poolkit.workers._core": ("WorkerPoolStats",),
    "poolkit.workers._func_pool": ("FuncPool",),
    "poolkit.workers._future": ("PoolFuture",),
    "poolkit.workers._group": ("CancelToken", "TaskCancelled", "TaskGroup"),
    "poolkit.workers._interrupt": ("current_token",),
    "poolkit.workers._multi": ("MultiPool",),
    "poolkit.workers._subpool": ("Subpool", "SubpoolStats"),
    "poolkit.workers._thread_pool": ("WorkerPool",),
}

_lazy.install(__name__, _EXPORTS)
