"""The benchmark harness behind ``poolkit bench``.

Benchmarks live in the project's ``bench/`` folder, one module per family
(``bench/bench_buffers.py`` ...). A module declares ``FAMILY = "<name>"`` and a
``run(ctx: BenchContext) -> None`` that times poolkit and its peers *in the same
process* and reports each figure with :meth:`BenchContext.record`. Comparing in
one process on one machine is what makes the ratios meaningful; absolute numbers
from different runs are not.

A benchmark that needs a different process environment (for instance glibc's
``MALLOC_MMAP_THRESHOLD_``, read once at process start) calls
:meth:`BenchContext.run_in_child`, which re-imports its module in a child
interpreter with that environment and collects the child's records.

Peers are optional (``pip install 'poolkit[bench]'``): a benchmark asks
:func:`peer_installed` before it times one, and the table lists the peers that
were skipped because they are not installed, so a short table is never taken
for a complete one.
"""

from __future__ import annotations

import ast
import gc
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

from poolkit._table import format_table

__all__ = [
    "BenchContext",
    "Metric",
    "Record",
    "describe",
    "discover",
    "format_records",
    "not_installed",
    "peer_installed",
    "repeat",
    "run_family",
    "time_loop",
    "time_threads",
]

Metric = Literal["ns_per_op", "ops_per_s", "bytes"]
_METRICS: frozenset[str] = frozenset({"ns_per_op", "ops_per_s", "bytes"})
# The subject every ratio is taken against.
POOLKIT = "poolkit"
# What the ratio column means, per metric: which way is better and how it is taken.
RATIO_MEANING: dict[str, str] = {
    "ns_per_op": "time per operation, lower is better: the subject's / poolkit's",
    "ops_per_s": "operations per second, higher is better: poolkit's / the subject's",
    "bytes": "memory, lower is better: the subject's / poolkit's",
}

# Peers a benchmark wanted but could not import in this process: subject ->
# module. Filled by peer_installed, read by not_installed (and sent back to
# the parent by a run_in_child child).
_not_installed: dict[str, str] = {}


def peer_installed(subject: str, module: str) -> bool:
    """Whether the peer ``subject`` can be timed: its top-level ``module`` imports.

    A missing peer is noted, and ``poolkit bench`` lists it under the table as
    skipped because it is not installed.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        _not_installed.setdefault(subject, module)
    return found


def not_installed() -> dict[str, str]:
    """The peers skipped so far because they are not installed (subject -> module)."""
    return dict(_not_installed)


@dataclass(frozen=True)
class Record:
    """One measured figure: ``subject`` (``"poolkit"`` or a peer) on ``bench``."""

    bench: str
    subject: str
    metric: Metric
    value: float

    def to_json(self) -> dict[str, object]:
        """The record as the JSON object ``poolkit bench --json`` writes."""
        return asdict(self)


@dataclass
class BenchContext:
    """What a benchmark module's ``run`` receives.

    Attributes:
        quick: keep the whole run under a minute (fewer repeats and sizes).
        module_path: the benchmark module's file, for :meth:`run_in_child`.
        records: the figures recorded so far.
    """

    quick: bool
    module_path: Path
    records: list[Record] = field(default_factory=list)

    def record(self, bench: str, subject: str, metric: Metric, value: float) -> None:
        """Record one figure.

        Raises:
            ValueError: ``metric`` is not one of ns_per_op, ops_per_s, bytes.
        """
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
        self.records.append(Record(bench, subject, metric, float(value)))

    @property
    def repeat(self) -> int:
        """How many timed runs to take the best of."""
        return 3 if self.quick else 7

    def time_ns_per_op(
        self, loop: Callable[[int], object], number: int, *, collector: bool = False
    ) -> float:
        """Best-of-:attr:`repeat` nanoseconds per operation of ``loop(number)``.

        ``loop(n)`` must perform the operation ``n`` times itself, so the
        per-call overhead of the harness is paid once per run, not per op.
        ``collector``: as :func:`time_loop`'s.
        """
        return time_loop(loop, number, self.repeat, collector=collector)

    def include(self, file_name: str) -> None:
        """Run ``run(ctx)`` of the module ``file_name`` beside this one.

        A family's benchmark module uses it to gather parts kept in their own
        files; each part keeps its own module path for :meth:`run_in_child`.
        """
        self.records += run_family(self.module_path.parent / file_name, quick=self.quick)

    def run_in_child(self, function: str, env: Mapping[str, str]) -> None:
        """Run ``function(ctx)`` of this module in a child with extra ``env``.

        The child's records are appended to this context's.

        Raises:
            RuntimeError: the child failed; its standard error is included.
        """
        child_env = {**os.environ, **env}
        args = [
            sys.executable,
            "-m",
            "poolkit._bench",
            str(self.module_path),
            function,
            "--quick" if self.quick else "--full",
        ]
        done = subprocess.run(args, env=child_env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"benchmark child {function} of {self.module_path.name} exited with "
                f"{done.returncode}:\n{done.stderr}"
            )
        reply = json.loads(done.stdout)
        for item in reply["records"]:
            self.record(item["bench"], item["subject"], item["metric"], item["value"])
        for subject, module in reply["not_installed"].items():
            _not_installed.setdefault(subject, module)


def time_loop(
    loop: Callable[[int], object], number: int, repeat: int, *, collector: bool = False
) -> float:
    """Best of ``repeat`` runs of ``loop(number)``, in nanoseconds per op.

    The garbage collector is paused while timing, as ``timeit`` does, so a
    collection triggered by one subject is not billed to another. With
    ``collector=True`` it runs, as in a program, for a benchmark whose cost
    is partly the objects it keeps alive (the collector walks them); a full
    collection first leaves no earlier subject's garbage to bill.
    """
    if number <= 0 or repeat <= 0:
        raise ValueError(f"number and repeat must be positive, got {number} and {repeat}")
    loop(max(1, number // 10))  # warm caches and lazily built state
    was_enabled = gc.isenabled()
    if collector:
        gc.collect()
        gc.enable()
    else:
        gc.disable()
    try:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter_ns()
            loop(number)
            best = min(best, (time.perf_counter_ns() - start) / number)
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()
    return best


def time_threads(threads: int, work: Callable[[int], None]) -> float:
    """Seconds for ``threads`` threads to each run ``work(i)`` (``i``: 0, 1, ...).

    The threads are started first and released together, so thread start-up is
    not timed; the clock stops when the last one is done.
    """
    start_line = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        start_line.wait()
        work(i)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start_line.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def repeat(times: int, one: Callable[[], object]) -> Callable[[int], None]:
    """A thread's work for :func:`time_threads`: ``one()``, ``times`` times."""

    def work(_: int) -> None:
        for _ in range(times):
            one()

    return work


