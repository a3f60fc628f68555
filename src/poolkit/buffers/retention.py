"""Retention policies: which returned buffers a pool keeps, which it drops.

A pool that keeps every buffer it is given back leaks: one burst of large
requests grows a few pooled buffers to the burst's size, and they stay in the
pool forever while small requests keep cycling them (golang/go#23199). A pool
that never keeps large buffers wastes time re-growing them when large requests
are the norm (VictoriaMetrics reverted its 64 KiB cap, PR #8510). The policies
here are the known answers, each with its source and its worst case:

==================  =================================  ===========================
policy              rule (source)                      worst case it allows
==================  =================================  ===========================
:class:`KeepAll`    keep everything (sync.Pool)        unbounded: the leak above
:class:`MaxCapacity` drop when capacity > limit         every idle buffer of
                    (fmt, 64 KiB, golang/go#23199)     ``limit`` bytes holding 1 B
:class:`Utilization` keep ≤ 4 KiB; keep when ≥ 25 %     5 % utilization: 25 % used,
                    used; else 4 strikes, then drop    then 4 underused returns
                    (encoding/json v2 jsontext pools)
:class:`Calibrated` drop above the 95th-percentile     buffers up to the 95th-
                    class of observed sizes            percentile class; a size
                    (valyala/bytebufferpool)           mix that shifts takes up to
                                                       42 000 puts to follow
==================  =================================  ===========================

A policy sees two numbers per returned buffer: its ``capacity`` (bytes it
holds) and how much of it was ``used`` since it was handed out (its high-water
length, not its length at return: a caller that resets before returning must
not look like one that used nothing, bytebufferpool issue #15). Stateful rules
(strikes) get the buffer's strike count and return the new one, so the pool
stores per-buffer state where it can (:class:`poolkit.ByteBuffer` keeps it on
the buffer itself).

Every policy is thread-safe: :class:`KeepAll`, :class:`MaxCapacity` and
:class:`Utilization` hold no mutable state; :class:`Calibrated` counts with
plain integer stores (a lost increment under contention only delays the next
calibration) and recalibrates under a lock that no put ever waits for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from poolkit._validate import check_callable, check_int

__all__ = [
    "DROP",
    "KEEP",
    "Calibrated",
    "KeepAll",
    "MaxCapacity",
    "RetentionPolicy",
    "Utilization",
    "Verdict",
    "accept_by_capacity",
]

# fmt drops printer buffers with cap > 64 KiB (src/fmt/print.go, golang/go#23199).
FMT_MAX_CAPACITY = 64 * 1024
# encoding/json v2 (jsontext/pools.go): buffers up to 4 KiB are always kept, a
# buffer is "used" when len >= cap/4, and 4 underused returns in a row drop it.
JSON_SMALL_CAPACITY = 4 * 1024
JSON_MIN_UTILIZATION = 0.25
JSON_MAX_STRIKES = 4
# valyala/bytebufferpool: 20 size classes from 2**6 = 64 B ("a CPU cache line")
# to 2**25 = 32 MiB, recalibrated after 42 000 returns into one class, keeping
# the classes that make up 95 % of returns.
CALIBRATE_MIN_BITS = 6
CALIBRATE_STEPS = 20
CALIBRATE_CALLS = 42_000
CALIBRATE_PERCENTILE = 0.95


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's answer for one returned buffer.

    Attributes:
        keep: whether the pool may keep the buffer.
        strikes: the buffer's strike count from now on (0 for stateless rules).
    """

    keep: bool
    strikes: int = 0


# Shared answers of the stateless rules: no allocation on the put path.
KEEP = Verdict(True, 0)
DROP = Verdict(False, 0)


@runtime_checkable
class RetentionPolicy(Protocol):
    """Decides on each return whether a buffer stays in the pool."""

    def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
        """Judge a returned buffer.

        Args:
            capacity: bytes the buffer holds (what keeping it costs).
            used: its high-water length since it was handed out.
            strikes: its strike count so far (0 for a new buffer).

        Returns:
            Whether to keep it and its new strike count.
        """
        ...


class KeepAll:
    """Keep every buffer: Go's ``sync.Pool`` as it is.

    Worst case: unbounded, the golang/go#23199 leak. Use it only when every
    buffer costs about the same (fixed-size buffers), as net/http does.
    """

    def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
        """Always keep."""
        return KEEP

    def __repr__(self) -> str:
        return "KeepAll()"


