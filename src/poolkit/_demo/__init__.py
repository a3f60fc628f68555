"""``poolkit demo``: a guided tour, naive way vs poolkit way, per pool family.

Each family contributes a *part*: a module in this package with a
``run(ctx: DemoContext) -> Section``. A part runs a real workload twice (the
naive way and the poolkit way), shows progress while it runs, and returns a
section: a side-by-side table for the terminal and the report, findings, and
charts drawn into the report folder. The report is Markdown (``report.md``)
with PNG charts, written to ``./poolkit-demo/`` by default.
"""

from __future__ import annotations

from poolkit._demo._report import DemoContext, Section, run_demo

__all__ = ["DemoContext", "Section", "run_demo"]
