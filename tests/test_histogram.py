"""The shared histogram: fixed buckets, percentiles, sums, JSON and Prometheus forms."""

from __future__ import annotations

import json
import math

import pytest

from poolkit._histogram import BOUNDS, Histogram, Recorder


def _recorded(*seconds: float) -> Histogram:
    rec = Recorder()
    for s in seconds:
        rec.record(s)
    return rec.snapshot()


def test_each_duration_lands_in_the_first_bucket_whose_bound_holds_it() -> None:
    h = _recorded(0.0, BOUNDS[0], BOUNDS[0] * 1.01, 0.3, 61.0)
    assert h.counts[0] == 2  # 0 and the bound itself ("le" is inclusive)
    assert h.counts[1] == 1
    assert h.counts[BOUNDS.index(0.5)] == 1
    assert h.counts[-1] == 1  # above the last bound
    assert (h.count, h.max) == (5, 61.0)
    assert h.sum == pytest.approx(0.0 + BOUNDS[0] * 2.01 + 0.3 + 61.0)


def test_percentiles_interpolate_inside_the_bucket_and_never_pass_the_max() -> None:
    h = _recorded(*([0.002] * 98 + [0.2, 0.2]))
    # 98 % of the observations are in (0.001, 0.0025]
    assert 0.001 < h.percentile(50) <= 0.0025
    assert 0.1 < h.percentile(99) <= 0.2
    assert h.percentile(100) == 0.2
    assert Histogram().percentile(99) == 0.0


@pytest.mark.parametrize("q", [-1, 101, math.nan])
def test_a_percentile_outside_0_to_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        Histogram().percentile(q)


def test_zeros_added_at_snapshot_count_in_the_first_bucket() -> None:
    rec = Recorder()
    rec.record(0.5)
    h = rec.snapshot(zeros=3)
    assert (h.counts[0], h.count, h.sum) == (3, 4, 0.5)
    assert h.percentile(50) <= BOUNDS[0]


def test_histograms_add_up_and_cumulate_for_prometheus() -> None:
    total = _recorded(0.002, 1.5) + _recorded(0.002, 100.0)
    assert (total.count, total.max) == (4, 100.0)
    buckets = total.cumulative()
    assert buckets[-1] == (math.inf, 4)
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)
    assert dict(buckets)[0.0025] == 2


def test_to_dict_is_json_ready() -> None:
    data = _recorded(0.002, 0.004).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["count"] == 2
    assert data["buckets"][-1] == ["+Inf", 2]
    assert set(data) == {"count", "sum", "max", "p50", "p99", "buckets"}
