"""ProcessPool's stats snapshot: WorkerPool's fields plus what processes add."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        broken: the pool is broken (a worker could not start, or its
            dispatcher thread failed): tasks fail with ``PoolBroken``.
            ``closed`` is true as well.
    """

    timed_out: int
    crashed: int
    recycled: int
    started: int
    # Keyword-only with a default (as WorkerPoolStats may declare it too), so
    # the field order stays valid for this subclass.
    broken: bool = field(default=False, kw_only=True)
