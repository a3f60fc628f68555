"""``snapshot``: a pool's stats dataclass filled from the counters of the same names.

Every buffer pool keeps its counters as plain attributes (an attribute
increment is the cheapest count on a hot path) and hands out a frozen
dataclass from ``stats()``. A counter has one name in both places (``_hits``
on the pool, ``hits`` in the stats), so the copy is a table walk rather than
one ``name=self._name`` line per field in each pool.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from poolkit._stats import StatsBase

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["BufferStats", "snapshot"]

S = TypeVar("S", bound="DataclassInstance")


def snapshot(stats_class: type[S], source: object, prefix: str = "_", **given: Any) -> S:
    """Build ``stats_class`` from ``given`` and, for every other field, ``source``'s counter.

    Args:
        stats_class: the frozen stats dataclass.
        source: the object holding the counters.
        prefix: what a field's name has in front of it on ``source``
            (``"_"``: field ``hits`` is read from ``source._hits``).
        **given: fields computed by the caller (gauges, sums, limits).

    Returns:
        The filled dataclass.

    Raises:
        AttributeError: ``source`` has no counter for a field not ``given``.
    """
    counters = {
        f.name: getattr(source, prefix + f.name) for f in fields(stats_class) if f.name not in given
    }
    return stats_class(**given, **counters)


class BufferStats(StatsBase):
    """What every buffer and object pool snapshot shares: family, hit ratio.

    Buffer and object pools never block and time nothing: the figure that
    says whether one works is its hit ratio.
    """

    __slots__ = ()

    family = "buffers"
    _derived: ClassVar[tuple[str, ...]] = ("hit_ratio",)

    hits: int
    misses: int

    @property
    def hit_ratio(self) -> float:
        """Share of gets served from the pool (0.0 before the first get)."""
        gets = self.hits + self.misses
        return self.hits / gets if gets else 0.0
