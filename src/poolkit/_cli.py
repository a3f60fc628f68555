"""The ``poolkit`` command: ``poolkit demo`` and ``poolkit bench``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from poolkit import __version__

__all__ = ["main"]

# Where `poolkit bench` looks for benchmark modules when --bench-dir is not given:
# $POOLKIT_BENCH_DIR, ./bench, then the checkout this package is installed from
# (editable installs keep src/poolkit next to bench/).
_CHECKOUT_BENCH = Path(__file__).resolve().parents[2] / "bench"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poolkit",
        description="poolkit: object, buffer, connection and worker pools for Python.",
    )
    parser.add_argument("--version", action="version", version=f"poolkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")

    demo = sub.add_parser(
        "demo",
        help="guided tour: naive way vs poolkit way, with a report",
        description="Run each family's workload the naive way and the poolkit way, print "
        "side-by-side tables and write a Markdown report with charts.",
    )
    demo.add_argument(
        "parts", nargs="*", help="parts to run (default: all but scaleout, which needs Redis)"
    )
    demo.add_argument(
        "--out", type=Path, default=Path("poolkit-demo"), help="report folder (./poolkit-demo)"
    )
    demo.add_argument("--quick", action="store_true", help="smaller workloads")

    bench = sub.add_parser(
        "bench",
        help="benchmarks side by side with peers, with ratios",
        description="Run the benchmarks in bench/, each side by side with its peers in one "
        "process, and print a table with ratios.",
    )
    bench.add_argument("families", nargs="*", help="families to run (default: all)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write records as JSON")
    bench.add_argument("--quick", action="store_true", help="keep the run under a minute")
    bench.add_argument("--bench-dir", type=Path, help="folder with bench_<family>.py modules")
    return parser


def _bench_dir(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else []
    if not explicit:
        env = os.environ.get("POOLKIT_BENCH_DIR")
        candidates += [Path(env)] if env else []
        candidates += [Path.cwd() / "bench", _CHECKOUT_BENCH]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SystemExit(
        f"poolkit bench: no benchmark folder found (looked in {[str(c) for c in candidates]}); "
        "run it from a poolkit checkout or pass --bench-dir"
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from poolkit._bench import discover, format_records, run_family

    available = discover(_bench_dir(args.bench_dir))
    chosen = args.families or list(available)
    unknown = [f for f in chosen if f not in available]
    if unknown:
        print(
            f"poolkit bench: unknown family {unknown}; choose from {sorted(available)}",
            file=sys.stderr,
        )
        return 2
    records = []
    for family in chosen:
        print(f"running {family} benchmarks{' (quick)' if args.quick else ''} ...", file=sys.stderr)
        records += run_family(available[family], quick=args.quick)
    print(format_records(records))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        print(f"records written to {args.json}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from poolkit._demo import run_demo

    try:
        run_demo(args.out, parts=args.parts, quick=args.quick)
    except ValueError as exc:
        print(f"poolkit demo: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return _cmd_bench(args)
    return _cmd_demo(args)
