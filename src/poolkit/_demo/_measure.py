"""What the demo parts measure the same way: memory, threaded timings, rounds of ways.

A *way* is one side of a comparison ("new connection each", "poolkit
ConnectionPool"): given a thread count it runs the part's workload and returns
the seconds it took and how many connections it opened. :func:`compare_ways`
runs every way at every thread count into the table rows the connection parts
print, and :func:`rate_chart` draws them.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from poolkit._bench import repeat, time_threads
from poolkit._demo._report import DemoContext

__all__ = [
    "Way",
    "compare_headers",
    "compare_ways",
    "rate_chart",
    "rates",
    "repeat",
    "rss_bytes",
    "run_child",
    "time_threads",
]

# threads -> (seconds, connections opened)
Way = Callable[[int], tuple[float, int]]
# Columns of the table compare_ways builds.
NAME, THREADS, COUNT, SECONDS, RATE, OPENED = range(6)


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


def compare_ways(
    ctx: DemoContext, label: str, count: int, thread_counts: Sequence[int], ways: dict[str, Way]
) -> list[list[object]]:
    """Run each way at each thread count, with a progress line.

    Returns:
        Rows of (way, threads, ``count``, seconds, ``count`` per second,
        connections opened).
    """
    rows: list[list[object]] = []
    with ctx.progress(label, len(thread_counts) * len(ways)) as progress:
        for threads in thread_counts:
            for name, way in ways.items():
                seconds, opened = way(threads)
                rows.append(
                    [name, threads, count, round(seconds, 3), round(count / seconds), opened]
                )
                progress.advance()
    return rows


def compare_headers(unit: str) -> list[str]:
    """Column titles of :func:`compare_ways` rows counting ``unit`` ("requests")."""
    return ["how", "threads", unit, "seconds", f"{unit}/s", "connections opened"]


def rates(rows: Sequence[Sequence[object]]) -> dict[tuple[str, int], float]:
    """``{(way, threads): rate}`` from rows of :func:`compare_ways`."""
    return {(str(r[NAME]), int(str(r[THREADS]))): float(str(r[RATE])) for r in rows}


def rate_chart(
    ctx: DemoContext, file_name: str, title: str, ylabel: str, rows: Sequence[Sequence[object]]
) -> str:
    """Bars of each way's rate (rows from :func:`compare_ways`), grouped by thread count."""
    thread_counts = list(dict.fromkeys(int(str(r[THREADS])) for r in rows))
    names = list(dict.fromkeys(str(r[NAME]) for r in rows))
    rate = rates(rows)
    return ctx.bar_chart(
        file_name,
        title=title,
        ylabel=ylabel,
        groups=[f"{t} thread{'s' if t > 1 else ''}" for t in thread_counts],
        series={name: [rate[(name, t)] for t in thread_counts] for name in names},
    )


def run_child(module: str, args: Sequence[object], what: str, timeout: float) -> dict[str, Any]:
    """Run ``python -m module *args`` (a part measuring one way in a fresh process).

    Returns:
        The JSON object the child prints on its last line of output.

    Raises:
        RuntimeError: the child failed (with its stderr, naming ``what``).
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result
