"""The global caps of a keyed pool, shared by its per-key cores.

net/http's Transport and generic-connection-pool cap connections per key
(``MaxConnsPerHost``) *and* across keys. At the global cap, a key with waiters
takes room from the others: the least recently used idle connection of any key
is closed (net/http ``idleLRU.removeOldest``). A connection coming back while
another key starves at the cap is closed rather than kept idle, so the starving
key can open one. ``max_idle`` caps idle connections across keys, closing the
globally oldest (net/http ``MaxIdleConns``).

A connection being closed keeps its slot in ``total`` until its close returns
(see ``PoolCore.close_done``), so the server never sees more than ``max_size``;
evictions therefore free room only later, and closes already in flight count
as room on its way: a key evicts only for the demand they do not cover.

Like the core, this is pure bookkeeping under the caller's lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poolkit.connections._core import PoolCore

__all__ = ["Budget"]


class Budget:
    """Global ``max_size`` / ``max_idle`` across the cores of a keyed pool.

    Args:
        max_size: cap on connections across keys (``None``: none).
        max_idle: cap on idle connections across keys (``None``: none).
    """

    def __init__(self, max_size: int | None, max_idle: int | None) -> None:
        self.max_size = math.inf if max_size is None else max_size
        self.max_idle = math.inf if max_idle is None else max_idle
        self.total = 0
        # Connections retired by any key whose close has not returned yet.
        self.closing = 0
        # Insertion-ordered set of the live keys' cores (dict: O(1) removal).
        self.cores: dict[PoolCore, None] = {}
        # Cores another key's operation changed (evicted from, planned for):
        # the keyed driver flushes them after the operation, instead of
        # scanning every key.
        self.touched: list[PoolCore] = []

    def forget_all(self) -> None:
        """Start over with no key (a forked child drops the parent's sub-pools).

        The parent's connections, closes in flight included, are not the
        child's: a ``closing`` count left here would never come down, and at
        the global cap it would refuse every eviction.
        """
        self.total = 0
        self.closing = 0
        self.cores = {}
        self.touched = []

    def _others(self, core: PoolCore) -> Iterable[PoolCore]:
        return (c for c in self.cores if c is not core)

    @staticmethod
    def _need(core: PoolCore) -> int:
        """Waiters of ``core`` that no idle or coming connection will serve."""
        return len(core.waiters) - core.creating - len(core.idle)

    @classmethod
    def _starving(cls, core: PoolCore) -> bool:
        return cls._need(core) > 0 and core.size < core.max_size

    def _oldest_idle(self, cores: Iterable[PoolCore]) -> PoolCore | None:
        best: PoolCore | None = None
        for c in cores:
            if c.idle and (best is None or c.idle[0].idle_since < best.idle[0].idle_since):
                best = c
        return best

    def room(self, core: PoolCore, for_waiters: bool) -> bool:
        """Whether ``core`` may open one more connection; evicts to make room for waiters."""
        if self.total < self.max_size:
            return True
        if not for_waiters or self.closing >= self._need(core):
            # Slots already on their way back go to starving keys (slot_freed).
            return False
        victim = self._oldest_idle(self._others(core))
        if victim is None:
            return False
        victim.evict_oldest_idle()
        self.touched.append(victim)
        # The evicted connection's slot frees when its close returns.
        return self.total < self.max_size

    def slot_freed(self, core: PoolCore) -> None:
        """A slot of ``core`` is free (a close returned, a creation was dropped):
        give it to a key that waits (or is below its ``min_size``)."""
        self.total -= 1
        for c in [core, *self._others(core)]:
            if c.waiters or c.live < c.min_size:
                c._plan_creates()
                self.touched.append(c)
            if self.total >= self.max_size:
                break

    def place_idle(self, core: PoolCore, now: float) -> bool:
        """Whether a connection coming back to ``core`` should close instead of idling."""
        if self.total >= self.max_size:
            need = sum(self._need(c) for c in self._others(core) if self._starving(c))
            if need > self.closing:
                return True
        idle = sum(len(c.idle) for c in self.cores)
        if idle >= self.max_idle:
            victim = self._oldest_idle(self.cores)
            if victim is not None:
                victim.evict_oldest_idle()
                self.touched.append(victim)
        return False
