"""``poolkit bench connections``: acquire+release against the Python peers.

Three figures, each side by side with the peers in one process:

- ``sync uncontended``: one thread, acquire then release, pool of 4 (and
  poolkit with ``timings=False``: the cost of the stats' histograms);
- ``8 threads on 4``: eight threads cycling through a pool capped at 4
  (wall time per cycle across all threads);
- ``async uncontended``: see ``connections_async.py``.

Connections are fakes wherever the peer allows, so the pool itself is measured;
psycopg_pool and asyncpg pool only real connections and run against the local
PostgreSQL when it answers (see ``connections_peers.py``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from poolkit import ConnectionPool
from poolkit._bench import BenchContext, peer_installed
from poolkit.testing import FakeConnection, FakeConnector

FAMILY = "connections"
SIZE = 4
THREADS = 8

# psycopg_pool and asyncpg pool only real connections: the local PostgreSQL.
PG_DSN = os.environ.get("POOLKIT_BENCH_PG", "host=127.0.0.1 port=5432 dbname=test")


Trio = tuple[Callable[[], Any], Callable[[Any], Any], Callable[[], None]]


class FakeDBAPIConnection:
    """Just enough DB-API for SQLAlchemy's and DBUtils' pools."""

    def close(self) -> None:
        """Close (nothing to do)."""

    def commit(self) -> None:
        """Commit (nothing to do)."""

    def rollback(self) -> None:
        """Roll back (nothing to do)."""

    def cursor(self) -> Any:
        """No cursors: the benchmark never queries."""
        raise NotImplementedError


def fake_connect() -> FakeDBAPIConnection:
    """A DB-API ``connect()`` returning fake connections."""
    return FakeDBAPIConnection()


fake_connect.threadsafety = 1  # type: ignore[attr-defined]  # DBUtils asks the module


def poolkit_pool(size: int, **options: Any) -> Trio:
    """poolkit's ConnectionPool over fake connections (no check/ping/reset)."""
    pool: ConnectionPool[FakeConnection] = ConnectionPool(
        FakeConnector(check=False, ping=False, reset=False), max_size=size, **options
    )
    return pool.acquire, pool.release, pool.close


def locked_deque(size: int) -> Trio:
    """The floor: a deque under a lock (never blocks; uncontended only)."""
    lock = threading.Lock()
    free: deque[object] = deque(object() for _ in range(size))

    def acquire() -> object:
        with lock:
            return free.pop()

    def release(conn: object) -> None:
        with lock:
            free.append(conn)

    return acquire, release, lambda: None


def std_queue(size: int) -> Trio:
    """A blocking floor: ``queue.Queue`` (a locked deque plus conditions)."""
    q: queue.LifoQueue[object] = queue.LifoQueue()
    for _ in range(size):
        q.put(object())
    return q.get, q.put, lambda: None


def sqlalchemy_pool(size: int) -> Trio:
    """SQLAlchemy QueuePool with a creator of fake connections, no reset on return."""
    from sqlalchemy.pool import QueuePool

    creator = cast(Any, fake_connect)
    pool = QueuePool(creator, pool_size=size, max_overflow=0, reset_on_return=None)
    return pool.connect, lambda conn: conn.close(), pool.dispose


def dbutils_pool(size: int) -> Trio:
    """DBUtils PooledDB over fake connections, blocking at the cap, no reset/ping."""
    from dbutils.pooled_db import PooledDB

    pool = PooledDB(
        fake_connect, mincached=size, maxcached=size, maxconnections=size, blocking=True,
        reset=False, ping=0, failures=(OSError,),
    )  # fmt: skip
    return pool.connection, lambda conn: conn.close(), pool.close


def redis_pool(size: int) -> Trio:
    """redis-py BlockingConnectionPool of connections that never touch a socket."""
    import redis

    class FakeRedisConnection(redis.Connection):
        def connect(self) -> None:
            return None

        def can_read(self, timeout: float | None = 0) -> bool:
            return False

        def disconnect(self, *args: Any) -> None:
            return None

    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        connection_class=FakeRedisConnection, max_connections=size, timeout=30
    )
    return pool.get_connection, pool.release, pool.disconnect


def urllib3_pool(size: int) -> Trio:
    """urllib3 HTTPConnectionPool (block=True) via its _get_conn/_put_conn.

    Its connections are never connected, so each checkout also runs its
    "dropped?" check and a close() of the unconnected connection.
    """
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", 9, maxsize=size, block=True)
    return pool._get_conn, pool._put_conn, pool.close


def psycopg_pool(size: int) -> Trio | None:
    """psycopg_pool.ConnectionPool of real connections (None: no server)."""
    try:
        import psycopg
        from psycopg_pool import ConnectionPool as PsycopgPool

        psycopg.connect(PG_DSN, connect_timeout=2).close()
    except Exception:
        return None
    pool = PsycopgPool(PG_DSN, min_size=size, max_size=size, open=True)
    pool.wait(30)
    return pool.getconn, pool.putconn, pool.close


