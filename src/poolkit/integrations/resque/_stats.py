"""ResqueWorker's stats snapshot: the worker-pool vocabulary plus Resque's own."""

from __future__ import annotations

from dataclasses import dataclass

from poolkit.workers import WorkerPoolStats

__all__ = ["ResqueWorkerStats"]


@dataclass(frozen=True)
class ResqueWorkerStats(WorkerPoolStats):
    """A snapshot of a :class:`ResqueWorker` (every :class:`poolkit.workers.WorkerPoolStats` field).

    A job is *submitted* when it is taken from Redis; it is then *completed*
    (``succeeded`` or ``failed``, the failure pushed on ``<ns>:failed``) or
    *cancelled* (put back at the head of its queue by a stop whose grace ran
    out). After ``run()`` returns, ``submitted == completed + cancelled``.
    ``max_workers`` is ``concurrency``; ``workers`` and ``idle``
    count handler slots while the worker runs; ``queued``, ``waiting``,
    ``overloads`` and ``expired`` are always 0 (a job is only taken for a free
    slot). ``paused`` is true while ``<ns>:pause-all-workers`` is set.

    Attributes:
        unknown_class: jobs failed because no handler is registered for their
            class (counted in ``failed``).
        timed_out: jobs stopped by ``job_timeout`` (counted in ``failed``).
        recovered: jobs of dead workers this worker put back on their queue.
        pruned: dead worker registrations this worker removed.
        polls: fetch round trips to Redis.
    """

    family = "resque"

    unknown_class: int
    timed_out: int
    recovered: int
    pruned: int
    polls: int
