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
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


def _timed(queries: int, threads: int, one: Callable[[int, random.Random], None]) -> float:
    per_thread = queries // threads
    start_line = threading.Barrier(threads + 1)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start_line.wait()
        for n in range(per_thread):
            one(n, rng)

    workers = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
    for w in workers:
        w.start()
    start_line.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def _rounds(ctx: DemoContext, path: str, queries: int) -> list[list[object]]:
    rows: list[list[object]] = []
    with ctx.progress("sqlite: queries", 4) as progress:
        for threads in (1, THREADS):

            def fresh(n: int, rng: random.Random) -> None:
                conn = sqlite3.connect(path, timeout=dbapi.SQLITE_BUSY_TIMEOUT)
                try:
                    # The pool's durability setting too, so only reuse differs.
                    conn.execute("PRAGMA synchronous=NORMAL")
                    _query(conn, n, rng)
                finally:
                    conn.close()

            seconds = _timed(queries, threads, fresh)
            rows.append(
                ["new connection per query", threads, queries, round(seconds, 3),
                 round(queries / seconds), queries // threads * threads]
            )  # fmt: skip
            progress.advance()
            db = dbapi.sqlite_pool(path, max_size=THREADS, name="demo-sqlite")

            def pooled(
                n: int, rng: random.Random, db: dbapi.DBPool[sqlite3.Connection] = db
            ) -> None:
                with db.connection() as conn:
                    _query(conn.raw, n, rng)

            seconds = _timed(queries, threads, pooled)
            created = db.stats().created
            db.close()
            rows.append(
                ["poolkit sqlite_pool", threads, queries, round(seconds, 3),
                 round(queries / seconds), created]
            )  # fmt: skip
            progress.advance()
    return rows


def run(ctx: DemoContext) -> Section:
    """Queries on a shared SQLite file: a connection per query vs a pool."""
    queries = 400 if ctx.quick else 8000
    with tempfile.TemporaryDirectory(prefix="poolkit-demo-") as tmp:
        path = str(Path(tmp) / "demo.db")
        _setup(path)
        rows = _rounds(ctx, path, queries)
    by = {(str(r[0]), int(str(r[1]))): float(str(r[4])) for r in rows}
    labels = ["new connection per query", "poolkit sqlite_pool"]
    chart = ctx.bar_chart(
        "sqlite_throughput.png",
        title=f"{queries} queries on one SQLite file (1 write in {WRITE_EVERY})",
        ylabel="queries per second",
        groups=[f"{t} thread{'s' if t > 1 else ''}" for t in (1, THREADS)],
        series={label: [by[(label, t)] for t in (1, THREADS)] for label in labels},
    )
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
        headers=["how", "threads", "queries", "seconds", "queries/s", "connections opened"],
        rows=rows,
        findings=[
            f"one thread: the pool runs {ratios[0]:.1f}x the queries per second of a new "
            "connection per query",
            f"{THREADS} threads: {ratios[1]:.1f}x, with at most {THREADS} connections opened "
            "instead of one per query",
        ],
        charts=[(chart, "queries per second on a shared SQLite file, with and without the pool")],
    )
