"""What both keyed pools share: cap checks, per-key options, summed statistics.

The keyed pools themselves are one source (``_keyed_async.py``, from which
``scripts/gen_sync.py`` writes ``_keyed.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from typing import Any

from poolkit._validate import check_optional_int
from poolkit.connections._budget import Budget
from poolkit.connections._options import DEFAULT_MAX_SIZE
from poolkit.connections._stats import ConnectionPoolStats
from poolkit.connections._sync import ConnectionPool

__all__ = ["check_caps", "counters_only", "keyed_setup", "sum_stats", "validate_options"]


def check_caps(
    max_size_per_key: object, max_idle_per_key: object, max_size: object, max_idle: object
) -> tuple[int, int | None, int | None, int | None]:
    per_key = check_optional_int("max_size_per_key", max_size_per_key, minimum=1)
    idle_per_key = check_optional_int("max_idle_per_key", max_idle_per_key, minimum=0)
    total = check_optional_int("max_size", max_size, minimum=1)
    idle = check_optional_int("max_idle", max_idle, minimum=0)
    return (DEFAULT_MAX_SIZE if per_key is None else per_key), idle_per_key, total, idle


# The gauges of a pool: what it holds now (the other numeric fields count events).
_GAUGES = ("total", "idle", "in_use", "creating", "closing", "waiting", "min_size", "max_size")
# The histograms, added up over the keys (None with timings=False).
_TIMINGS = ("acquire_wait", "hold_time", "create_time")
# Every numeric field of the stats, summed over the keys.
_SUMMED = tuple(
    f.name
    for f in dataclasses.fields(ConnectionPoolStats)
    if f.name not in ("closed_by_reason", "broken", "name", *_TIMINGS)
)


def sum_stats(
    parts: list[ConnectionPoolStats], budget: Budget, name: str = ""
) -> ConnectionPoolStats:
    """One pool's statistics for all keys: sums, with the global cap as ``max_size``."""
    reasons: dict[str, int] = {}
    for s in parts:
        for reason, n in s.closed_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    summed: dict[str, Any] = {name: sum(getattr(s, name) for s in parts) for name in _SUMMED}
    if not math.isinf(budget.max_size):
        summed["max_size"] = int(budget.max_size)
    for timing in _TIMINGS:
        found = [h for s in parts if (h := getattr(s, timing)) is not None]
        summed[timing] = functools.reduce(operator.add, found) if found else None
    return ConnectionPoolStats(
        **summed, closed_by_reason=reasons, broken=any(s.broken for s in parts), name=name
    )


def counters_only(stats: ConnectionPoolStats) -> ConnectionPoolStats:
    """A forgotten key's counters, with its gauges zeroed (it holds nothing)."""
    zeroed: dict[str, Any] = dict.fromkeys(_GAUGES, 0)
    return dataclasses.replace(stats, broken=False, **zeroed)


def keyed_setup(
    kind: str,
    max_size_per_key: int,
    max_idle_per_key: int | None,
    max_size: int | None,
    max_idle: int | None,
    options: dict[str, Any],
) -> tuple[dict[str, Any], Budget, ConnectionPool[Any]]:
    """Check a keyed pool's caps and per-key options (sync and async alike).

    Returns:
        The options each key's pool is built with, the cross-key budget, and
        a closed probe pool built with those options (for its clock and
        empty stats).

    Raises:
        TypeError: an option the keyed pool does not take, or of the wrong type.
        ValueError: a cap or option out of range.
    """
    per_key, idle_per_key, total, idle = check_caps(
        max_size_per_key, max_idle_per_key, max_size, max_idle
    )
    for bad in ("min_size", "max_size_per_key"):
        if bad in options:
            raise TypeError(f"{kind} does not take {bad}=")
    per_key_options = {**options, "max_size": per_key, "max_idle": idle_per_key}
    # Fail on bad options now, not at the first key.
    probe = validate_options(per_key_options)
    return per_key_options, Budget(total, idle), probe


def validate_options(options: dict[str, Any]) -> ConnectionPool[Any]:
    """Check a keyed pool's per-key options now, not at its first key.

    Returns:
        A closed pool built with them (for its clock and empty stats).

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option is out of range.
    """
    probe: ConnectionPool[Any] = ConnectionPool(_NullConnector(), **options)
    probe.close()
    return probe


class _NullConnector:
    def create(self) -> object:
        raise NotImplementedError

    def close(self, conn: object) -> None:
        raise NotImplementedError
