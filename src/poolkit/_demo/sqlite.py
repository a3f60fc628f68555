"""Demo part ``sqlite``: a SQLite file shared by threads, with and without a pool.

A key-value table in a WAL-mode SQLite file is queried by 1 and then 4 threads:
nine reads by primary key for each write. Without a pool every query opens its
own connection (what a handler that calls ``sqlite3.connect`` per request
does: open the file, read the schema, run, close); with
:func:`poolkit.adapters.dbapi.sqlite_pool` the threads share a few
connections, each opened once with WAL configured. Nothing to install: SQLite
is in the standard library.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from poolkit._demo._measure import (
    Way,
    compare_headers,
    compare_ways,
    rate_chart,
    rates,
    time_threads,
)
from poolkit._demo._report import DemoContext, Section
from poolkit.adapters import dbapi

__all__ = ["run"]

# Rows in the table: enough that reads hit different pages, small enough to
# set up in a few milliseconds.
ROWS = 1000
# One write per this many queries: a read-mostly web workload.
WRITE_EVERY = 10
# The concurrent round's threads, and the pool's max_size.
THREADS = 4


def _setup(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value {i}") for i in range(ROWS)))
    conn.commit()
    conn.close()


def _query(conn: sqlite3.Connection, n: int, rng: random.Random) -> None:
    key = rng.randrange(ROWS)
    if n % WRITE_EVERY == 0:
        conn.execute("UPDATE kv SET v = ? WHERE k = ?", (f"updated {n}", key))
        conn.commit()
    else:
        conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()


def _ways(path: str, queries: int) -> dict[str, Way]:
    """A connection opened per query, and sqlite_pool with THREADS connections."""

    def thread_work(threads: int, query: Callable[[int, random.Random], None]) -> float:
        def work(seed: int) -> None:
            rng = random.Random(seed)
            for n in range(queries // threads):
                query(n, rng)

        return time_threads(threads, work)

    def fresh(threads: int) -> tuple[float, int]:
        def query(n: int, rng: random.Random) -> None:
            conn = sqlite3.connect(path, timeout=dbapi.SQLITE_BUSY_TIMEOUT)
            try:
                # The pool's durability setting too, so only reuse differs.
                conn.execute("PRAGMA synchronous=NORMAL")
                _query(conn, n, rng)
            finally:
                conn.close()

        return thread_work(threads, query), queries // threads * threads

    def pooled(threads: int) -> tuple[float, int]:
        db = dbapi.sqlite_pool(path, max_size=THREADS, name="demo-sqlite")

        def query(n: int, rng: random.Random) -> None:
            with db.connection() as conn:
                _query(conn.raw, n, rng)

        try:
            seconds = thread_work(threads, query)
            return seconds, db.stats().created
        finally:
            db.close()

    return {"new connection per query": fresh, "poolkit sqlite_pool": pooled}


def run(ctx: DemoContext) -> Section:
    """Queries on a shared SQLite file: a connection per query vs a pool."""
    queries = 400 if ctx.quick else 8000
    with tempfile.TemporaryDirectory(prefix="poolkit-demo-") as tmp:
        path = str(Path(tmp) / "demo.db")
        _setup(path)
        rows = compare_ways(ctx, "sqlite: queries", queries, (1, THREADS), _ways(path, queries))
    labels = ["new connection per query", "poolkit sqlite_pool"]
    chart = rate_chart(
        ctx,
        "sqlite_throughput.png",
        f"{queries} queries on one SQLite file (1 write in {WRITE_EVERY})",
        "queries per second",
        rows,
    )
    by = rates(rows)
    ratios = [by[(labels[1], t)] / by[(labels[0], t)] for t in (1, THREADS)]
    return Section(
        title="SQLite: one file shared by threads, with and without a pool",
        intro=(
            f"A {ROWS}-row key-value table in a WAL-mode SQLite file; each query reads a "
            f"row by key, one in {WRITE_EVERY} updates one and commits. Without a pool "
            "every query opens and closes its own connection (SQLite then re-reads the "
            "schema each time); with `poolkit.adapters.dbapi.sqlite_pool` threads borrow "
            f"one of at most {THREADS} connections, opened once with WAL configured and "
            "rolled back clean on return. Both sides run with `synchronous=NORMAL`, so "
            "the difference is connection reuse alone."
        ),
        headers=compare_headers("queries"),
        rows=rows,
        findings=[
            f"one thread: the pool runs {ratios[0]:.1f}x the queries per second of a new "
            "connection per query",
            f"{THREADS} threads: {ratios[1]:.1f}x, with at most {THREADS} connections opened "
            "instead of one per query",
        ],
        charts=[(chart, "queries per second on a shared SQLite file, with and without the pool")],
    )
