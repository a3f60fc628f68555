"""Demo part ``observe``: a pool under bursts of load, watched through its /metrics.

A SQLite connection pool (max_size 4) serves request threads in phases: calm,
a burst, calm again, then a burst during which a batch job holds every
connection for longer than a request may wait. The process exports its pools
with :mod:`poolkit.integrations.prometheus` on a loopback port; a sampler
scrapes that ``/metrics`` page as Prometheus would and reads it with
``poolkit top``'s parser, so every figure in the charts went through the
whole pipeline (stats → collector → HTTP → text → parser). The requests that
time out are logged by the pool on ``poolkit.connections``: one WARNING, the
rest of the burst's timeouts held back by the rate limit.

Needs prometheus-client (``pip install 'poolkit[prometheus]'``, in
``poolkit[cli]``); without it the part says so in one line.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from poolkit import ConnectionPool, PoolTimeout
from poolkit._demo._report import DemoContext, Section
from poolkit._top import by_pool, fetch, format_duration, interval_quantile

__all__ = ["run"]

# The pool's bound: a burst of CLIENTS_BURST threads queues behind it.
MAX_SIZE = 4
# How long a request may wait for a connection before PoolTimeout: a web
# handler's budget for the database, well above a calm wait.
REQUEST_TIMEOUT = 0.1
# How long a request holds its connection (the query, then the handler's work).
HOLD = 0.004
CLIENTS_CALM = 2
CLIENTS_BURST = 8
# A calm client's pause between requests; burst clients do not pause.
THINK = 0.01
WAIT = "poolkit_connection_acquire_wait_seconds"
# The report's headers.
HEADERS = ["phase", "clients", "seconds", "requests", "queued", "timeouts", "p50 wait"]
HEADERS += ["p99 wait", "peak in use"]
_runs = itertools.count(1)


@dataclass(frozen=True)
class Phase:
    """One stretch of load: ``clients`` request threads for ``seconds``;
    ``stuck`` seconds of a batch job holding every connection at its start."""

    label: str
    clients: int
    seconds: float
    stuck: float = 0.0


def phases(quick: bool) -> list[Phase]:
    """Calm, burst, calm, burst with a stuck batch job (shorter with ``quick``)."""
    scale = 0.25 if quick else 1.0
    return [
        Phase("calm", CLIENTS_CALM, 1.5 * scale),
        Phase("burst", CLIENTS_BURST, 2.0 * scale),
        Phase("calm", CLIENTS_CALM, 1.5 * scale),
        # The batch holds the connections 3x a request's patience: the
        # requests queued behind it time out.
        Phase("burst + batch job", CLIENTS_BURST, 2.5 * scale, stuck=3 * REQUEST_TIMEOUT),
    ]


@dataclass
class Scrape:
    """What one scrape of /metrics said of the demo's pool."""

    at: float
    in_use: float
    waiting: float
    buckets: dict[float, float]
    timeouts: float
    queued: float


@dataclass
class Sampler:
    """Scrapes ``url`` every ``every`` seconds in a thread, keeping the pool's figures."""

    url: str
    pool: str
    every: float
    start: float = field(default_factory=time.monotonic)
    scrapes: list[Scrape] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def scrape(self) -> Scrape:
        view = by_pool(fetch(self.url))[self.pool]
        got = Scrape(
            time.monotonic() - self.start,
            view.values.get("poolkit_connections_in_use", 0.0),
            view.values.get("poolkit_connections_waiting", 0.0),
            view.buckets.get(WAIT, {}),
            view.values.get("poolkit_connection_timeouts_total", 0.0),
            view.values.get("poolkit_connection_waits_total", 0.0),
        )
        self.scrapes.append(got)
        return got

    def run(self) -> None:
        while not self._stop.wait(self.every):
            self.scrape()

    def stop(self) -> None:
        self._stop.set()


Pool = ConnectionPool[sqlite3.Connection]


def _client(pool: Pool, until: float, think: float, counts: list[int]) -> None:
    """One request thread: acquire (with a timeout), query, hold, release; until ``until``."""
    while time.monotonic() < until:
        try:
            with pool.connection(timeout=REQUEST_TIMEOUT) as conn:
                conn.raw.execute("SELECT count(*) FROM orders").fetchone()
                time.sleep(HOLD)  # the handler's own work while it holds the connection
            counts[0] += 1
        except PoolTimeout:
            counts[1] += 1
        if think:
            time.sleep(think)


