"""``poolkit demo buffers``: the leak and the waste, shown end to end."""

from __future__ import annotations

import io
import platform
from pathlib import Path

import pytest

from poolkit import __version__
from poolkit._demo import _report
from poolkit._demo import buffers as demo_buffers
from poolkit._demo._report import NO_CHARTS, DemoContext, run_demo
from tests.optional import require


def test_buffers_part_shows_the_leak_and_the_waste_avoided(tmp_path: Path) -> None:
    """The naive pool keeps the burst; poolkit drops it; size classes waste < 2x."""
    require("matplotlib", "cli")
    ctx = DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO())
    section = demo_buffers.run(ctx)
    naive = demo_buffers._run_leak_way(ctx, "naive", demo_buffers.LeakPlan.for_mode(True))
    ours = demo_buffers._run_leak_way(ctx, "poolkit", demo_buffers.LeakPlan.for_mode(True))
    burst = demo_buffers.LEAK_HANDLERS * demo_buffers.LeakPlan.for_mode(True).burst_bytes
    assert naive[-1][1] >= burst  # the naive pool still holds every grown buffer
    assert ours[-1][1] < 64 * 1024  # poolkit calibrated down to the 1 KiB stream
    requested, _, handed_out, _, _ = demo_buffers._run_waste(ctx)
    assert requested <= handed_out < 2 * requested
    assert len(section.charts) == 3
    for file_name, _ in section.charts:
        assert (tmp_path / file_name).stat().st_size > 0


def test_run_demo_writes_a_markdown_report(tmp_path: Path) -> None:
    require("matplotlib", "cli")
    printed: list[str] = []
    report = run_demo(
        tmp_path / "out", parts=["buffers"], quick=True, stream=io.StringIO(), out=printed.append
    )
    text = report.read_text()
    assert text.startswith("# poolkit demo report")
    assert "## Buffers: the leak and the waste" in text
    assert "buffers-leak-rss.png" in text
    assert any("naive" in line and "poolkit" in line for line in printed)


def test_report_says_when_where_and_how_big_the_run_was(tmp_path: Path) -> None:
    """Date, poolkit and Python versions, the machine and --quick: in the report and printed."""
    printed: list[str] = []
    report = run_demo(
        tmp_path, parts=["buffers"], quick=True, stream=io.StringIO(), out=printed.append,
        charts=False,
    )  # fmt: skip
    head = report.read_text().split("## ", 1)[0]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    for expected in ("- date: 2", f"poolkit {__version__}", python, "- machine: ", "--quick"):
        assert expected in head
    assert printed[0].startswith("poolkit demo | date: ")
    assert "--quick" in printed[0]


def test_without_matplotlib_the_demo_says_so_first_and_reports_without_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note comes before any workload runs; the report keeps tables and findings."""
    monkeypatch.setattr(_report, "charts_available", lambda: False)
    printed: list[str] = []
    report = run_demo(
        tmp_path, parts=["buffers"], quick=True, stream=io.StringIO(), out=printed.append
    )
    assert printed[1] == f"note: {NO_CHARTS}"
    assert printed[2] == "\n== buffers =="
    text = report.read_text()
    assert NO_CHARTS in text
    assert "| waste: bytes handed out |" in text
    assert ".png" not in text
    assert list(tmp_path.glob("*.png")) == []


def test_leak_finding_says_poolkit_holds_the_burst_until_it_calibrates(tmp_path: Path) -> None:
    section = demo_buffers.run(
        DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO(), charts=False)
    )
    assert "until its first calibration: every 42,000 returns" in section.findings[0]
