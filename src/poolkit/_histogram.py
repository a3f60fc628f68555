"""Durations in fixed buckets: the one histogram type of every pool's stats.

A pool records a duration with :meth:`Recorder.record` (a bisect and three
plain updates, under the lock the pool already holds there: no lock of its
own, no allocation) and hands out a frozen :class:`Histogram` in ``stats()``.
The buckets are the same for every pool and never change, so histograms add
up across pools and keys and map one-to-one onto a Prometheus histogram (its
``le`` bounds, cumulative counts) or an OpenTelemetry explicit-bucket one.

Bounds are log-spaced seconds, 1-2.5-5 per decade from 10 µs to 60 s: a
percentile read from them is within one bucket (at most 2.5x) of the truth,
enough to tell "the pool is the bottleneck" from "it is not".
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers read this as True
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BOUNDS", "FIRST_BOUND", "Histogram", "Recorder"]

# Upper bounds (inclusive, Prometheus' "le") of every bucket but the last,
# which takes everything above 60 s.
BOUNDS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005,
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Histogram:
    """A snapshot of durations in seconds, in the fixed buckets of :data:`BOUNDS`.

    Attributes:
        counts: observations per bucket (not cumulative): ``counts[i]`` are
            those ``<= BOUNDS[i]`` and above the bound before; the last,
            those above ``BOUNDS[-1]``.
        sum: total seconds.
        max: the longest observation (exact; 0.0 when empty).
    """

    counts: tuple[int, ...] = (0,) * (len(BOUNDS) + 1)
    sum: float = 0.0
    max: float = 0.0

    @property
    def count(self) -> int:
        """How many durations were recorded."""
        return sum(self.counts)

    @property
    def mean(self) -> float:
        """The average duration (0.0 when empty)."""
        n = self.count
        return self.sum / n if n else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in seconds, estimated from the buckets.

        Interpolated linearly inside the bucket that holds it (as Prometheus'
        ``histogram_quantile``), and never above the exact :attr:`max`.

        Raises:
            ValueError: ``q`` is outside 0..100.
        """
        if not 0 <= q <= 100:
            raise ValueError(f"q must be a percentile in 0..100, got {q!r}")
        total = self.count
        if not total:
            return 0.0
        rank = q / 100 * total
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                if i == len(BOUNDS):
                    return self.max
                low = BOUNDS[i - 1] if i else 0.0
                estimate = low + (BOUNDS[i] - low) * ((rank - seen) / n)
                return min(estimate, self.max)
            seen += n
        return self.max

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, count of observations <= le)`` per bucket, the last ``le`` being
        ``math.inf``: a Prometheus histogram's buckets."""
        out: list[tuple[float, int]] = []
        running = 0
        for le, n in zip((*BOUNDS, math.inf), self.counts, strict=True):
            running += n
            out.append((le, running))
        return out

    def __add__(self, other: Histogram) -> Histogram:
        """Both histograms' observations together (pools, keys, processes)."""
        return Histogram(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.sum + other.sum,
            max(self.max, other.max),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``count``, ``sum``, ``max``, ``p50``, ``p99`` and the
        cumulative ``buckets`` as ``[[le, count], ...]`` (the last ``le`` is ``"+Inf"``)."""
        return {
            "count": self.count,
            "sum": self.sum,
            "max": self.max,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "buckets": [["+Inf" if math.isinf(le) else le, n] for le, n in self.cumulative()],
        }


# The first bucket's bound: a duration at or below it needs no bisect.
FIRST_BOUND = BOUNDS[0]


class Recorder:
    """Where a pool records durations; :meth:`snapshot` gives the :class:`Histogram`.

    Not thread-safe by itself: the pool calls it under the lock it already
    holds at that point (or on its event loop).
    """

    __slots__ = ("counts", "max", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Add one duration (a negative one, from a clock that went back, counts as 0)."""
        # The first bucket without a bisect (~150 ns): the durations a pool's
        # fast path sees (a hold of a few µs in a tight loop) cost one compare.
        # A hot path may inline this method: that test, record_bucket() past
        # it, then the sum and the max.
        if seconds <= FIRST_BOUND:
            self.counts[0] += 1
        else:
            self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def record_bucket(self, seconds: float) -> None:
        """Count ``seconds`` in its bucket only (for a hot path that inlines :meth:`record`)."""
        self.counts[bisect_left(BOUNDS, seconds)] += 1

    @property
    def count(self) -> int:
        """How many durations were recorded."""
        return sum(self.counts)

    def snapshot(self, zeros: int = 0) -> Histogram:
        """The histogram so far, with ``zeros`` more observations of 0 s.

        A pool that does not time its fast path (an acquisition that found an
        idle connection waited 0 s) adds those here, at no cost per call.
        """
        counts = list(self.counts)
        counts[0] += max(0, zeros)
        return Histogram(tuple(counts), self.sum, self.max)