def _batch_job(pool: Pool, hold: float) -> None:
    """Takes every connection, then keeps them ``hold`` seconds (a report run in the hot path)."""
    held = [pool.acquire(timeout=10) for _ in range(MAX_SIZE)]
    time.sleep(hold)
    for conn in held:
        pool.release(conn)


def _run_phase(pool: Pool, phase: Phase) -> list[int]:
    """Run one phase's threads; return [requests served, timeouts]."""
    until = time.monotonic() + phase.seconds
    per_client = [[0, 0] for _ in range(phase.clients)]
    think = THINK if phase.clients == CLIENTS_CALM else 0.0
    threads = [
        threading.Thread(target=_client, args=(pool, until, think, counts)) for counts in per_client
    ]
    if phase.stuck:
        threads.insert(0, threading.Thread(target=_batch_job, args=(pool, phase.stuck)))
    for t in threads:
        t.start()
        if phase.stuck and t is threads[0]:
            time.sleep(0.02)  # the batch job is first in line for the connections
    for t in threads:
        t.join()
    return [sum(c[0] for c in per_client), sum(c[1] for c in per_client)]


class _Records(logging.Handler):
    """Keeps the records of one pool."""

    def __init__(self, pool: str) -> None:
        super().__init__(logging.WARNING)
        self.pool = pool
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "pool", None) == self.pool:
            self.records.append(record)


def _wait(seconds: float) -> str:
    return "-" if math.isnan(seconds) else format_duration(seconds)


def _unavailable() -> Section:
    note = "needs prometheus-client: pip install 'poolkit[prometheus]' (or 'poolkit[cli]')"
    return Section(
        title="Observability: a pool under bursts, watched through /metrics",
        intro=f"Skipped: this part {note}.",
        headers=["observe"],
        rows=[[f"skipped: {note}"]],
        findings=[f"observe skipped: {note}"],
    )


def run(ctx: DemoContext) -> Section:
    """Bursts of load on a pool, its /metrics scraped, the timeouts logged."""
    if importlib.util.find_spec("prometheus_client") is None:
        return _unavailable()
    from prometheus_client import CollectorRegistry

    from poolkit.adapters import dbapi
    from poolkit.integrations import prometheus

    n = next(_runs)
    # A fresh name per run in one process: the timeout log is rate-limited per pool name.
    name = "orders-db" if n == 1 else f"orders-db-{n}"
    plan = phases(ctx.quick)
    records = _Records(name)
    log = logging.getLogger("poolkit.connections")
    saved = log.level, log.propagate
    log.addHandler(records)
    # The demo shows the record itself; it is not also printed by logging's
    # last-resort handler in the middle of the progress line.
    log.setLevel(logging.WARNING)
    log.propagate = False
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "orders.db")
        db = dbapi.sqlite_pool(path, max_size=MAX_SIZE, name=name)
        try:
            with db.pool.connection() as conn:
                conn.raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
                conn.raw.executemany("INSERT INTO orders VALUES (?)", ((i,) for i in range(100)))
                conn.raw.commit()
            # Open every connection before the load: the calm phase's waits are
            # then waits for a connection, not for SQLite to open one.
            _batch_job(db.pool, 0.0)
            with prometheus.serve(0, registry=CollectorRegistry()) as server:
                rows, sampler, marks = _drive(ctx, db.pool, plan, server.url, name)
                url = server.url
        finally:
            db.close()
            log.removeHandler(records)
            log.setLevel(saved[0])
            log.propagate = saved[1]
    return _section(ctx, rows, sampler, marks, records.records, url)


def _drive(
    ctx: DemoContext, pool: Pool, plan: list[Phase], url: str, name: str
) -> tuple[list[list[object]], Sampler, list[tuple[float, str]]]:
    """Run the phases while the sampler scrapes; one table row per phase."""
    sampler = Sampler(url, name, every=0.05 if ctx.quick else 0.1)
    before = sampler.scrape()
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    rows: list[list[object]] = []
    marks: list[tuple[float, str]] = []
    try:
        with ctx.progress("observe: bursts of load", len(plan)) as progress:
            for phase in plan:
                marks.append((before.at, phase.label))
                served, _ = _run_phase(pool, phase)  # the timeouts: read from /metrics
                after = sampler.scrape()
                peak = max(
                    (s.in_use for s in sampler.scrapes if before.at <= s.at <= after.at),
                    default=0.0,
                )
                rows.append(
                    [
                        phase.label,
                        phase.clients,
                        round(after.at - before.at, 2),
                        served,
                        int(after.queued - before.queued),
                        int(after.timeouts - before.timeouts),
                        _wait(interval_quantile(0.5, after.buckets, before.buckets)),
                        _wait(interval_quantile(0.99, after.buckets, before.buckets)),
                        int(peak),
                    ]
                )
                before = after
                progress.advance()
    finally:
        sampler.stop()
        thread.join()
    return rows, sampler, marks


