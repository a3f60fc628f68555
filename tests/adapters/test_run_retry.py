"""database/sql's bad-connection retry through the adapters: ``DBPool.execute``
and its fetch twins on SQLite, the psycopg statement helpers across a real
PostgreSQL restart (a private cluster), and a statement cut mid-flight that must
not run twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters import dbapi
from poolkit.adapters import psycopg as pg
from tests.adapters._pgcluster import PgCluster
from tests.adapters.conftest import eventually, wait_readable

# Connections each pool holds when the server restarts.
N = 3


def sqlite_alive(conn: sqlite3.Connection) -> bool:
    """A liveness check for SQLite: a closed connection refuses even a property read."""
    try:
        conn.total_changes  # noqa: B018
    except sqlite3.ProgrammingError:
        return False
    return True


def sqlite_db(tmp_path: Path, **kw: Any) -> dbapi.DBPool[sqlite3.Connection]:
    db = dbapi.DBPool(
        dbapi.connector(
            sqlite3.connect, str(tmp_path / "t.db"), is_broken=dbapi.sqlite_is_broken, **kw
        ),
        max_size=N,
        timeout=5.0,
    )
    db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    return db


def close_one_idle_behind_the_pools_back(db: dbapi.DBPool[sqlite3.Connection]) -> None:
    with db.connection() as conn:
        raw = conn.raw
    raw.close()


def test_execute_commits_and_the_fetch_helpers_read_it(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    assert db.execute("INSERT INTO t VALUES (?), (?)", (1, 2)) == 2
    assert db.fetchone("SELECT count(*) FROM t") == (2,)
    assert db.fetchall("SELECT x FROM t ORDER BY x", retry="idempotent") == [(1,), (2,)]
    assert db.fetchone("SELECT x FROM t WHERE x = ?", (9,)) is None
    assert db.stats().retries == 0
    db.close()


def test_a_statement_error_is_not_retried_and_keeps_the_connection(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO t VALUES (1)", retry="idempotent")
    stats = db.stats()
    assert (stats.retries, stats.closed, stats.idle) == (0, 0, 1)
    assert db.fetchone("SELECT count(*) FROM t") == (1,)
    db.close()


def test_the_connector_check_replaces_a_dead_connection_before_the_statement(
    tmp_path: Path,
) -> None:
    db = sqlite_db(tmp_path, check=sqlite_alive)
    close_one_idle_behind_the_pools_back(db)
    assert db.execute("INSERT INTO t VALUES (1)") == 1
    stats = db.stats()
    assert (stats.retries, stats.closed_by_reason["check_failed"]) == (0, 1)
    db.close()


def test_without_a_check_a_dead_connection_fails_safe_mode_and_idempotent_retries(
    tmp_path: Path,
) -> None:
    db = sqlite_db(tmp_path)
    close_one_idle_behind_the_pools_back(db)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.execute("INSERT INTO t VALUES (1)")
    close_one_idle_behind_the_pools_back(db)
    assert db.execute("INSERT INTO t VALUES (1)", retry="idempotent") == 1
    stats = db.stats()
    assert (stats.retries, stats.closed_by_reason["broken"]) == (1, 2)
    db.close()


def test_bad_arguments_are_refused_naming_them(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    with pytest.raises(TypeError, match="sql must be a str"):
        db.execute(b"SELECT 1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry must be"):
        db.fetchone("SELECT 1", retry="always")
    with pytest.raises(TypeError, match="check"):
        dbapi.connector(sqlite3.connect, "x.db", check=1)  # type: ignore[arg-type]
    db.close()


# -- PostgreSQL restarts (a private cluster) ----------------------------------


class NoCheckout(pg.PsycopgConnector):
    """The psycopg connector without its checkout check: only the pre-send look
    of the statement helpers stands between a dead connection and a write."""

    check = None  # type: ignore[assignment]


class AsyncNoCheckout(pg.AsyncPsycopgConnector):
    """The async twin of :class:`NoCheckout`."""

    check = None  # type: ignore[assignment]


def stock(pool: ConnectionPool[Any, Any], raw: Callable[[Any], Any] = lambda c: c) -> list[int]:
    """Fill ``pool`` with N idle connections; their sockets."""
    held = [pool.acquire() for _ in range(N)]
    sockets = [raw(c).pgconn.socket for c in held]
    for c in held:
        pool.release(c)
    return sockets


def test_after_a_restart_n_plus_1_calls_all_succeed(pg_cluster: PgCluster) -> None:
    """One restart, four pools of N idle connections each, every one dead after it."""
    checked = ConnectionPool(pg.connector(pg_cluster.dsn), max_size=N + 1, timeout=10.0)
    presend = ConnectionPool(NoCheckout(pg_cluster.dsn), max_size=N + 1, timeout=10.0)
    safe_db = dbapi.DBPool(dbapi.connector(psycopg.connect, pg_cluster.dsn), max_size=N + 1)
    idem_db = dbapi.DBPool(dbapi.connector(psycopg.connect, pg_cluster.dsn), max_size=N + 1)
    pools: list[ConnectionPool[Any, Any]] = [checked, presend, safe_db.pool, idem_db.pool]
    try:
        sockets = [fd for pool in pools for fd in stock(pool)]
        pg_cluster.restart()
        wait_readable(sockets)

        # The checkout check sees each FATAL: all dead ones are replaced before
        # any statement is written, and no try is spent.
        assert [pg.fetchone(checked, "SELECT 1") for _ in range(N + 1)] == [(1,)] * (N + 1)
        stats = checked.stats()
        assert (stats.retries, stats.closed_by_reason["check_failed"]) == (0, N)

        # No checkout check: the helpers' pre-send look raises BadConnection, the
        # default (safe) mode retries it: two pooled tries, then a new connection.
        assert [pg.fetchone(presend, "SELECT 1") for _ in range(N + 1)] == [(1,)] * (N + 1)
        stats = presend.stats()
        assert (stats.retries, stats.closed_by_reason["broken"]) == (2, 2)

        # A plain DB-API connector cannot tell whether its error came before the
        # write: the safe mode hands it to the caller...
        with pytest.raises(psycopg.OperationalError):
            safe_db.fetchone("SELECT 1")
        assert safe_db.stats().retries == 0
        # ...and the caller who knows the statement is idempotent gets retries.
        assert [idem_db.fetchone("SELECT 1", retry="idempotent") for _ in range(N + 1)] == [
            (1,)
        ] * (N + 1)
        assert idem_db.stats().retries == 2
    finally:
        for pool in pools:
            pool.close()


def test_async_after_a_restart_n_plus_1_calls_all_succeed(pg_cluster: PgCluster) -> None:
    async def main() -> None:
        checked = AsyncConnectionPool(
            pg.async_connector(pg_cluster.dsn), max_size=N + 1, timeout=10.0
        )
        presend = AsyncConnectionPool(AsyncNoCheckout(pg_cluster.dsn), max_size=N + 1)
        async with checked, presend:
            sockets: list[int] = []
            for pool in (checked, presend):
                held = [await pool.acquire() for _ in range(N)]
                sockets += [c.pgconn.socket for c in held]
                for c in held:
                    await c.close()
            await asyncio.to_thread(pg_cluster.restart)
            wait_readable(sockets)
            for pool in (checked, presend):
                rows = [await pg.async_fetchone(pool, "SELECT 1") for _ in range(N + 1)]
                assert rows == [(1,)] * (N + 1)
            stats = checked.stats()
            assert (stats.retries, stats.closed_by_reason["check_failed"]) == (0, N)
            stats = presend.stats()
            assert (stats.retries, stats.closed_by_reason["broken"]) == (2, 2)

    asyncio.run(main())


def test_a_statement_cut_mid_flight_by_a_restart_is_not_retried(pg_cluster: PgCluster) -> None:
    """The INSERT was on the wire when its backend was terminated: it is not sent again."""
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS mid_flight (x int)")
        admin.execute("TRUNCATE mid_flight")
    pool = ConnectionPool(NoCheckout(pg_cluster.dsn), max_size=2, timeout=10.0)
    outcome: list[BaseException | int] = []

    def insert() -> None:
        try:
            outcome.append(pg.execute(pool, "INSERT INTO mid_flight SELECT 1 FROM pg_sleep(30)"))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=insert)
    try:
        worker.start()
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as admin:

            def running() -> bool:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE state = 'active' AND query LIKE 'INSERT INTO mid_flight%'"
                ).fetchone()
                return row is not None and row[0] == 1

            eventually(running, "the INSERT running on the server")
        pg_cluster.restart()
        worker.join(60)
        assert not worker.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], psycopg.OperationalError)
        assert pool.stats().retries == 0
        with psycopg.connect(pg_cluster.dsn) as check:
            assert check.execute("SELECT count(*) FROM mid_flight").fetchone() == (0,)
    finally:
        worker.join(60)
        pool.close()
