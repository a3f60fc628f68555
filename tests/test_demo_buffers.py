"""``poolkit demo buffers``: the leak and the waste, shown end to end."""

from __future__ import annotations

import io
from pathlib import Path

from poolkit._demo import buffers as demo_buffers
from poolkit._demo._report import DemoContext, run_demo


def test_buffers_part_shows_the_leak_and_the_waste_avoided(tmp_path: Path) -> None:
    """The naive pool keeps the burst; poolkit drops it; size classes waste < 2x."""
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
    printed: list[str] = []
    report = run_demo(
        tmp_path / "out", parts=["buffers"], quick=True, stream=io.StringIO(), out=printed.append
    )
    text = report.read_text()
    assert text.startswith("# poolkit demo report")
    assert "## Buffers: the leak and the waste" in text
    assert "buffers-leak-rss.png" in text
    assert any("naive" in line and "poolkit" in line for line in printed)