def _series(sampler: Sampler) -> list[tuple[float, float, float, float, float]]:
    """Per scrape interval: (seconds, p50 ms, p99 ms, in use, waiting)."""
    scrapes = sorted(sampler.scrapes, key=lambda s: s.at)
    return [
        (
            now.at,
            interval_quantile(0.5, now.buckets, prev.buckets) * 1000,
            interval_quantile(0.99, now.buckets, prev.buckets) * 1000,
            now.in_use,
            now.waiting,
        )
        for prev, now in itertools.pairwise(scrapes)
    ]


def _section(
    ctx: DemoContext,
    rows: list[list[object]],
    sampler: Sampler,
    marks: list[tuple[float, str]],
    records: list[logging.LogRecord],
    url: str,
) -> Section:
    points = _series(sampler)
    ts = [p[0] for p in points]

    def column(i: int) -> list[float]:
        return [p[i] for p in points]

    wait_chart = ctx.line_chart(
        "observe_wait.png",
        title=f"acquire wait per {sampler.every * 1000:.0f} ms scrape of /metrics",
        xlabel="seconds",
        ylabel="acquire wait (ms)",
        series={"p50": (ts, column(1)), "p99": (ts, column(2))},
        marks=marks,
    )
    use_chart = ctx.line_chart(
        "observe_in_use.png",
        title=f"connections in use (max_size {MAX_SIZE}) and callers waiting, from /metrics",
        xlabel="seconds",
        ylabel="count",
        series={"in use": (ts, column(3)), "waiting": (ts, column(4))},
        marks=marks,
    )
    queued = sum(int(str(r[4])) for r in rows)
    timeouts = sum(int(str(r[5])) for r in rows)
    logged = [r for r in records if "PoolTimeout" in r.getMessage()]
    line = (
        f"{logged[0].levelname} {logged[0].name}: {logged[0].getMessage()}"
        if logged
        else "(no PoolTimeout was logged)"
    )
    calm, burst = rows[0], rows[1]  # columns as HEADERS
    return Section(
        title="Observability: a pool under bursts, watched through /metrics",
        intro=(
            f"A SQLite pool (max_size {MAX_SIZE}, requests wait at most "
            f"{REQUEST_TIMEOUT * 1000:.0f} ms) serves {CLIENTS_CALM} request threads, then "
            f"bursts of {CLIENTS_BURST}; in the last burst a batch job holds every connection "
            f"for {3 * REQUEST_TIMEOUT * 1000:.0f} ms. The process serves its pools' metrics "
            "with `poolkit.integrations.prometheus.serve()` on loopback; every figure below "
            f"was read back from {len(sampler.scrapes)} scrapes of that `/metrics` page "
            "(`poolkit top URL` shows the same table live). The waits are per phase, "
            "from the `poolkit_connection_acquire_wait_seconds` histogram's buckets."
        ),
        headers=HEADERS,
        rows=rows,
        findings=[
            f"p99 acquire wait of the requests served: {calm[7]} calm, {burst[7]} in the "
            f"burst of {CLIENTS_BURST} threads (in use peaked at {burst[8]} of {MAX_SIZE}); "
            "timeouts are counted apart (poolkit_connection_timeouts_total), not in the "
            "histogram: alert on both",
            f"{timeouts} requests timed out ({rows[-1][5]} behind the batch job); the pool "
            f"logged {len(logged)} WARNING for them (rate-limited per pool): {line}",
            f"of the {queued} acquisitions that queued at the limit, {timeouts} gave up "
            f"({rows[1][5]} in the burst without the batch job): a waiter that has waited "
            "1 ms is handed the next connection that comes back, ahead of callers looping "
            "release/acquire, so under saturation requests share the wait instead of a few "
            "waiting out their timeout (connections/_core.py); poolkit_connection_waits_total "
            "and _timeouts_total show the queueing the percentiles leave out",
            f"metrics served at {url} while the part ran (prometheus-client text format, "
            "label pool)",
        ],
        charts=[
            (wait_chart, "acquire wait p50/p99 per scrape, from /metrics"),
            (use_chart, "connections in use and callers waiting, from /metrics"),
        ],
    )