def discover(bench_dir: Path) -> dict[str, Path]:
    """Map each family name to its benchmark module in ``bench_dir``.

    A module ``bench_<family>.py`` belongs to ``<family>``.
    """
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir.glob("bench_*.py"))}


def describe(module: Path) -> str:
    """The first line of a module's docstring, without a leading label naming it in ``code``.

    Read from the source (no import), for ``--help``.
    """
    try:
        doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError):
        return ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    label, sep, rest = first.partition(": ")
    return rest.strip() if sep and "``" in label else first.strip()


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"poolkit_bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load benchmark module {path}")
    module = importlib.util.module_from_spec(spec)
    # Benchmark modules may import helper modules that sit beside them.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    return module


def run_family(path: Path, *, quick: bool, function: str = "run") -> list[Record]:
    """Import the benchmark module at ``path`` and run ``function(ctx)``."""
    module = _load(path)
    entry = getattr(module, function, None)
    if not callable(entry):
        raise RuntimeError(f"benchmark module {path} has no function {function}(ctx)")
    ctx = BenchContext(quick=quick, module_path=path)
    entry(ctx)
    return ctx.records


def format_records(records: Iterable[Record], skipped: Mapping[str, str] | None = None) -> str:
    """A table per benchmark with each subject's figure and its ratio to poolkit.

    ``poolkit ×`` says how many times better poolkit did than the subject: for
    ``ns_per_op`` and ``bytes`` (lower is better) it is ``subject / poolkit``,
    for ``ops_per_s`` (higher is better) ``poolkit / subject``. Above 1 means
    poolkit wins. Under the table: that meaning for each metric in it, and
    the ``skipped`` peers (subject -> module) that are not installed.
    """
    records = list(records)
    table = _table(records)
    metrics = sorted({r.metric for r in records})
    notes = ["", "poolkit x: how many times better poolkit did than the subject (above 1: "
             "poolkit wins; below 1: the subject wins); by metric:"]  # fmt: skip
    notes += [f"  {metric}: {RATIO_MEANING[metric]}" for metric in metrics]
    if skipped:
        peers = ", ".join(f"{subject} ({module})" for subject, module in sorted(skipped.items()))
        notes += [
            f"skipped, not installed: {peers}; pip install 'poolkit[bench]' to compare with them"
        ]
    return "\n".join([table, *notes])


def _table(records: list[Record]) -> str:
    by_bench: dict[str, list[Record]] = {}
    for rec in records:
        by_bench.setdefault(rec.bench, []).append(rec)
    rows: list[list[object]] = []
    for bench, recs in by_bench.items():
        ours = {r.metric: r.value for r in recs if r.subject == POOLKIT}
        for rec in recs:
            base = ours.get(rec.metric)
            if rec.subject == POOLKIT or base is None or base == 0 or rec.value == 0:
                ratio = "-"
            elif rec.metric == "ops_per_s":
                ratio = f"{base / rec.value:.2f}x"
            else:
                ratio = f"{rec.value / base:.2f}x"
            rows.append([bench, rec.subject, rec.metric, _human(rec.value, rec.metric), ratio])
    return format_table(["bench", "subject", "metric", "value", "poolkit x"], rows)


def _human(value: float, metric: str) -> str:
    if metric == "bytes":
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} B"
    if metric == "ops_per_s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} ns"


def _child_main(argv: list[str]) -> int:
    """Entry of :meth:`BenchContext.run_in_child`: print the records as JSON."""
    path, function, mode = Path(argv[0]), argv[1], argv[2]
    records = run_family(path, quick=mode == "--quick", function=function)
    reply = {"records": [r.to_json() for r in records], "not_installed": not_installed()}
    json.dump(reply, sys.stdout)
    return 0


if __name__ == "__main__":
    # Run in the module benchmarks import (poolkit._bench), not in this
    # __main__ copy of it, so the peers they note are the ones reported.
    from poolkit._bench import _child_main as child_main

    raise SystemExit(child_main(sys.argv[1:]))
