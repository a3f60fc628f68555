"""The ``poolkit`` command: bench harness, JSON records, demo plumbing, bad input."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from poolkit import _bench, _cli
from poolkit._bench import (
    BenchContext,
    Record,
    describe,
    discover,
    format_records,
    run_family,
    time_loop,
)
from poolkit._demo._report import Section, _markdown, run_demo
from poolkit._progress import Progress
from poolkit._table import format_table

FAKE_BENCH = """\"\"\"``poolkit bench toy``: a toy family for the tests.\"\"\"
from poolkit._bench import BenchContext, peer_installed

def run(ctx: BenchContext) -> None:
    ctx.record("toy", "poolkit", "ns_per_op", 50.0)
    ctx.record("toy", "peer", "ns_per_op", 200.0)
    if peer_installed("absent peer", "poolkit_no_such_module"):
        ctx.record("toy", "absent peer", "ns_per_op", 1.0)
    ctx.record("rate", "poolkit", "ops_per_s", 1000.0)
    ctx.record("rate", "peer", "ops_per_s", 250.0)
    ctx.run_in_child("child", {"POOLKIT_TOY": "42"})

def child(ctx: BenchContext) -> None:
    import os
    peer_installed("absent in the child", "poolkit_no_such_child_module")
    ctx.record("env", "poolkit", "bytes", float(os.environ["POOLKIT_TOY"]))
"""


@pytest.fixture
def bench_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_toy.py").write_text(FAKE_BENCH)
    monkeypatch.setattr(_bench, "_not_installed", {})  # this run's skipped peers only
    return folder


def test_bench_json_writes_the_documented_records(
    bench_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`poolkit bench --json` writes {bench, subject, metric, value} records."""
    out = tmp_path / "records.json"
    code = _cli.main(["bench", "toy", "--quick", "--bench-dir", str(bench_dir), "--json", str(out)])
    assert code == 0
    records = json.loads(out.read_text())
    assert {"bench": "toy", "subject": "peer", "metric": "ns_per_op", "value": 200.0} in records
    assert {"bench": "env", "subject": "poolkit", "metric": "bytes", "value": 42.0} in records
    assert all(set(r) == {"bench", "subject", "metric", "value"} for r in records)
    rows = {tuple(line.split()[:2]): line for line in capsys.readouterr().out.splitlines()}
    assert rows[("toy", "peer")].endswith("4.00x")  # 200 ns vs 50 ns
    assert rows[("rate", "peer")].endswith("4.00x")  # 1000/s vs 250/s


