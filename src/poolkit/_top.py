"""``poolkit top URL``: every pool of a process, live, read from its ``/metrics``.

The process exports its pools with :mod:`poolkit.integrations.prometheus`;
``top`` scrapes the endpoint every ``interval`` seconds and prints one row per
pool (label ``pool``): in use / idle / max, waiting, the p99 wait, timeouts,
queued tasks and tasks completed per second. The wait and the rate are over
the last interval (the first refresh shows the wait since the pool started,
and no rate yet). On a terminal each refresh redraws the screen (plain ANSI);
otherwise the tables follow one another, for a log or a pipe.

The page is read with :mod:`poolkit._exposition` (no dependency). Which
metrics fill which column, for every kind of pool, is the table
:data:`COLUMNS`: a worker pool's "in use" is its running tasks, a buffer
pool's "max" its ``max_idle``.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from poolkit._exposition import Sample, parse, quantile
from poolkit._table import format_table

__all__ = ["COLUMNS", "HEADERS", "PoolView", "TopError", "by_pool", "fetch"]
__all__ += ["format_duration", "interval_quantile", "run_top"]

# Column -> the metrics (first found wins) that fill it, across the families.
COLUMNS: dict[str, tuple[str, ...]] = {
    "in use": ("poolkit_connections_in_use", "poolkit_workers_running"),
    "idle": ("poolkit_connections_idle", "poolkit_workers_idle", "poolkit_buffers_idle"),
    "max": ("poolkit_connections_max", "poolkit_workers_max", "poolkit_buffers_max_idle"),
    "waiting": ("poolkit_connections_waiting", "poolkit_workers_waiting"),
    "timeouts": ("poolkit_connection_timeouts_total", "poolkit_tasks_timed_out_total"),
    "queued": ("poolkit_tasks_queued",),
}
# The histogram of the "p99 wait" column: a connection's acquire wait, a task's queue wait.
WAITS = ("poolkit_connection_acquire_wait_seconds", "poolkit_task_queue_wait_seconds")
# The counter of the "done/s" column.
DONE = "poolkit_tasks_completed_total"
# A pool's kind, from the first of its metrics' prefixes found.
KINDS = {"poolkit_connection": "connections", "poolkit_workers": "workers"}
KINDS |= {"poolkit_tasks": "workers", "poolkit_buffers": "buffers"}
HEADERS = ["pool", "kind", *COLUMNS, "p99 wait", "done/s"]
# Seconds a scrape may take before top gives up on it.
FETCH_TIMEOUT = 10.0
# Clears a terminal and puts the cursor home: each refresh redraws from the top.
CLEAR = "\x1b[H\x1b[2J"


class TopError(Exception):
    """The endpoint cannot be read, or does not answer Prometheus text."""


@dataclass
class PoolView:
    """What one scrape says of one pool.

    Attributes:
        kind: ``connections``, ``workers`` or ``buffers`` (from its metrics' names).
        values: metric name -> value of the gauges and counters.
        buckets: histogram name -> {le: cumulative count}.
    """

    kind: str = ""
    values: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


def fetch(url: str, timeout: float = FETCH_TIMEOUT) -> list[Sample]:
    """The samples of the page at ``url``.

    Raises:
        TopError: unreachable, an HTTP error, or not Prometheus text.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        raise TopError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: a bad URL
        reason = getattr(exc, "reason", exc)
        raise TopError(f"cannot reach {url}: {reason}") from None
    try:
        return parse(text)
    except ValueError as exc:
        raise TopError(f"{url} did not answer Prometheus text: {exc}") from None


def by_pool(samples: list[Sample]) -> dict[str, PoolView]:
    """The ``poolkit_`` samples of a scrape, per ``pool`` label."""
    pools: dict[str, PoolView] = {}
    for s in samples:
        name = s.labels.get("pool")
        if name is None or not s.name.startswith("poolkit_"):
            continue
        pool = pools.setdefault(name, PoolView())
        if not pool.kind:
            pool.kind = next((k for p, k in KINDS.items() if s.name.startswith(p)), "")
        if s.name.endswith("_bucket") and "le" in s.labels:
            hist = pool.buckets.setdefault(s.name.removesuffix("_bucket"), {})
            hist[float(s.labels["le"])] = s.value
        else:
            pool.values[s.name] = s.value
    return pools


def _first(pool: PoolView, names: tuple[str, ...]) -> float | None:
    return next((pool.values[n] for n in names if n in pool.values), None)


def interval_quantile(
    q: float, now: dict[float, float], before: dict[float, float] | None = None
) -> float:
    """The ``q``-quantile (0..1) of the observations between two scrapes of a histogram.

    ``now`` and ``before`` are its ``{le: cumulative count}`` buckets (``before``
    None: since the start). NaN when nothing was observed in between.
    """
    old = before or {}
    return quantile(q, [(le, n - old.get(le, 0.0)) for le, n in now.items()])


def _p99(now: PoolView, before: PoolView | None) -> str:
    """The p99 wait over the interval (since the start on the first refresh)."""
    for name in WAITS:
        if name in now.buckets:
            old = before.buckets.get(name) if before else None
            seconds = interval_quantile(0.99, now.buckets[name], old)
            return "-" if math.isnan(seconds) else format_duration(seconds)
    return ""


def format_duration(seconds: float) -> str:
    """Seconds as ``1.23 s``, ``4.5 ms`` or ``80 µs``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def _rows(
    now: dict[str, PoolView], before: dict[str, PoolView] | None, elapsed: float
) -> list[list[str]]:
    rows = []
    for name, pool in now.items():
        old = before.get(name) if before else None
        done = pool.values.get(DONE)
        if done is None:
            rate = ""
        elif old is None or DONE not in old.values or elapsed <= 0:
            rate = "-"
        else:
            rate = f"{max(0.0, done - old.values[DONE]) / elapsed:.1f}"
        cells = [_number(_first(pool, names)) for names in COLUMNS.values()]
        rows.append([name, pool.kind, *cells, _p99(pool, old), rate])
    return rows


def run_top(
    url: str,
    *,
    interval: float,
    count: int | None,
    out: TextIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Scrape ``url`` every ``interval`` seconds and print a table of its pools.

    Args:
        url: the ``/metrics`` URL (``http://`` is assumed when no scheme is given).
        interval: seconds between refreshes.
        count: refreshes before returning (``None``: until interrupted).
        out: where the tables go; a terminal (``isatty()``) is redrawn in place.

    Raises:
        TopError: the first scrape failed (a later failure is shown in its
            refresh, and the next one tries again).
    """
    if "://" not in url:
        url = "http://" + url
    redraw = out.isatty()
    before: dict[str, PoolView] | None = None
    taken = 0.0
    refresh = 0
    while count is None or refresh < count:
        if refresh:
            sleep(interval)
        refresh += 1
        title = f"poolkit top  {url}  {time.strftime('%H:%M:%S')}  every {interval:g} s"
        try:
            samples = fetch(url)
        except TopError as exc:
            if before is None:
                raise
            body = f"scrape failed: {exc}"
        else:
            now, elapsed = by_pool(samples), clock() - taken
            taken += elapsed
            rows = _rows(now, before, elapsed)
            before = now
            body = format_table(HEADERS, rows) if rows else f"no poolkit pools at {url}"
        out.write((CLEAR if redraw else "") + title + "\n" + body + "\n" + ("" if redraw else "\n"))
        out.flush()
