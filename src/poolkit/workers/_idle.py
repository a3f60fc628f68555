"""Parked workers and since when: the bookkeeping behind idle reaping.

The lifecycle core decides *whether* idle workers may be reaped (a surplus
above ``min_workers``, no backlog, an open pool); this set answers *which*
and *when*: each parked worker's time is its park time plus
``idle_timeout``, in the driver's clock.
"""

from __future__ import annotations

from collections.abc import Hashable

from poolkit.workers._lifecycle_plans import INF

__all__ = ["IdleSet"]


class IdleSet:
    """Workers waiting for a task, each with the time it parked.

    Args:
        timeout: seconds a worker may idle before it may be reaped
            (``None``: never).
    """

    __slots__ = ("_since", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._since: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, worker: object) -> bool:
        return worker in self._since

    def park(self, worker: Hashable, now: float) -> float | None:
        """``worker`` starts waiting at ``now``; when it may be reaped (``None``: never)."""
        self._since.pop(worker, None)  # re-parking moves it to the back of the line
        self._since[worker] = now
        return None if self.timeout is None else now + self.timeout

    def unpark(self, worker: Hashable) -> bool:
        """``worker`` stops waiting; False if it was not parked (reaped meanwhile)."""
        return self._since.pop(worker, None) is not None

    def due(self, worker: Hashable, now: float) -> float:
        """When ``worker`` will have idled ``timeout`` (``INF``: never; ``now`` if unknown)."""
        if self.timeout is None:
            return INF
        return self._since.get(worker, now - self.timeout) + self.timeout

    def overdue(self, now: float, most: int) -> list[Hashable]:
        """Unpark and return up to ``most`` workers idle for ``timeout``, longest first."""
        if self.timeout is None or most <= 0:
            return []
        taken: list[Hashable] = []
        # Parks happen in clock order and a re-park moves to the back, so
        # the dict's order is the longest-idle first.
        for worker, since in self._since.items():
            if len(taken) >= most or since + self.timeout > now:
                break
            taken.append(worker)
        for worker in taken:
            del self._since[worker]
        return taken

    def earliest(self) -> float | None:
        """When the longest-idle worker may be reaped (``None``: nobody, or never)."""
        if self.timeout is None or not self._since:
            return None
        return next(iter(self._since.values())) + self.timeout

    def clear(self) -> None:
        """Forget every parked worker (after a fork)."""
        self._since.clear()