def test_bench_table_lists_the_peers_skipped_as_not_installed(
    bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short table is never taken for a full one: the missing peers are named under it."""
    assert _cli.main(["bench", "toy", "--quick", "--bench-dir", str(bench_dir)]) == 0
    out = capsys.readouterr().out
    assert "absent peer  " not in out.split("poolkit x:")[0]  # no row for it
    skipped = next(line for line in out.splitlines() if line.startswith("skipped"))
    assert skipped == (
        "skipped, not installed: absent in the child (poolkit_no_such_child_module), "
        "absent peer (poolkit_no_such_module); pip install 'poolkit[bench]' to compare with them"
    )


def test_bench_table_says_what_the_ratio_means_for_each_metric_in_it() -> None:
    table = format_records(
        [Record("a", "poolkit", "ns_per_op", 10.0), Record("b", "poolkit", "ops_per_s", 5.0)]
    )
    notes = table.split("\n\n", 1)[1].splitlines()
    assert notes[0].startswith("poolkit x: how many times better poolkit did than the subject")
    assert notes[1:] == [
        "  ns_per_op: time per operation, lower is better: the subject's / poolkit's",
        "  ops_per_s: operations per second, higher is better: poolkit's / the subject's",
    ]
    assert "skipped" not in table


def test_help_lists_the_bench_families_and_the_demo_parts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--help` says what can be chosen, each with its module's one-line description."""
    for command, names in (
        (
            "bench",
            [
                "adapters",
                "buffers",
                "connections",
                "processes",
                "scaleout",
                "sqlalchemy",
                "workers",
            ],
        ),
        ("demo", ["buffers", "connections", "sqlite", "workers", "observe", "scaleout"]),
    ):
        with pytest.raises(SystemExit):
            _cli.main([command, "--help"])
        listing = capsys.readouterr().out.split("families:" if command == "bench" else "parts:")[1]
        listed = [line.split()[0] for line in listing.splitlines() if line[2:3].strip()]
        assert listed == names
        assert "``" not in listing


def test_describe_reads_the_first_docstring_line_without_its_label(tmp_path: Path) -> None:
    module = tmp_path / "bench_x.py"
    module.write_text('"""``poolkit bench x``: what it times.\n\nMore."""\n')
    assert describe(module) == "what it times."
    module.write_text("X = 1\n")
    assert describe(module) == ""


def test_ratio_direction_depends_on_the_metric() -> None:
    """Lower-is-better metrics divide peer by poolkit; ops/s divides poolkit by peer."""
    table = format_records(
        [
            Record("a", "poolkit", "ns_per_op", 10.0),
            Record("a", "slow", "ns_per_op", 30.0),
            Record("b", "poolkit", "ops_per_s", 10.0),
            Record("b", "fast", "ops_per_s", 40.0),
        ]
    )
    assert "3.00x" in table
    assert "0.25x" in table


def test_unknown_bench_family_is_refused(
    bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["bench", "nope", "--bench-dir", str(bench_dir)]) == 2
    assert "unknown family ['nope']" in capsys.readouterr().err


def test_missing_bench_dir_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no benchmark folder found"):
        _cli.main(["bench", "--bench-dir", str(tmp_path / "absent")])


def test_discover_maps_family_names(bench_dir: Path) -> None:
    assert discover(bench_dir) == {"toy": bench_dir / "bench_toy.py"}


def test_record_rejects_unknown_metric(tmp_path: Path) -> None:
    ctx = BenchContext(quick=True, module_path=tmp_path / "x.py")
    with pytest.raises(ValueError, match="metric must be one of"):
        ctx.record("b", "poolkit", "seconds", 1.0)  # type: ignore[arg-type]


def test_failing_child_reports_its_stderr(tmp_path: Path) -> None:
    module = tmp_path / "bench_bad.py"
    module.write_text("def boom(ctx):\n    raise RuntimeError('kaboom')\n")
    ctx = BenchContext(quick=True, module_path=module)
    with pytest.raises(RuntimeError, match="kaboom"):
        ctx.run_in_child("boom", {})


def test_run_family_requires_the_entry_function(tmp_path: Path) -> None:
    module = tmp_path / "bench_empty.py"
    module.write_text("X = 1\n")
    with pytest.raises(RuntimeError, match="has no function run"):
        run_family(module, quick=True)


def test_time_loop_counts_per_operation() -> None:
    """time_loop divides by the number of operations, and refuses empty runs."""
    calls: list[int] = []
    assert time_loop(calls.append, 100, 2) >= 0
    assert calls[-1] == 100
    with pytest.raises(ValueError, match="must be positive"):
        time_loop(calls.append, 0, 1)


@pytest.mark.parametrize("collector", [False, True])
@pytest.mark.parametrize("enabled_before", [False, True])
def test_time_loop_runs_the_collector_only_when_asked_and_restores_it(
    collector: bool, enabled_before: bool
) -> None:
    seen: list[bool] = []

    def loop(n: int) -> None:
        seen.append(gc.isenabled())

    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        time_loop(loop, 10, 2, collector=collector)
        assert seen[1:] == [collector, collector]  # the timed runs, after the warm-up
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()


def test_format_table_aligns_and_checks_row_width() -> None:
    text = format_table(["name", "value"], [["a", "1.5 ns"], ["bbb", "10.0 ns"]])
    lines = text.splitlines()
    assert lines[0].startswith("name")
    assert lines[2].endswith(" 1.5 ns")
    with pytest.raises(ValueError, match="has 1 cells"):
        format_table(["a", "b"], [["only"]])


def test_progress_prints_tenths_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("work", 100, stream=stream) as progress:
        for _ in range(100):
            progress.advance()
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 12
    assert "100.0%" in lines[-1]
    with pytest.raises(ValueError, match="total must be positive"):
        Progress("x", 0)


def test_demo_refuses_unknown_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["demo", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown demo part" in capsys.readouterr().err
    with pytest.raises(ValueError, match="choose from"):
        run_demo(tmp_path, parts=["nope"])


def test_report_markdown_has_tables_findings_and_charts() -> None:
    section = Section(
        title="T",
        intro="why",
        headers=["way", "bytes"],
        rows=[["naive", 10], ["poolkit", 1]],
        findings=["poolkit keeps less"],
        charts=[("c.png", "a chart")],
    )
    text = _markdown([section])
    assert "| naive | 10 |" in text
    assert "- poolkit keeps less" in text
    assert "![a chart](c.png)" in text


def test_python_dash_m_poolkit_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolkit", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("poolkit ")
