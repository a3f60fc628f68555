"""MultiPool: N WorkerPools behind one front (ants ``MultiPool``).

Each submission goes to one sub-pool, chosen ``round_robin`` or by
``least_tasks`` (fewest unfinished tasks). Splitting one pool into several
spreads lock traffic (ants' stated purpose; it matters most on free-threaded
builds). As in ants, a round-robin submission refused with ``PoolOverload``
is retried once on the least loaded sub-pool.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import fields
from typing import Any, ParamSpec, TypeVar

from poolkit._errors import PoolOverload
from poolkit._histogram import Histogram
from poolkit._validate import check_bool, check_callable, check_int
from poolkit.workers._core import WorkerPoolStats
from poolkit.workers._thread_pool import WorkerPool

__all__ = ["MultiPool"]

P = ParamSpec("P")
T = TypeVar("T")
_STRATEGIES = ("round_robin", "least_tasks")


class MultiPool(Executor):
    """``size`` WorkerPools of ``size_per_pool`` workers each.

    Args:
        size: number of sub-pools.
        size_per_pool: ``max_workers`` of each sub-pool.
        strategy: ``"round_robin"`` or ``"least_tasks"``.
        **options: any other :class:`WorkerPool` option, for every sub-pool.

    Raises:
        ValueError: ``size`` or ``size_per_pool`` below 1, unknown strategy.
    """

    def __init__(
        self, size: int, size_per_pool: int, strategy: str = "round_robin", **options: Any
    ) -> None:
        check_int("size", size, minimum=1)
        check_int("size_per_pool", size_per_pool, minimum=1)
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
        self.strategy = strategy
        name = options.pop("name", "MultiPool")
        self.pools = [
            WorkerPool(size_per_pool, name=f"{name}[{i}]", **options) for i in range(size)
        ]
        self._rr = itertools.count()

    def _least(self) -> WorkerPool:
        return min(self.pools, key=_unfinished)

    def _pick(self) -> WorkerPool:
        if self.strategy == "round_robin":
            return self.pools[next(self._rr) % len(self.pools)]
        return self._least()

    def go(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Fire and forget on the chosen sub-pool (see ``WorkerPool.go``).

        Raises:
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        try:
            self._pick().go(fn, *args, **kwargs)
        except PoolOverload:
            if self.strategy != "round_robin":
                raise
            self._least().go(fn, *args, **kwargs)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit to the chosen sub-pool (see ``WorkerPool.submit``).

        Raises:
            TypeError: ``fn`` is not callable.
        """
        check_callable("fn", fn)
        try:
            return self._pick().submit(fn, *args, **kwargs)
        except PoolOverload:
            if self.strategy != "round_robin":
                raise
            return self._least().submit(fn, *args, **kwargs)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every sub-pool is idle (each gets the full ``timeout``)."""
        for pool in self.pools:
            pool.wait(timeout)

    def stop(
        self, wait: bool = True, cancel_pending: bool | None = None, timeout: float | None = None
    ) -> None:
        """Stop every sub-pool (see ``WorkerPool.stop``).

        Raises:
            TypeError: ``wait`` or ``cancel_pending`` is not a bool.
        """
        check_bool("wait", wait)
        if cancel_pending is not None:
            check_bool("cancel_pending", cancel_pending)
        for pool in self.pools:
            pool.stop(wait=False, cancel_pending=cancel_pending if wait else True)
        if wait:
            for pool in self.pools:
                pool.stop(wait=True, cancel_pending=cancel_pending, timeout=timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown`` for every sub-pool.

        Raises:
            TypeError: ``wait`` or ``cancel_futures`` is not a bool.
        """
        check_bool("wait", wait)
        check_bool("cancel_futures", cancel_futures)
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=cancel_futures)
        if wait:
            for pool in self.pools:
                pool.shutdown(wait=True, cancel_futures=cancel_futures)

    def stats(self) -> WorkerPoolStats:
        """The sub-pools' stats added up (``paused``/``closed``: any sub-pool)."""
        all_stats = [pool.stats() for pool in self.pools]
        total: dict[str, Any] = {}
        for field in fields(WorkerPoolStats):
            if field.name == "name":
                continue  # the sub-pools' own names
            values = [getattr(s, field.name) for s in all_stats]
            if values[0] is None or isinstance(values[0], Histogram):
                # Timings: added up when every sub-pool records them.
                untimed = None in values
                total[field.name] = None if untimed else functools.reduce(operator.add, values)
            else:
                total[field.name] = any(values) if isinstance(values[0], bool) else sum(values)
        return WorkerPoolStats(**total)

    def stats_by_index(self, index: int) -> WorkerPoolStats:
        """One sub-pool's stats (ants ``RunningByIndex``/``FreeByIndex``/``WaitingByIndex``).

        Raises:
            IndexError: no sub-pool at ``index``.
        """
        if not 0 <= index < len(self.pools):
            raise IndexError(f"index must be in [0, {len(self.pools)}), got {index}")
        return self.pools[index].stats()

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<MultiPool {len(self.pools)}x{self.pools[0].max_workers} {self.strategy} "
            f"[{s.running} running, {s.queued} queued, {s.succeeded} ok, {s.failed} failed]>"
        )

    def __enter__(self) -> MultiPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _unfinished(pool: WorkerPool) -> int:
    s = pool.stats()
    return s.submitted - s.completed - s.cancelled - s.expired
