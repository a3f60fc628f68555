"""Retention policies: each rule against its Go source, its worst case and its edges."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolkit.buffers import (
    Calibrated,
    KeepAll,
    MaxCapacity,
    RetentionPolicy,
    Utilization,
    Verdict,
    accept_by_capacity,
)
from poolkit.buffers.retention import (
    CALIBRATE_CALLS,
    CALIBRATE_MIN_BITS,
    CALIBRATE_PERCENTILE,
    CALIBRATE_STEPS,
    DROP,
    FMT_MAX_CAPACITY,
    KEEP,
)

KIB = 1024
MIB = 1024 * 1024


# -- shared shape ------------------------------------------------------------------


@pytest.mark.parametrize("policy", [KeepAll(), MaxCapacity(), Utilization(), Calibrated()])
def test_every_policy_is_a_retention_policy(policy: RetentionPolicy) -> None:
    assert isinstance(policy, RetentionPolicy)
    assert isinstance(policy.admit(10, 10), Verdict)
    assert type(policy).__name__ in repr(policy)


def test_stateless_answers_are_shared_and_frozen() -> None:
    assert Verdict(True, 0) == KEEP
    assert Verdict(False, 0) == DROP
    with pytest.raises(AttributeError):
        KEEP.keep = False  # type: ignore[misc]


# -- KeepAll (sync.Pool) -------------------------------------------------------------


def test_keep_all_keeps_everything_even_the_23199_leak() -> None:
    assert KeepAll().admit(256 * MIB, 1) == KEEP


# -- MaxCapacity (fmt) -----------------------------------------------------------------


def test_max_capacity_default_is_fmt_64_kib() -> None:
    assert 64 * KIB == FMT_MAX_CAPACITY == MaxCapacity().limit


def test_max_capacity_is_strictly_greater_than() -> None:
    """fmt: ``if cap(p.buf) > 64*1024`` drops; exactly 64 KiB is kept."""
    policy = MaxCapacity()
    assert policy.admit(64 * KIB, 0).keep
    assert not policy.admit(64 * KIB + 1, 64 * KIB + 1).keep


def test_max_capacity_ignores_how_much_was_used() -> None:
    """Worst case: every idle buffer holds ``limit`` bytes while callers use one byte."""
    policy = MaxCapacity(limit=1000)
    assert policy.admit(1000, 1).keep
    assert not policy.admit(1001, 1001).keep


def test_max_capacity_limit_zero_keeps_only_empty_buffers() -> None:
    policy = MaxCapacity(limit=0)
    assert policy.admit(0, 0).keep
    assert not policy.admit(1, 1).keep


@pytest.mark.parametrize(
    ("limit", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_max_capacity_rejects_bad_limits(limit: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="limit"):
        MaxCapacity(limit=limit)  # type: ignore[arg-type]


# -- Utilization (encoding/json v2) --------------------------------------------------


def test_utilization_always_keeps_buffers_up_to_4_kib() -> None:
    policy = Utilization()
    assert policy.admit(4 * KIB, 0, strikes=4) == KEEP
    assert Verdict(True, 1) == policy.admit(4 * KIB + 1, 0)


def test_utilization_keeps_a_quarter_used_buffer_and_clears_its_strikes() -> None:
    policy = Utilization()
    assert policy.admit(64 * KIB, 16 * KIB, strikes=3) == KEEP


def test_utilization_quarter_is_integer_division_as_in_go() -> None:
    """json v2 keeps when ``cap/4 <= len`` in integers: cap 5001 -> 1250 bytes suffice."""
    policy = Utilization()
    assert policy.admit(5001, 1250) == KEEP
    assert Verdict(True, 1) == policy.admit(5001, 1249)


def test_utilization_drops_on_the_fifth_underused_return_in_a_row() -> None:
    policy = Utilization()
    strikes = 0
    for expected in (1, 2, 3, 4):
        verdict = policy.admit(MIB, 10, strikes)
        assert Verdict(True, expected) == verdict
        strikes = verdict.strikes
    assert policy.admit(MIB, 10, strikes) == DROP


def test_utilization_worst_case_is_five_percent() -> None:
    """25 % used once, then 4 returns using nothing: all kept; mean use is 25 % / 5."""
    policy = Utilization()
    capacity = MIB
    strikes = 0
    used_per_return = [capacity // 4, 0, 0, 0, 0]
    for used in used_per_return:
        verdict = policy.admit(capacity, used, strikes)
        assert verdict.keep
        strikes = verdict.strikes
    mean = sum(used_per_return) / (len(used_per_return) * capacity)
    assert mean == 0.05
    # The cycle can repeat for ever at exactly this utilization, never below:
    assert policy.admit(capacity, capacity // 4, strikes) == KEEP
    assert policy.admit(capacity, 0, strikes) == DROP


def test_utilization_parameters_are_honoured() -> None:
    policy = Utilization(small=0, min_ratio=0.5, max_strikes=0)
    assert policy.admit(100, 50) == KEEP
    assert policy.admit(100, 49) == DROP


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"small": -1}, ValueError, "small"),
        ({"max_strikes": -1}, ValueError, "max_strikes"),
        ({"min_ratio": 0}, ValueError, "min_ratio"),
        ({"min_ratio": 1.5}, ValueError, "min_ratio"),
        ({"min_ratio": "x"}, TypeError, "min_ratio"),
        ({"min_ratio": True}, TypeError, "min_ratio"),
    ],
)
def test_utilization_rejects_bad_parameters(
    kwargs: dict[str, object], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        Utilization(**kwargs)  # type: ignore[arg-type]


# -- Calibrated (bytebufferpool) -----------------------------------------------------


def test_calibrated_uses_bytebufferpool_constants() -> None:
    assert (
        CALIBRATE_MIN_BITS,
        CALIBRATE_STEPS,
        CALIBRATE_CALLS,
        CALIBRATE_PERCENTILE,
    ) == (6, 20, 42_000, 0.95)
    policy = Calibrated()
    assert (policy.calibrate_calls, policy.percentile) == (42_000, 0.95)


@pytest.mark.parametrize(
    ("used", "index"),
    [
        (0, 0),
        (1, 0),
        (64, 0),
        (65, 1),
        (128, 1),
        (129, 2),
        (1024, 4),
        (1536, 5),
        (16 * MIB, 18),
        (16 * MIB + 1, 19),
        (32 * MIB, 19),
        (1 << 40, 19),
    ],
)
def test_size_class_examples(used: int, index: int) -> None:
    assert index == Calibrated.size_class(used)


@given(st.integers(min_value=1, max_value=1 << 30))
def test_size_class_is_the_smallest_class_that_fits_capped_at_the_last(n: int) -> None:
    index = Calibrated.size_class(n)
    assert 0 <= index < CALIBRATE_STEPS
    size = 64 << index
    if index < CALIBRATE_STEPS - 1:
        assert size >= n
        assert index == 0 or (64 << (index - 1)) < n
    else:
        assert n > 64 << (CALIBRATE_STEPS - 2)  # only sizes above 16 MiB land here


def _calibrate(mix: dict[int, int], policy: Calibrated | None = None) -> Calibrated:
    """Observe ``count`` returns of each ``used`` size, then recalibrate."""
    policy = policy or Calibrated()
    for used, count in mix.items():
        for _ in range(count):
            policy.observe(used)
    policy.calibrate()
    return policy


@pytest.mark.parametrize(
    ("mix", "expected"),
    [
        ({1000: 90, 8000: 6, MIB: 4}, (1024, 8192)),  # 1 MB buffers dropped
        ({1000: 50, 2000: 46, MIB: 4}, (1024, 2048)),
        ({100: 60, 1500: 40}, (128, 2048)),  # new buffers start at 128 B (issue #15)
    ],
    ids=["90/6/4", "50/46/4", "60/40"],
)
def test_calibration_reproduces_the_worked_bytebufferpool_examples(
    mix: dict[int, int], expected: tuple[int, int]
) -> None:
    policy = _calibrate(mix)
    assert expected == (policy.default_size, policy.max_size)
    assert policy.calibrations == 1


def test_calibrated_drops_buffers_above_max_size_after_calibration() -> None:
    policy = _calibrate({1000: 90, 8000: 6, MIB: 4})
    assert policy.admit(8192, 10).keep
    assert not policy.admit(MIB, MIB).keep


def test_reset_before_put_does_not_calibrate_to_64_bytes() -> None:
    """bytebufferpool issue #15: the class comes from the high-water ``used``.

    A caller that resets before returning hands back length 0, but ``used``
    is the length the buffer reached, so calibration follows the real sizes.
    """
    policy = Calibrated()
    for _ in range(100):
        policy.admit(capacity=1024, used=1000)  # length at return would be 0
    policy.calibrate()
    assert (policy.default_size, policy.max_size) == (1024, 1024)


def test_length_at_return_would_have_calibrated_to_64_bytes() -> None:
    """The original flaw, reproduced by feeding the length at return (0)."""
    policy = _calibrate({0: 100})
    assert (policy.default_size, policy.max_size) == (64, 64)
    assert not policy.admit(1024, 0).keep


def test_calibrated_keeps_everything_until_the_first_calibration() -> None:
    policy = Calibrated()
    assert (policy.default_size, policy.max_size) == (0, 0)
    assert policy.admit(256 * MIB, 1).keep


def test_calibration_triggers_after_calibrate_calls_returns_into_one_class() -> None:
    policy = Calibrated(calibrate_calls=10)
    for _ in range(10):
        policy.admit(1000, 1000)
    assert policy.calibrations == 0
    policy.admit(1000, 1000)  # the 11th exceeds the threshold, as in bytebufferpool
    assert policy.calibrations == 1
    assert (policy.default_size, policy.max_size) == (1024, 1024)


def test_calibration_restarts_the_counts() -> None:
    policy = _calibrate({1000: 10})
    policy = _calibrate({MIB: 10}, policy)
    assert (policy.default_size, policy.max_size) == (MIB, MIB)
    assert policy.calibrations == 2


def test_calibration_ties_go_to_the_smaller_class() -> None:
    policy = _calibrate({1000: 50, 8000: 50})
    assert policy.default_size == 1024


def test_calibration_with_percentile_one_stops_at_the_largest_observed_class() -> None:
    policy = _calibrate({1000: 99, 8000: 1}, Calibrated(percentile=1.0))
    assert (policy.default_size, policy.max_size) == (1024, 8192)


def test_calibrate_with_no_returns_changes_nothing() -> None:
    policy = Calibrated()
    policy.calibrate()
    assert (policy.default_size, policy.max_size, policy.calibrations) == (0, 0, 0)


def test_concurrent_calibrate_calls_do_not_wait() -> None:
    policy = Calibrated()
    policy.observe(1000)
    policy._calibrating.acquire()  # another thread is recalibrating
    try:
        policy.calibrate()  # returns at once instead of blocking
        assert policy.calibrations == 0
    finally:
        policy._calibrating.release()


def test_calibrated_is_safe_under_threads() -> None:
    policy = Calibrated(calibrate_calls=500)

    def work() -> None:
        for i in range(5000):
            policy.admit(1024, 1000 if i % 10 else MIB)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert policy.calibrations > 0
    assert policy.default_size == 1024
    assert policy.max_size in (1024, MIB)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"calibrate_calls": 0}, ValueError, "calibrate_calls"),
        ({"calibrate_calls": -5}, ValueError, "calibrate_calls"),
        ({"calibrate_calls": 1.0}, TypeError, "calibrate_calls"),
        ({"percentile": 0}, ValueError, "percentile"),
        ({"percentile": 1.01}, ValueError, "percentile"),
        ({"percentile": "high"}, TypeError, "percentile"),
    ],
)
def test_calibrated_rejects_bad_parameters(
    kwargs: dict[str, object], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        Calibrated(**kwargs)  # type: ignore[arg-type]


# -- accept_by_capacity --------------------------------------------------------------


def test_accept_by_capacity_measures_with_len_by_default() -> None:
    accept = accept_by_capacity(MaxCapacity(limit=4))
    assert accept(b"1234")
    assert not accept(b"12345")


def test_accept_by_capacity_passes_the_size_as_capacity_and_used() -> None:
    seen: list[tuple[int, int]] = []

    class Spy:
        def admit(self, capacity: int, used: int, strikes: int = 0) -> Verdict:
            seen.append((capacity, used))
            return KEEP

    accept = accept_by_capacity(Spy(), capacity=lambda obj: 7)
    assert accept(object())
    assert seen == [(7, 7)]
