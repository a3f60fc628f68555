"""Commit on success, roll back on error: ``with pool.connection()`` over the DB connectors.

psycopg_pool's ``connection()`` commits when the block exits normally and rolls
back on an exception; a pool that silently rolled back would lose every write
its users did not commit by hand. Each test checks durability the way a user
would: from another connection, after the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters import dbapi
from poolkit.adapters import psycopg as pg
from tests.adapters.conftest import committed_rows


class Boom(Exception):
    """An application error inside the block (not a broken connection)."""


# -- psycopg, sync --------------------------------------------------------------


def test_psycopg_block_commits_on_success_and_rolls_back_on_error(
    pg_dsn: str, table: str, closing: Callable[[Any], Any]
) -> None:
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0))
    with pool.connection() as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")  # no commit()
    assert committed_rows(pg_dsn, table) == [1]

    def fail_midway() -> None:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (2)")
            raise Boom

    with pytest.raises(Boom):
        fail_midway()
    assert committed_rows(pg_dsn, table) == [1]
    with pool.connection() as conn:  # the connection came back clean
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert pool.stats().closed == 0
    pool.close()


def test_psycopg_block_with_a_failed_transaction_raises_instead_of_losing_writes(
    pg_dsn: str,
    table: str,
    closing: Callable[[Any], Any],
) -> None:
    """An error caught inside the block left the transaction failed: COMMIT would
    silently roll back row 1; leaving the block says so instead."""
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0))

    def swallow_an_error() -> None:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")
            with pytest.raises(errors.UniqueViolation):
                conn.execute(f"INSERT INTO {table} VALUES (1)")

    with pytest.raises(errors.InFailedSqlTransaction, match="nothing was committed"):
        swallow_an_error()
    assert committed_rows(pg_dsn, table) == []
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().closed == 0  # the caller's error: the connection is kept
    pool.close()


def test_psycopg_autocommit_block_sends_no_commit(
    pg_dsn: str, table: str, closing: Callable[[Any], Any]
) -> None:
    pool = closing(ConnectionPool(pg.connector(pg_dsn, autocommit=True), max_size=1, timeout=10.0))
    with pool.connection() as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert committed_rows(pg_dsn, table) == [1]
    pool.close()


def test_dbpool_over_psycopg_refuses_to_commit_a_failed_transaction(
    pg_dsn: str,
    table: str,
    closing: Callable[[Any], Any],
) -> None:
    """DBPool uses the connector's commit rule, so it reports the failed transaction too."""
    db: dbapi.DBPool[psycopg.Connection[Any]] = closing(
        dbapi.DBPool(pg.connector(pg_dsn), max_size=1)
    )

    def swallow_an_error() -> None:
        with db.connection() as conn:
            cur = conn.cursor()
            cur.execute(f"INSERT INTO {table} VALUES (1)")
            with pytest.raises(errors.UniqueViolation):
                cur.execute(f"INSERT INTO {table} VALUES (1)")

    with pytest.raises(errors.InFailedSqlTransaction):
        swallow_an_error()
    assert committed_rows(pg_dsn, table) == []
    assert db.stats().closed == 0
    db.close()


# -- psycopg, asyncio -----------------------------------------------------------


def test_async_psycopg_block_commits_on_success_and_rolls_back_on_error(
    pg_dsn: str, table: str
) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1, timeout=10.0)
        async with pool:
            async with pool.connection() as conn:
                await conn.execute(f"INSERT INTO {table} VALUES (1)")
            assert committed_rows(pg_dsn, table) == [1]

            async def fail_midway() -> None:
                async with pool.connection() as conn:
                    await conn.execute(f"INSERT INTO {table} VALUES (2)")
                    raise Boom

            with pytest.raises(Boom):
                await fail_midway()
            assert committed_rows(pg_dsn, table) == [1]

            async def swallow_an_error() -> None:
                async with pool.connection() as conn:
                    await conn.execute(f"INSERT INTO {table} VALUES (3)")
                    with pytest.raises(errors.UniqueViolation):
                        await conn.execute(f"INSERT INTO {table} VALUES (1)")

            with pytest.raises(errors.InFailedSqlTransaction):
                await swallow_an_error()
            assert committed_rows(pg_dsn, table) == [1]
            assert pool.stats().closed == 0

    asyncio.run(main())


# -- DB-API over SQLite ---------------------------------------------------------


def _sqlite_rows(path: Path) -> list[int]:
    # A sqlite3 connection's `with` block commits but does not close it.
    with contextlib.closing(sqlite3.connect(path)) as other:
        return [r[0] for r in other.execute("SELECT x FROM t ORDER BY x")]


def test_sqlite_block_on_the_raw_pool_commits_on_success_and_rolls_back_on_error(
    tmp_path: Path,
    closing: Callable[[Any], Any],
) -> None:
    path = tmp_path / "a.db"
    with contextlib.closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    pool = closing(ConnectionPool(dbapi.connector(sqlite3.connect, str(path)), max_size=1))
    with pool.connection() as conn:
        conn.execute("INSERT INTO t VALUES (1)")  # no commit()
    assert _sqlite_rows(path) == [1]

    def fail_midway() -> None:
        with pool.connection() as conn:
            conn.execute("INSERT INTO t VALUES (2)")
            raise Boom

    with pytest.raises(Boom):
        fail_midway()
    assert _sqlite_rows(path) == [1]
    assert pool.stats().closed == 0
    pool.close()


def test_dbapi_connector_commit_respects_autocommit_and_idle_connections(
    tmp_path: Path,
) -> None:
    """Nothing to commit: not in a transaction (sqlite3 says so), or in autocommit mode."""
    calls: list[str] = []

    class Conn:
        autocommit = True

        def commit(self) -> None:
            calls.append("commit")

    connector = dbapi.connector(sqlite3.connect, str(tmp_path / "a.db"))
    connector.commit(Conn())  # type: ignore[arg-type]
    assert calls == []
    Conn.autocommit = False
    connector.commit(Conn())  # type: ignore[arg-type]
    assert calls == ["commit"]
    conn = connector.create()
    try:
        conn.execute("CREATE TABLE t (x)")
        assert conn.in_transaction is False  # sqlite3: DDL autocommits
        connector.commit(conn)
        conn.execute("INSERT INTO t VALUES (1)")
        connector.commit(conn)
        assert not conn.in_transaction
    finally:
        connector.close(conn)
    assert _sqlite_rows(tmp_path / "a.db") == [1]


def test_psycopg_block_on_a_connection_lost_mid_block_raises_on_exit(
    pg_dsn: str,
    table: str,
    closing: Callable[[Any], Any],
) -> None:
    """The server went away after the insert and the holder swallowed the error:
    the row is gone, so leaving the block must not look like a commit."""
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0))

    def lose_the_connection() -> None:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")
            with psycopg.connect(pg_dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")

    with pytest.raises(psycopg.OperationalError):
        lose_the_connection()
    assert committed_rows(pg_dsn, table) == []
    assert pool.stats().closed_by_reason["broken"] == 1
    pool.close()
