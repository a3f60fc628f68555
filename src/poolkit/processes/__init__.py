"""Process pools: worker processes for CPU-bound work, with WorkerPool's vocabulary.

:class:`ProcessPool` is a ``concurrent.futures.Executor`` with per-task
timeouts that kill exactly the task, crash isolation, recycling, a bounded
queue and ``map``/``group``/``wait``. Names load on first use, so a worker
process importing :mod:`poolkit.processes._child` (its entry point) loads
nothing else of poolkit.
"""

from __future__ import annotations

from poolkit import _lazy

TYPE_CHECKING = False  # see poolkit/__init__.py: typing is not imported at run time
if TYPE_CHECKING:
    from poolkit.processes._map import ProcessTaskGroup
    from poolkit.processes._options import GroupTaskOptions, TaskOptions
    from poolkit.processes._pool import ProcessPool
    from poolkit.processes._stats import ProcessPoolStats
    from poolkit.processes._wire import ProcessFuture, RemoteTraceback

__all__ = [
    "GroupTaskOptions",
    "ProcessFuture",
    "ProcessPool",
    "ProcessPoolStats",
    "ProcessTaskGroup",
    "RemoteTraceback",
    "TaskOptions",
]

# Each module and the public names it defines, imported on first use.
_EXPORTS = {
    "poolkit.processes._map": ("ProcessTaskGroup",),
    "poolkit.processes._options": ("GroupTaskOptions", "TaskOptions"),
    "poolkit.processes._pool": ("ProcessPool",),
    "poolkit.processes._stats": ("ProcessPoolStats",),
    "poolkit.processes._wire": ("ProcessFuture", "RemoteTraceback"),
}

_lazy.install(__name__, _EXPORTS)
