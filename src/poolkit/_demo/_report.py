"""The demo's plumbing: context, sections, charts and the Markdown report.

Charts need matplotlib (``poolkit[cli]``). Without it the demo says so before
it runs anything, and writes the report with its tables and findings only.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from poolkit._progress import Progress
from poolkit._table import format_table

__all__ = [
    "NO_CHARTS",
    "OPTIONAL_PARTS",
    "PARTS",
    "DemoContext",
    "Section",
    "charts_available",
    "run_demo",
]

# Part name -> module (in this package) defining run(ctx) -> Section. Ordered as
# the tour goes; later families add their part here.
PARTS: dict[str, str] = {
    "buffers": "poolkit._demo.buffers",
    "connections": "poolkit._demo.connections",
    "sqlite": "poolkit._demo.sqlite",
    "workers": "poolkit._demo.workers",
    "observe": "poolkit._demo.observe",
}
# Said on the terminal before the run and in the report, when matplotlib is missing.
NO_CHARTS = (
    "charts are not drawn: matplotlib is not installed (pip install 'poolkit[cli]'); "
    "the report has the tables and findings"
)
# Parts run only when named (``poolkit demo scaleout``): they need more than
# the standard library (redis-server, distributed) or take minutes.
OPTIONAL_PARTS: dict[str, str] = {
    "scaleout": "poolkit._demo.scaleout",
}


@dataclass
class Section:
    """What one part of the demo found.

    Attributes:
        title: the section heading.
        intro: Markdown paragraph: what the workload is and why it matters.
        headers: column titles of the side-by-side table.
        rows: the table's rows.
        findings: one-line conclusions, printed and written to the report.
        charts: (file name, caption) of PNG charts in the report folder.
    """

    title: str
    intro: str
    headers: list[str]
    rows: list[list[object]]
    findings: list[str] = field(default_factory=list)
    charts: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DemoContext:
    """What a part receives.

    Attributes:
        out_dir: the report folder (created).
        quick: run a smaller workload (tests use it).
        stream: where progress is drawn.
        charts: draw the charts (False without matplotlib: the chart methods
            then only return the file name they would have written).
    """

    out_dir: Path
    quick: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    charts: bool = True

    def progress(self, label: str, total: int) -> Progress:
        """A progress line for a step of ``total`` units."""
        return Progress(label, total, stream=self.stream)

    def line_chart(
        self,
        file_name: str,
        *,
        title: str,
        xlabel: str,
        ylabel: str,
        series: dict[str, tuple[Sequence[float], Sequence[float]]],
        marks: Sequence[tuple[float, str]] = (),
    ) -> str:
        """Draw one line per series into ``out_dir/file_name``; return the name.

        ``marks`` are ``(x, text)``: a dashed vertical line at ``x``, labelled,
        for an event the lines react to (a calibration, say).
        """
        if not self.charts:
            return file_name
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        for label, (xs, ys) in series.items():
            ax.plot(list(xs), list(ys), label=label, linewidth=2)
        right_end = max((max(xs, default=0) for xs, _ in series.values()), default=0)
        for x, text in marks:
            ax.axvline(x, color="grey", linestyle="--", linewidth=1)
            left = x > right_end / 2  # the text goes on the side with more room
            ax.annotate(
                text,
                xy=(x, 0.55),
                xycoords=("data", "axes fraction"),
                xytext=(-6 if left else 6, 0),
                textcoords="offset points",
                ha="right" if left else "left",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9},
            )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out_dir / file_name)
        plt.close(fig)
        return file_name

    def bar_chart(
        self,
        file_name: str,
        *,
        title: str,
        ylabel: str,
        groups: Sequence[str],
        series: dict[str, Sequence[float]],
        log: bool = False,
        value_format: str | None = None,
    ) -> str:
        """Draw grouped bars (one bar per series in each group); return the name.

        ``log`` puts the values on a log scale (for bars orders of magnitude
        apart); ``value_format`` (e.g. ``"{:,.1f} MiB"``) writes each bar's
        value above it.
        """
        if not self.charts:
            return file_name
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        width = 0.8 / max(1, len(series))
        for i, (label, values) in enumerate(series.items()):
            xs = [g + i * width for g in range(len(groups))]
            bars = ax.bar(xs, list(values), width=width, label=label)
            if value_format is not None:
                labels = [value_format.format(v) for v in values]
                ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
        if log:
            ax.set_yscale("log")
        ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
        ax.set_xticklabels(list(groups))
        ax.set_title(title)
        ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out_dir / file_name)
        plt.close(fig)
        return file_name


def charts_available() -> bool:
    """Whether matplotlib can be imported, so the demo can draw its charts."""
    return importlib.util.find_spec("matplotlib") is not None


def run_header(quick: bool, when: datetime.datetime | None = None) -> list[str]:
    """What the figures depend on: date, versions, machine, workload size."""
    from poolkit import __version__

    when = when or datetime.datetime.now().astimezone()
    machine = (
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count() or '?'} CPUs"
    )
    return [
        f"date: {when:%Y-%m-%d %H:%M %Z}".rstrip(),
        f"poolkit {__version__}, {platform.python_implementation()} {platform.python_version()}",
        f"machine: {machine}",
        "workloads: " + ("--quick (smaller, for a fast look)" if quick else "full size"),
    ]


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the demo draws its charts with matplotlib: install poolkit[cli] "
            "(pip install 'poolkit[cli]')"
        ) from exc
    matplotlib.use("Agg")  # no screen needed
    return importlib.import_module("matplotlib.pyplot")


def run_demo(
    out_dir: Path,
    *,
    parts: Sequence[str] | None = None,
    quick: bool = False,
    stream: TextIO | None = None,
    out: Callable[[str], None] = print,
    charts: bool | None = None,
) -> Path:
    """Run the demo parts and write the report.

    Args:
        out_dir: the report folder; created if missing.
        parts: which parts to run (default: every part of :data:`PARTS`, in
            tour order; :data:`OPTIONAL_PARTS` run only when named).
        quick: smaller workloads.
        stream: where progress is drawn (default: standard error).
        out: where the tables and findings are printed.
        charts: draw the charts (default: when matplotlib is installed; the
            run says so at once when it is not).

    Returns:
        The path of the written ``report.md``.

    Raises:
        ValueError: an unknown part name.
    """
    known = {**PARTS, **OPTIONAL_PARTS}
    chosen = list(PARTS) if not parts else list(parts)
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValueError(f"unknown demo part(s) {unknown}; choose from {list(known)}")
    draw = charts_available() if charts is None else charts
    header = run_header(quick)
    out("poolkit demo | " + " | ".join(header))
    if not draw:
        out(f"note: {NO_CHARTS}")
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out_dir=out_dir, quick=quick, stream=stream or sys.stderr, charts=draw)
    sections: list[Section] = []
    for name in chosen:
        module = importlib.import_module(known[name])
        out(f"\n== {name} ==")
        section: Section = module.run(ctx)
        sections.append(section)
        out(format_table(section.headers, section.rows))
        for finding in section.findings:
            out(f"  * {finding}")
    report = out_dir / "report.md"
    report.write_text(_markdown(sections, header=header, charts=draw), encoding="utf-8")
    out(f"\nreport written to {report}")
    return report


def _markdown(
    sections: Sequence[Section], *, header: Sequence[str] = (), charts: bool = True
) -> str:
    lines = ["# poolkit demo report", ""]
    lines += [f"- {line}" for line in header]
    if not charts:
        lines.append(f"- {NO_CHARTS}")
    lines.append("")
    for section in sections:
        lines += [f"## {section.title}", "", section.intro, ""]
        lines.append("| " + " | ".join(section.headers) + " |")
        lines.append("|" + "---|" * len(section.headers))
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in section.rows]
        lines.append("")
        lines += [f"- {finding}" for finding in section.findings]
        lines.append("")
        if charts:
            for file_name, caption in section.charts:
                lines += [f"![{caption}]({file_name})", "", f"*{caption}*", ""]
    return "\n".join(lines)
