"""``poolkit demo observe``: a pool under bursts, its /metrics scraped end to end."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from poolkit._demo import observe
from poolkit._demo._report import PARTS, DemoContext
from tests.optional import require


def test_observe_is_a_default_part() -> None:
    assert PARTS["observe"] == "poolkit._demo.observe"


def test_observe_reads_waits_and_timeouts_back_from_metrics_and_logs_one_timeout(
    tmp_path: Path,
) -> None:
    require("prometheus_client", "prometheus")
    require("matplotlib", "cli")  # the part draws its charts
    section = observe.run(DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO()))
    rows = {str(row[0]): row for row in section.rows}
    assert list(rows) == ["calm", "burst", "burst + batch job"]  # calm twice, one key
    assert len(section.rows) == len(observe.phases(True))
    batch = rows["burst + batch job"]
    # The batch job holds all 4 connections 3x as long as a request waits: the
    # requests queued behind it time out, and the scrapes saw the pool full.
    assert int(str(batch[5])) >= 1
    assert int(str(batch[4])) >= int(str(batch[5]))  # a timeout queued first
    assert batch[8] == observe.MAX_SIZE
    assert str(batch[7]).endswith(("µs", "ms", " s"))
    timeouts = sum(int(str(row[5])) for row in section.rows)
    finding = section.findings[1]
    assert finding.startswith(f"{timeouts} requests timed out")
    assert "WARNING poolkit.connections: orders-db" in finding
    assert "PoolTimeout after 0.1 s" in finding
    logged = int(finding.split("the pool logged ")[1].split()[0])
    assert 1 <= logged < max(2, timeouts)  # rate-limited: not one record per timeout
    assert "/metrics" in section.findings[3]
    assert f", {timeouts} gave up" in section.findings[2]
    for file_name, _ in section.charts:
        assert (tmp_path / file_name).stat().st_size > 0


def test_without_prometheus_client_the_part_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real(name, *a),
    )
    section = observe.run(DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO()))
    assert section.findings == [
        "observe skipped: needs prometheus-client: pip install 'poolkit[prometheus]' "
        "(or 'poolkit[cli]')"
    ]
    assert section.charts == []
