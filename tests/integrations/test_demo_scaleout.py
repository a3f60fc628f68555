"""The ``scaleout`` demo part: optional, its Resque recovery and its Dask memory runs."""

from __future__ import annotations

from typing import Any

from poolkit._demo import scaleout
from poolkit._demo._report import OPTIONAL_PARTS, PARTS
from tests.integrations.dask_cluster import local_cluster


def test_scaleout_part_runs_only_when_named() -> None:
    assert OPTIONAL_PARTS["scaleout"] == "poolkit._demo.scaleout"
    assert "scaleout" not in PARTS


def test_a_killed_workers_jobs_are_recovered_and_none_is_lost(redis_url: str) -> None:
    result = scaleout.resque_recovery(redis_url, jobs=12, slow=0.5)
    assert result["lost"] == 0
    assert result["in_flight_at_kill"] >= 1  # the slow job at least
    assert result["recovered"] == result["in_flight_at_kill"]
    assert result["pruned"] >= 1


def test_each_dask_way_maps_everything_and_reports_memory(dask_installed: None) -> None:
    with local_cluster() as cluster:
        for way in scaleout.WAYS:
            result: dict[str, Any] = scaleout.dask_memory(cluster.scheduler_address, way, 300)
            assert result["seconds"] > 0
            assert result["peak_mib"] >= 0
