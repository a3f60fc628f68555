"""The demo's plumbing: context, sections, charts and the Markdown report."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from poolkit._progress import Progress
from poolkit._table import format_table

__all__ = ["OPTIONAL_PARTS", "PARTS", "DemoContext", "Section", "run_demo"]

# Part name -> module (in this package) defining run(ctx) -> Section. Ordered as
# the tour goes; later families add their part here.
PARTS: dict[str, str] = {
    "buffers": "poolkit._demo.buffers",
    "connections": "poolkit._demo.connections",
    "sqlite": "poolkit._demo.sqlite",
    "workers": "poolkit._demo.workers",
}
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
    """

    out_dir: Path
    quick: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)

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
    ) -> str:
        """Draw one line per series into ``out_dir/file_name``; return the name."""
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        for label, (xs, ys) in series.items():
            ax.plot(list(xs), list(ys), label=label, linewidth=2)
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
    ) -> str:
        """Draw grouped bars (one bar per series in each group); return the name."""
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        width = 0.8 / max(1, len(series))
        for i, (label, values) in enumerate(series.items()):
            xs = [g + i * width for g in range(len(groups))]
            ax.bar(xs, list(values), width=width, label=label)
        ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
        ax.set_xticklabels(list(groups))
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out_dir / file_name)
        plt.close(fig)
        return file_name


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
) -> Path:
    """Run the demo parts and write the report.

    Args:
        out_dir: the report folder; created if missing.
        parts: which parts to run (default: every part of :data:`PARTS`, in
            tour order; :data:`OPTIONAL_PARTS` run only when named).
        quick: smaller workloads.
        stream: where progress is drawn (default: standard error).
        out: where the tables and findings are printed.

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
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out_dir=out_dir, quick=quick, stream=stream or sys.stderr)
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
    report.write_text(_markdown(sections), encoding="utf-8")
    out(f"\nreport written to {report}")
    return report


def _markdown(sections: Sequence[Section]) -> str:
    lines = ["# poolkit demo report", ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.intro, ""]
        lines.append("| " + " | ".join(section.headers) + " |")
        lines.append("|" + "---|" * len(section.headers))
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in section.rows]
        lines.append("")
        lines += [f"- {finding}" for finding in section.findings]
        lines.append("")
        for file_name, caption in section.charts:
            lines += [f"![{caption}]({file_name})", "", f"*{caption}*", ""]
    return "\n".join(lines)
