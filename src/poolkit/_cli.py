"""The ``poolkit`` command: ``poolkit demo``, ``poolkit bench`` and ``poolkit top``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poolkit import __version__

__all__ = ["main"]

# Where `poolkit bench` looks for benchmark modules when --bench-dir is not given:
# $POOLKIT_BENCH_DIR, the checkout this package runs from (an editable install
# keeps src/poolkit next to bench/), then the copy a wheel ships in the package.
_CHECKOUT_BENCH = Path(__file__).resolve().parents[2] / "bench"
_PACKAGED_BENCH = Path(__file__).resolve().parent / "_benchmarks"
# Text width of the descriptions and lists in --help (argparse's own is 80 - 2).
HELP_WIDTH = 78


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poolkit",
        description="poolkit: object, buffer, connection and worker pools for Python.",
    )
    parser.add_argument("--version", action="version", version=f"poolkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench,top}")

    demo = _command(sub, "demo", "parts", _demo_parts())
    demo.add_argument(
        "parts",
        nargs="*",
        help="parts to run (default: all but scaleout, which needs Redis; listed below)",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("poolkit-demo"), help="report folder (./poolkit-demo)"
    )
    demo.add_argument("--quick", action="store_true", help="smaller workloads")

    bench = _command(sub, "bench", "families", _bench_families())
    bench.add_argument("families", nargs="*", help="families to run (default: all; listed below)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write records as JSON")
    bench.add_argument("--quick", action="store_true", help="keep the run under a minute")
    bench.add_argument("--bench-dir", type=Path, help="folder with bench_<family>.py modules")

    summary, description = _COMMANDS["top"]
    top = sub.add_parser("top", help=summary, description=textwrap.fill(description, HELP_WIDTH))
    top.add_argument("url", help="the /metrics URL, e.g. http://127.0.0.1:9000/metrics")
    top.add_argument(
        "--interval", type=_positive(float), default=2.0, help="seconds between refreshes (2)"
    )
    how_long = top.add_mutually_exclusive_group()
    how_long.add_argument(
        "--count", type=_positive(int), metavar="N", help="refresh N times, then exit"
    )
    how_long.add_argument("--once", action="store_true", help="print one table and exit")
    return parser


def _positive(kind: type[float] | type[int]) -> Any:
    """An argparse type: a number of ``kind`` above 0."""

    def convert(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its errors
    return convert


# Each subcommand's one-line summary and description.
_COMMANDS = {
    "demo": (
        "guided tour: naive way vs poolkit way, with a report",
        "Run each family's workload the naive way and the poolkit way, print side-by-side "
        "tables and write a Markdown report with charts (charts need matplotlib: pip install "
        "'poolkit[cli]').",
    ),
    "bench": (
        "benchmarks side by side with peers, with ratios",
        "Run the benchmarks, each side by side with its peers in one process, and print a "
        "table with ratios. Peers that are not installed are skipped and listed (pip install "
        "'poolkit[bench]' installs them all).",
    ),
    "top": (
        "live table of a process's pools, read from its /metrics",
        "Scrape a /metrics endpoint (poolkit.integrations.prometheus) every --interval "
        "seconds and show one row per pool: in use / idle / max, waiting, timeouts, queued "
        "tasks, the p99 wait and tasks completed per second over the last interval. On a "
        "terminal the table is redrawn in place; otherwise tables follow one another.",
    ),
}


def _command(sub: Any, name: str, what: str, choices: dict[str, str]) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with its choices (parts, families), described."""
    summary, description = _COMMANDS[name]
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, HELP_WIDTH),
        epilog=_listing(what, choices),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _listing(what: str, items: dict[str, str]) -> str:
    """``--help``'s list of parts or families, one per line with its description."""
    if not items:
        return f"{what}: none found"
    width = max(map(len, items))
    lines = [f"{what}:"]
    for name, text in items.items():
        lines.append(
            textwrap.fill(
                text,
                HELP_WIDTH,
                initial_indent=f"  {name:<{width}}  ",
                subsequent_indent=" " * (width + 4),
            )
        )
    return "\n".join(lines)


def _demo_parts() -> dict[str, str]:
    from poolkit._bench import describe
    from poolkit._demo._report import OPTIONAL_PARTS, PARTS

    found = {
        name: importlib.util.find_spec(module)
        for name, module in {**PARTS, **OPTIONAL_PARTS}.items()
    }
    return {
        name: describe(Path(spec.origin)) if spec and spec.origin else ""
        for name, spec in found.items()
    }


def _bench_families() -> dict[str, str]:
    from poolkit._bench import describe, discover

    folder = _find_bench_dir(None)
    return {} if folder is None else {f: describe(p) for f, p in discover(folder).items()}


def _find_bench_dir(explicit: Path | None) -> Path | None:
    return next((c for c in _bench_candidates(explicit) if c.is_dir()), None)


def _bench_candidates(explicit: Path | None) -> list[Path]:
    if explicit:
        return [explicit]
    env = os.environ.get("POOLKIT_BENCH_DIR")
    return [*([Path(env)] if env else []), _CHECKOUT_BENCH, _PACKAGED_BENCH]


def _bench_dir(explicit: Path | None) -> Path:
    found = _find_bench_dir(explicit)
    if found is None:
        looked = [str(c) for c in _bench_candidates(explicit)]
        raise SystemExit(
            f"poolkit bench: no benchmark folder found (looked in {looked}); "
            "pass --bench-dir, or reinstall poolkit (its wheel ships the benchmarks)"
        )
    return found


def _cmd_bench(args: argparse.Namespace) -> int:
    from poolkit._bench import discover, format_records, not_installed, run_family

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
    print(format_records(records, not_installed()))
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


def _cmd_top(args: argparse.Namespace) -> int:
    from poolkit._top import TopError, run_top

    count = 1 if args.once else args.count
    try:
        run_top(args.url, interval=args.interval, count=count, out=sys.stdout)
    except TopError as exc:
        print(f"poolkit top: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C is how one leaves a live view
        return 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return _cmd_bench(args)
    if args.command == "top":
        return _cmd_top(args)
    return _cmd_demo(args)