PEERS: dict[str, Callable[[int], Trio | None]] = {
    "SQLAlchemy QueuePool": sqlalchemy_pool,
    "DBUtils PooledDB": dbutils_pool,
    "redis-py BlockingConnectionPool": redis_pool,
    "urllib3 HTTPConnectionPool": urllib3_pool,
    "psycopg_pool (real PostgreSQL)": psycopg_pool,
}
# The module each peer needs (pip install 'poolkit[bench]').
PEER_MODULES = {
    "SQLAlchemy QueuePool": "sqlalchemy",
    "DBUtils PooledDB": "dbutils",
    "redis-py BlockingConnectionPool": "redis",
    "urllib3 HTTPConnectionPool": "urllib3",
    "psycopg_pool (real PostgreSQL)": "psycopg_pool",
}


def _installed_peers() -> dict[str, Callable[[int], Trio | None]]:
    return {name: f for name, f in PEERS.items() if peer_installed(name, PEER_MODULES[name])}


def _uncontended(ctx: BenchContext, trio: Trio) -> float:
    acquire, release, close = trio

    def loop(n: int) -> None:
        for _ in range(n):
            release(acquire())

    try:
        return ctx.time_ns_per_op(loop, 5_000 if ctx.quick else 50_000)
    finally:
        close()


def _paired(ctx: BenchContext, first: Trio, second: Trio, rounds: int = 3) -> tuple[float, float]:
    """Uncontended ns per cycle of two pools, timed in turn, the best round of each."""
    best = [float("inf"), float("inf")]
    loops = []
    for acquire, release, _ in (first, second):

        def loop(n: int, acquire: Callable[[], Any] = acquire, release: Any = release) -> None:
            for _ in range(n):
                release(acquire())

        loops.append(loop)
    try:
        for _ in range(rounds):
            for i, loop in enumerate(loops):
                best[i] = min(best[i], ctx.time_ns_per_op(loop, 5_000 if ctx.quick else 50_000))
    finally:
        first[2]()
        second[2]()
    return best[0], best[1]


def _contended(ctx: BenchContext, trio: Trio) -> float:
    """Best-of-repeat wall ns per cycle with THREADS threads on SIZE connections."""
    acquire, release, close = trio
    per_thread = 1_500 if ctx.quick else 10_000

    def worker(start: threading.Barrier) -> None:
        start.wait()
        for _ in range(per_thread):
            release(acquire())

    best = float("inf")
    try:
        for _ in range(2 if ctx.quick else 5):
            start = threading.Barrier(THREADS + 1)
            threads = [threading.Thread(target=worker, args=(start,)) for _ in range(THREADS)]
            for t in threads:
                t.start()
            start.wait()
            t0 = time.perf_counter_ns()
            for t in threads:
                t.join()
            best = min(best, (time.perf_counter_ns() - t0) / (THREADS * per_thread))
    finally:
        close()
    return best


def run(ctx: BenchContext) -> None:
    """Sync uncontended and contended figures, then the async part."""
    bench = "connections: sync acquire+release, uncontended"
    # What the stats' histograms cost (they are on by default): the same pool
    # without them, timed in alternation with it so that load from elsewhere
    # on the machine weighs on both alike; the ratio is the cost of timings.
    timed, untimed = _paired(ctx, poolkit_pool(SIZE), poolkit_pool(SIZE, timings=False))
    ctx.record(bench, "poolkit", "ns_per_op", timed)
    ctx.record(bench, "poolkit (timings=False)", "ns_per_op", untimed)
    leak: dict[str, Any] = {"leak_timeout": 60.0}
    ctx.record(
        bench,
        "poolkit (leak_timeout on)",
        "ns_per_op",
        _uncontended(ctx, poolkit_pool(SIZE, **leak)),
    )
    ctx.record(bench, "locked deque", "ns_per_op", _uncontended(ctx, locked_deque(SIZE)))
    ctx.record(bench, "queue.LifoQueue", "ns_per_op", _uncontended(ctx, std_queue(SIZE)))
    for name, factory in _installed_peers().items():
        trio = factory(SIZE)
        if trio is not None:
            ctx.record(bench, name, "ns_per_op", _uncontended(ctx, trio))

    bench = f"connections: {THREADS} threads on {SIZE} connections, per cycle"
    ctx.record(bench, "poolkit", "ns_per_op", _contended(ctx, poolkit_pool(SIZE)))
    ctx.record(
        bench,
        "poolkit (timings=False)",
        "ns_per_op",
        _contended(ctx, poolkit_pool(SIZE, timings=False)),
    )
    ctx.record(bench, "queue.LifoQueue", "ns_per_op", _contended(ctx, std_queue(SIZE)))
    for name, factory in _installed_peers().items():
        trio = factory(SIZE)
        if trio is not None:
            ctx.record(bench, name, "ns_per_op", _contended(ctx, trio))

    ctx.include("connections_async.py")
