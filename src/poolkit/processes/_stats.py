"""ProcessPool's stats snapshot: WorkerPool's fields plus what processes add."""

from __future__ import annotations

from dataclasses import dataclass

from poolkit.workers._core import WorkerPoolStats

__all__ = ["ProcessPoolStats"]


@dataclass(frozen=True)
class ProcessPoolStats(WorkerPoolStats):
    """A snapshot of a ProcessPool (every :class:`WorkerPoolStats` field, and more).

    Timed-out and crashed tasks count as ``failed`` too, so
    ``submitted == completed + cancelled`` once the pool is idle.

    Attributes:
        timed_out: tasks stopped by their ``timeout=`` (worker killed).
        crashed: worker processes that died unexpectedly (with or without a task).
        recycled: workers retired by ``max_tasks_per_child`` or ``max_memory_per_child``.
        started: worker processes started so far.

    ``broken`` (inherited) is true when a worker could not start or the
    dispatcher thread failed: tasks then fail with ``PoolBroken``.
    ``queue_wait`` and ``run_time`` (inherited) are always recorded: the wait
    of every task that reached a worker, the run of every task that returned
    or raised there.
    """

    family = "processes"

    timed_out: int
    crashed: int
    recycled: int
    started: int
