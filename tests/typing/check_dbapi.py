"""DB-API pools: sqlite3's connections are typed as sqlite3's; options by name."""

from __future__ import annotations

import sqlite3
from typing import Any, assert_type

import psycopg

from poolkit.adapters import dbapi


def sqlite(path: str) -> list[Any]:
    db = dbapi.sqlite_pool(path, max_size=4, timeout=5.0)
    assert_type(db, dbapi.DBPool[sqlite3.Connection, dbapi.PooledSQLiteConnection])
    with db.connection() as conn:
        assert_type(conn, dbapi.PooledSQLiteConnection)
        cur = conn.execute("SELECT 1")
        assert_type(cur, sqlite3.Cursor)
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        conn.isolation_level = None
        conn.no_such_method()  # type: ignore[attr-defined]
        conn.execute(1)  # type: ignore[arg-type]
        assert_type(conn.raw, sqlite3.Connection)
        conn.discard()
        rows = cur.fetchall()
    borrowed = db.connect()
    borrowed.commit()
    borrowed.close()
    return rows


def sqlite_options(path: str) -> None:
    dbapi.sqlite_pool(path, max_sise=4)  # type: ignore[call-arg]
    dbapi.sqlite_pool(path, timeout="5")  # type: ignore[arg-type]
    dbapi.sqlite_pool(path, on_create=lambda conn: conn.execute("PRAGMA foreign_keys=ON"))
    dbapi.sqlite_pool(path, on_create=lambda conn: conn.nope)  # type: ignore[attr-defined]
    dbapi.sqlite_pool(path, wal="yes")  # type: ignore[arg-type]


def any_driver(dsn: str) -> Any:
    """Another driver through DB-API: forwarded names are Any, ``raw`` is typed."""
    db = dbapi.DBPool(dbapi.connector(psycopg.connect, dsn), max_size=2)
    assert_type(
        db, dbapi.DBPool[psycopg.Connection[Any], dbapi.PooledDBConnection[psycopg.Connection[Any]]]
    )
    dbapi.DBPool(dbapi.connector(psycopg.connect, dsn), max_sise=2)  # type: ignore[call-overload]
    with db.connection() as conn:
        assert_type(conn.raw, psycopg.Connection[Any])
        return conn.execute("SELECT 1").fetchone()