class MaxCapacity:
    """Drop a buffer whose capacity exceeds ``limit`` bytes: the ``fmt`` rule.

    Source: ``src/fmt/print.go`` drops printer buffers with ``cap > 64*1024``
    (golang/go#23199); the comparison is strictly greater-than.
    Worst case: every idle buffer holds ``limit`` bytes while callers use one
    byte of each; large requests re-allocate every time (VictoriaMetrics#8510).

    Args:
        limit: the largest capacity kept, in bytes (default 64 KiB).

    Raises:
        ValueError: ``limit`` is negative.
        TypeError: ``limit`` is not an int.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int = FMT_MAX_CAPACITY) -> None:
        self.limit = _non_negative_int("limit", limit)

    def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
        """Keep when ``capacity <= limit``."""
        return KEEP if capacity <= self.limit else DROP

    def __repr__(self) -> str:
        return f"MaxCapacity(limit={self.limit})"


class Utilization:
    """Drop a buffer that keeps coming back underused: the ``encoding/json`` v2 rule.

    Source: ``encoding/json/jsontext/pools.go`` (``bufferedEncoderPool``):
    a buffer of at most ``small`` bytes is always kept; one that was at least
    ``min_ratio`` used is kept and its strikes reset; otherwise it is kept with
    one more strike, until it has ``max_strikes``, and then dropped.
    Worst case: utilization of ``min_ratio / (1 + max_strikes)`` — 5 % with the
    defaults — for buffers above ``small``.

    Args:
        small: capacity always kept, in bytes (default 4 KiB).
        min_ratio: share of the capacity that counts as used (default 0.25).
        max_strikes: underused returns tolerated in a row (default 4).

    Raises:
        ValueError: ``small`` or ``max_strikes`` negative, ``min_ratio`` not in (0, 1].
    """

    __slots__ = ("max_strikes", "min_ratio", "small")

    def __init__(
        self,
        small: int = JSON_SMALL_CAPACITY,
        min_ratio: float = JSON_MIN_UTILIZATION,
        max_strikes: int = JSON_MAX_STRIKES,
    ) -> None:
        self.small = _non_negative_int("small", small)
        if isinstance(min_ratio, bool) or not isinstance(min_ratio, int | float):
            raise TypeError(f"min_ratio must be a number, got {type(min_ratio).__name__}")
        if not 0 < min_ratio <= 1:
            raise ValueError(f"min_ratio must be in (0, 1], got {min_ratio!r}")
        self.min_ratio = float(min_ratio)
        self.max_strikes = _non_negative_int("max_strikes", max_strikes)

    def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
        """Keep small or well-used buffers; count strikes against the rest."""
        # int(): Go compares cap/4 <= len in integer arithmetic (a 5001-byte
        # buffer with 1250 bytes used counts as used); exact for 0.25.
        if capacity <= self.small or used >= int(capacity * self.min_ratio):
            return KEEP
        if strikes < self.max_strikes:
            return Verdict(True, strikes + 1)
        return DROP

    def __repr__(self) -> str:
        return (
            f"Utilization(small={self.small}, min_ratio={self.min_ratio}, "
            f"max_strikes={self.max_strikes})"
        )


class Calibrated:
    """Keep buffers up to the size most returns need: bytebufferpool's calibration.

    Every return is counted in its size class (``64 << k`` bytes, 20 classes,
    the last one open-ended at 32 MiB). When one class has seen
    ``calibrate_calls`` returns, the policy recalibrates: :attr:`default_size`
    becomes the most frequent class (a new buffer starts with that capacity)
    and :attr:`max_size` the largest class among those making up ``percentile``
    of returns, counted from the most frequent. Until the first calibration
    every buffer is kept.

    Difference from the original (valyala/bytebufferpool issue #15): the class
    a return counts in comes from the buffer's ``used`` high-water length, not
    its length at return, so a caller that resets before returning does not
    calibrate the pool down to 64 B.

    Worst case: idle buffers of up to ``max_size`` each; when the size mix
    shifts up, buffers above the old ``max_size`` are dropped (re-allocated)
    until a class reaches ``calibrate_calls`` again.

    Args:
        calibrate_calls: returns into one class that trigger a recalibration.
        percentile: share of returns whose classes are kept (0, 1].

    Raises:
        ValueError: ``calibrate_calls`` < 1 or ``percentile`` not in (0, 1].
    """

    def __init__(
        self,
        calibrate_calls: int = CALIBRATE_CALLS,
        percentile: float = CALIBRATE_PERCENTILE,
    ) -> None:
        calls = _non_negative_int("calibrate_calls", calibrate_calls)
        if calls < 1:
            raise ValueError(f"calibrate_calls must be at least 1, got {calibrate_calls!r}")
        if isinstance(percentile, bool) or not isinstance(percentile, int | float):
            raise TypeError(f"percentile must be a number, got {type(percentile).__name__}")
        if not 0 < percentile <= 1:
            raise ValueError(f"percentile must be in (0, 1], got {percentile!r}")
        self.calibrate_calls = calls
        self.percentile = float(percentile)
        # Returns per size class. ByteBufferPool.put counts into this list
        # itself (admit inlined there); calibrate() replaces it whole.
        self._calls = [0] * CALIBRATE_STEPS
        self._calibrating = threading.Lock()
        self.default_size = 0
        """Capacity a new buffer should start with (0 until calibrated)."""
        self.max_size = 0
        """Largest capacity kept (0 until calibrated: keep everything)."""
        self.calibrations = 0
        """How many times the policy recalibrated."""

    @staticmethod
    def size_class(used: int) -> int:
        """Index of the class for ``used`` bytes: smallest ``64 << k`` ≥ used, capped."""
        index = ((used - 1) >> CALIBRATE_MIN_BITS).bit_length() if used > 0 else 0
        return min(index, CALIBRATE_STEPS - 1)

    def observe(self, used: int) -> None:
        """Count one return of a buffer whose high-water length was ``used``."""
        index = self.size_class(used)
        # A plain read-add-store: under contention an increment may be lost,
        # which only delays a calibration; it never corrupts the counts.
        count = self._calls[index] + 1
        self._calls[index] = count
        if count > self.calibrate_calls:
            self.calibrate()

    def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
        """Count the return, then keep it unless it is above :attr:`max_size`."""
        # observe(used) inlined: admit runs on every put of a calibrated pool,
        # and two nested calls cost more than the rest of the decision.
        index = ((used - 1) >> CALIBRATE_MIN_BITS).bit_length() if used > 0 else 0
        if index >= CALIBRATE_STEPS:
            index = CALIBRATE_STEPS - 1
        calls = self._calls
        count = calls[index] + 1
        calls[index] = count
        if count > self.calibrate_calls:
            self.calibrate()
        limit = self.max_size
        return KEEP if limit == 0 or capacity <= limit else DROP

    def calibrate(self) -> None:
        """Recompute :attr:`default_size` and :attr:`max_size` from the counts.

        Concurrent callers do not wait: one recalibrates, the others return.
        """
        if not self._calibrating.acquire(blocking=False):
            return
        try:
            counts = self._calls
            self._calls = [0] * CALIBRATE_STEPS
            total = sum(counts)
            if total == 0:
                return
            # Most frequent first; ties go to the smaller class so the result
            # does not depend on sort order (bytebufferpool's sort is unstable).
            ranked = sorted(range(CALIBRATE_STEPS), key=lambda i: (-counts[i], i))
            default_size = 1 << (ranked[0] + CALIBRATE_MIN_BITS)
            budget = int(total * self.percentile)
            seen = 0
            max_size = 0
            for index in ranked:
                # Stop at the first empty class too: with percentile=1 the
                # budget is never exceeded and empty classes (up to 32 MiB)
                # would otherwise set max_size.
                if seen > budget or counts[index] == 0:
                    break
                seen += counts[index]
                max_size = max(max_size, 1 << (index + CALIBRATE_MIN_BITS))
            self.default_size = default_size
            self.max_size = max_size
            self.calibrations += 1
        finally:
            self._calibrating.release()

    def __repr__(self) -> str:
        return (
            f"Calibrated(default_size={self.default_size}, max_size={self.max_size}, "
            f"calibrations={self.calibrations})"
        )


def accept_by_capacity(
    policy: RetentionPolicy, capacity: Callable[[Any], int] = len
) -> Callable[[Any], bool]:
    """Turn a stateless policy into an ``accept`` guard for :class:`poolkit.ObjectPool`.

    ``used`` is taken to equal ``capacity`` (an object pool cannot see how much
    of an object was used), so only capacity rules (:class:`MaxCapacity`) are
    meaningful here.

    Args:
        policy: the policy to ask.
        capacity: how to measure an object (default ``len``).

    Returns:
        ``accept(obj) -> bool``.

    Raises:
        TypeError: ``policy`` has no ``admit`` method, or ``capacity`` is not
            callable (refused here rather than at the pool's first put).
    """
    policy = check_policy("policy", policy)
    check_callable("capacity", capacity)

    def accept(obj: Any) -> bool:
        size = capacity(obj)
        return policy.admit(size, size).keep

    return accept


def check_policy(name: str, value: object) -> RetentionPolicy:
    """``value`` if it is a :class:`RetentionPolicy` (has a callable ``admit``).

    Raises:
        TypeError: it is not, naming the parameter ``name``.
    """
    if not callable(getattr(value, "admit", None)):
        raise TypeError(
            f"{name} must be a RetentionPolicy (an object with admit(capacity, used, "
            f"strikes)), got {type(value).__name__} {value!r}"
        )
    return value  # type: ignore[return-value]


def _non_negative_int(name: str, value: object) -> int:
    return check_int(name, value, minimum=0)
