"""The DB-API adapter against real SQLite files: return rules, health, SQLite defaults."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from poolkit import ConnectionDetached, ConnectionPool, PoolClosed
from poolkit.adapters import dbapi
from poolkit.testing import FakeClock


def _db(
    tmp_path: Path, **options: Any
) -> dbapi.DBPool[sqlite3.Connection, dbapi.PooledSQLiteConnection]:
    options.setdefault("timeout", 5.0)
    db = dbapi.sqlite_pool(str(tmp_path / "app.db"), **options)
    with db.connection() as conn:
        conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, v TEXT)")
    return db


def _count(db: dbapi.DBPool[sqlite3.Connection, dbapi.PooledSQLiteConnection]) -> int:
    with db.connection() as conn:
        n: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return n


def test_connector_opens_configures_and_reuses_connections(tmp_path: Path) -> None:
    configured: list[sqlite3.Connection] = []
    pool = ConnectionPool(
        dbapi.connector(sqlite3.connect, str(tmp_path / "a.db"), configure=configured.append),
        max_size=2,
    )
    for _ in range(3):
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert len(configured) == 1
    assert pool.stats().created == 1
    pool.close()


def test_sqlite3_connector_defaults_to_check_same_thread_false(tmp_path: Path) -> None:
    """Connections are opened in the pool's threads, so thread affinity is turned off."""
    pool = ConnectionPool(dbapi.connector(sqlite3.connect, str(tmp_path / "a.db")))
    with pool.connection() as conn:  # opened by a creator thread, used here
        assert conn.execute("SELECT 2").fetchone() == (2,)
    pool.close()


def test_transaction_left_open_is_rolled_back_on_return(tmp_path: Path) -> None:
    """database/sql / DBUtils: a connection goes back clean (DB-API: close rolls back)."""
    db = _db(tmp_path, max_size=1)
    conn = db.connect()
    conn.execute("INSERT INTO t (v) VALUES ('uncommitted')")
    assert conn.raw.in_transaction
    conn.close()
    conn2 = db.connect()
    assert not conn2.raw.in_transaction
    conn2.close()
    assert _count(db) == 0
    db.close()


def test_raw_pool_lease_rolls_back_uncommitted_work(tmp_path: Path) -> None:
    """release() (the proxy's close()) never commits: what is left open is rolled back."""
    pool = ConnectionPool(dbapi.connector(sqlite3.connect, str(tmp_path / "a.db")), max_size=1)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    conn = pool.acquire()
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    pool.close()


def test_connection_block_commits_on_success(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.connection() as conn:
        conn.execute("INSERT INTO t (v) VALUES ('a')")
    assert _count(db) == 1
    db.close()


def test_connection_block_rolls_back_on_error_and_keeps_the_connection(tmp_path: Path) -> None:
    """IntegrityError is the caller's mistake: rolled back, connection kept (not ErrBadConn)."""
    db = _db(tmp_path, max_size=1)
    with db.connection() as conn:
        conn.execute("INSERT INTO t (x, v) VALUES (1, 'a')")

    def insert_twice() -> None:
        with db.connection() as conn:
            conn.execute("INSERT INTO t (v) VALUES ('b')")
            conn.execute("INSERT INTO t (x, v) VALUES (1, 'dup')")

    with pytest.raises(sqlite3.IntegrityError):
        insert_twice()
    assert _count(db) == 1
    stats = db.stats()
    assert (stats.created, stats.closed) == (1, 0)
    db.close()


def test_pooled_connection_speaks_dbapi(tmp_path: Path) -> None:
    """cursor(), commit(), rollback(), close() returning to the pool, context manager."""
    db = _db(tmp_path, max_size=1)
    conn = db.connect()
    cur = conn.cursor()
    cur.execute("INSERT INTO t (v) VALUES ('kept')")
    conn.commit()
    cur.execute("INSERT INTO t (v) VALUES ('dropped')")
    conn.rollback()
    cur.close()
    conn.close()
    conn.close()  # idempotent, as DB-API callers expect
    assert conn.closed
    with pytest.raises(ConnectionDetached):
        conn.cursor()
    with db.connect() as conn2:
        conn2.execute("INSERT INTO t (v) VALUES ('via with')")
    assert conn2.closed
    assert _count(db) == 2
    assert db.stats().created == 1
    db.close()


def test_with_block_on_a_connection_rolls_back_on_error(tmp_path: Path) -> None:
    db = _db(tmp_path)

    def fail_midway() -> None:
        with db.connect() as conn:
            conn.execute("INSERT INTO t (v) VALUES ('a')")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_midway()
    assert _count(db) == 0
    db.close()


def test_broken_connection_error_discards_it(tmp_path: Path) -> None:
    """OperationalError/InterfaceError from the driver: database/sql ErrBadConn, discard."""
    pool = ConnectionPool(dbapi.connector(sqlite3.connect, str(tmp_path / "a.db")), max_size=1)
    with pytest.raises(sqlite3.OperationalError), pool.connection() as conn:
        conn.execute("SELECT * FROM missing_table")
    assert pool.stats().closed_by_reason["broken"] == 1
    with pytest.raises(sqlite3.ProgrammingError), pool.connection() as conn:
        conn.execute("SELECT ?", (1, 2))  # wrong number of bindings: caller's bug
    assert pool.stats().closed_by_reason["broken"] == 1
    pool.close()


def test_generic_rule_classifies_driver_exceptions() -> None:
    conn_factory = dbapi.connector(sqlite3.connect, ":memory:")
    assert conn_factory.is_broken(sqlite3.OperationalError("server gone"))
    assert conn_factory.is_broken(sqlite3.InterfaceError("closed"))
    assert conn_factory.is_broken(ConnectionResetError())
    assert not conn_factory.is_broken(sqlite3.ProgrammingError("bad sql"))
    assert not conn_factory.is_broken(sqlite3.IntegrityError("unique"))
    assert not conn_factory.is_broken(ValueError("user code"))


def test_error_classes_are_found_from_the_connection_when_connect_hides_them() -> None:
    """A wrapper function in an unrelated module: the DB-API connection attributes answer."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(":memory:")

    connect.__module__ = "not_a_driver"
    conn_factory = dbapi.connector(connect)
    assert not conn_factory.is_broken(sqlite3.OperationalError("x"))  # unknown yet
    conn_factory.close(conn_factory.create())
    assert conn_factory.is_broken(sqlite3.OperationalError("x"))


def test_sqlite_rule_keeps_connections_on_lock_and_schema_errors() -> None:
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5
    no_table = sqlite3.OperationalError("no such table: x")
    no_table.sqlite_errorcode = 1
    ioerr = sqlite3.OperationalError("disk I/O error")
    ioerr.sqlite_errorcode = 10 | (1 << 8)
    verdicts = tuple(dbapi.sqlite_is_broken(e) for e in (locked, no_table, ioerr))
    assert verdicts == (False, False, True)
    assert dbapi.sqlite_is_broken(sqlite3.ProgrammingError("Cannot operate on a closed database."))
    assert not dbapi.sqlite_is_broken(sqlite3.ProgrammingError("Incorrect number of bindings"))
    assert not dbapi.sqlite_is_broken(sqlite3.IntegrityError("UNIQUE constraint failed"))


def test_sqlite_pool_keeps_the_connection_after_a_schema_error(tmp_path: Path) -> None:
    db = _db(tmp_path, max_size=1)
    with pytest.raises(sqlite3.OperationalError), db.connection() as conn:
        conn.execute("SELECT * FROM nope")
    assert db.stats().closed == 0
    db.close()


def test_connection_closed_behind_the_pools_back_is_discarded(tmp_path: Path) -> None:
    db = _db(tmp_path, max_size=1)

    def use_after_driver_close() -> None:
        with db.connection() as conn:
            conn.raw.close()
            conn.execute("SELECT 1")

    with pytest.raises(sqlite3.ProgrammingError):
        use_after_driver_close()
    assert db.stats().closed_by_reason["broken"] == 1
    assert _count(db) == 0
    db.close()


def test_failed_rollback_on_return_discards_the_connection(tmp_path: Path) -> None:
    """A connection that cannot be made clean is not pooled (reset_failed)."""

    def refuse(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("reset failed")

    pool = ConnectionPool(
        dbapi.connector(sqlite3.connect, str(tmp_path / "a.db"), reset=refuse), max_size=1
    )
    with pool.connection():
        pass
    assert pool.stats().closed_by_reason["reset_failed"] == 1
    pool.close()


def test_ping_runs_only_after_idle_time_and_discards_dead_connections(tmp_path: Path) -> None:
    """SQLAlchemy pre_ping / database/sql driver.Pinger, but only past ping_after."""
    clock = FakeClock()
    pool = ConnectionPool(
        dbapi.connector(sqlite3.connect, str(tmp_path / "a.db")),
        max_size=1,
        ping_after=10.0,
        clock=clock,
    )
    with pool.connection() as conn:
        raw = conn.raw
    clock.advance(5)
    with pool.connection() as conn:
        assert conn.raw is raw  # not pinged: used recently
    raw.close()  # dies while idle
    clock.advance(11)
    with pool.connection() as conn:
        assert conn.raw is not raw
        assert not conn.raw.in_transaction  # the ping leaves no transaction open
    assert pool.stats().closed_by_reason["ping_failed"] == 1
    pool.close()


def test_configure_failure_fails_creation_and_closes_the_connection(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(tmp_path / "a.db"), check_same_thread=False)
        opened.append(conn)
        return conn

    def bad(conn: sqlite3.Connection) -> None:
        raise RuntimeError("bad pragma")

    conn_factory = dbapi.connector(connect, configure=bad)
    with pytest.raises(RuntimeError, match="bad pragma"):
        conn_factory.create()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")


def test_sqlite_pool_sets_wal_and_shares_the_file_between_threads(tmp_path: Path) -> None:
    db = _db(tmp_path, max_size=4)
    with db.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        start.wait()
        for i in range(25):
            with db.connection() as conn:
                conn.execute("INSERT INTO t (v) VALUES (?)", (f"{n}-{i}",))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count(db) == 100
    assert db.stats().total <= 4
    db.close()
    with pytest.raises(PoolClosed):
        db.connect()


def test_sqlite_pool_without_wal_keeps_the_default_journal(tmp_path: Path) -> None:
    db = _db(tmp_path, wal=False)
    with db.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()


def test_sqlite_pool_runs_the_users_configure_after_its_own(tmp_path: Path) -> None:
    def fk(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys=ON")

    with dbapi.sqlite_pool(str(tmp_path / "a.db"), configure=fk) as db:
        with db.connection() as conn:
            assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert "sqlite:" in repr(db)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"path": ":memory:"}, ValueError, "path=':memory:'"),
        ({"path": ""}, TypeError, "path must be"),
        ({"path": 3}, TypeError, "path must be"),
        ({"path": "x.db", "busy_timeout": -1}, ValueError, "busy_timeout"),
        ({"path": "x.db", "configure": 3}, TypeError, "configure must be callable"),
        ({"path": "x.db", "max_size": 0}, ValueError, "max_size"),
        ({"path": "x.db", "wal": None}, TypeError, "wal must be True or False"),
        ({"path": "x.db", "wal": "no"}, TypeError, "wal must be True or False"),
        ({"path": "x.db", "wal": 0}, TypeError, "wal must be True or False"),
        ({"path": "x.db", "busy_timeout": float("nan")}, ValueError, "busy_timeout"),
    ],
)
def test_sqlite_pool_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        dbapi.sqlite_pool(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((3,), {}, "connect must be callable"),
        ((sqlite3.connect,), {"configure": "x"}, "configure must be callable"),
        ((sqlite3.connect,), {"reset": 1}, "reset must be callable"),
        ((sqlite3.connect,), {"is_broken": 1}, "is_broken must be callable"),
        ((sqlite3.connect,), {"ping_query": ""}, "ping_query must be a non-empty str"),
        ((sqlite3.connect,), {"module": "sqlite3"}, "module must be the driver's module"),
    ],
)
def test_connector_rejects_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        dbapi.connector(*args, **kwargs)


def test_custom_is_broken_replaces_the_rule() -> None:
    conn_factory = dbapi.connector(sqlite3.connect, ":memory:", is_broken=lambda e: True)
    assert conn_factory.is_broken(ValueError())
    assert "sqlite3" in repr(conn_factory) or "connect" in repr(conn_factory)


@pytest.mark.parametrize(
    "busy_timeout", [1e300, float("inf"), 10**400], ids=["1e300", "inf", "1e400"]
)
def test_sqlite_pool_clamps_a_huge_busy_timeout_to_the_longest_sqlite_wait(
    tmp_path: Path, busy_timeout: float
) -> None:
    """sqlite3 casts timeout*1000 to int unchecked: 1e300 s wrapped to no wait at all."""
    db = dbapi.sqlite_pool(str(tmp_path / "a.db"), busy_timeout=busy_timeout)
    with db, db.connection() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (2**31 - 1,)
    assert dbapi.SQLITE_MAX_BUSY_TIMEOUT * 1000 == 2**31 - 1


def test_cursor_and_connection_raise_the_drivers_error_after_give_back(tmp_path: Path) -> None:
    """DB-API 2.0: after close() (the give-back) any use raises the driver's Error.

    The stale cursor must not run on the connection, which another borrower
    holds by then (max_size=1): that borrower's transaction stays untouched.
    """
    db = _db(tmp_path, max_size=1)
    conn = db.connect()
    cur = conn.cursor()
    cur.execute("SELECT 1")
    shortcut = conn.execute("SELECT 2")  # sqlite3's conn.execute() cursor
    conn.close()
    other = db.connect()
    other.execute("INSERT INTO t (v) VALUES ('theirs')")
    stale_uses: list[Callable[[], object]] = [
        lambda: cur.execute("INSERT INTO t (v) VALUES ('stale')"),
        lambda: cur.executemany("INSERT INTO t (v) VALUES (?)", [("stale",)]),
        cur.fetchone,
        cur.fetchall,
        lambda: cur.fetchmany(2),
        lambda: next(iter(cur)),
        lambda: cur.description,
        lambda: shortcut.fetchone(),
        conn.cursor,
        conn.commit,
        conn.rollback,
        lambda: conn.execute("INSERT INTO t (v) VALUES ('stale')"),
        lambda: conn.in_transaction,
    ]
    for use in stale_uses:
        with pytest.raises(sqlite3.ProgrammingError, match="given back") as info:
            use()
        assert isinstance(info.value, ConnectionDetached)
        assert not dbapi.sqlite_is_broken(info.value)  # the caller's bug, not a broken link
    cur.close()  # closing a stale cursor stays harmless
    assert other.raw.in_transaction
    other.commit()
    other.close()
    with db.connection() as check:
        assert check.execute("SELECT v FROM t").fetchall() == [("theirs",)]
    assert db.stats().closed == 0
    db.close()


def test_stale_cursor_error_inside_another_block_does_not_discard_that_connection(
    tmp_path: Path,
) -> None:
    db = _db(tmp_path, max_size=1)
    conn = db.connect()
    cur = conn.cursor()
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError), db.connection():
        cur.execute("SELECT 1")
    assert db.stats().closed == 0
    db.close()


def test_cursor_works_like_the_drivers_while_the_connection_is_held(tmp_path: Path) -> None:
    db = _db(tmp_path, max_size=1)
    with db.connection() as conn:
        cur = conn.cursor()
        assert cur.execute("INSERT INTO t (v) VALUES (?)", ("a",)) is cur
        assert cur.rowcount == 1
        assert cur.lastrowid == 1
        cur.executemany("INSERT INTO t (v) VALUES (?)", [("b",), ("c",)])
        cur.arraysize = 2
        assert cur.arraysize == 2
        cur.execute("SELECT v FROM t ORDER BY x")
        assert cur.description[0][0] == "v"
        assert cur.fetchone() == ("a",)
        assert cur.fetchmany() == [("b",), ("c",)]
        assert list(conn.execute("SELECT x FROM t ORDER BY x")) == [(1,), (2,), (3,)]
        # The guarded cursor is a context manager (sqlite3's own is not, so
        # its type does not say so).
        with conn.cursor() as cur2:  # type: ignore[attr-defined]
            assert cur2.execute("SELECT count(*) FROM t").fetchall() == [(3,)]
    assert _count(db) == 3
    db.close()


def test_setting_attributes_reaches_the_drivers_connection(tmp_path: Path) -> None:
    """conn.isolation_level = None is sqlite3's autocommit switch: it must reach the driver."""
    db = _db(tmp_path, max_size=1)
    conn = db.connect()
    conn.isolation_level = None
    assert conn.raw.isolation_level is None
    conn.execute("INSERT INTO t (v) VALUES ('autocommitted')")
    assert not conn.raw.in_transaction
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError, match="given back"):
        conn.isolation_level = "DEFERRED"
    assert _count(db) == 1
    db.close()


def test_connector_refuses_arguments_connect_cannot_take() -> None:
    """A keyword typo would fail every connection attempt: refused at the call instead."""

    def connect(database: str, *, timeout: float = 1.0) -> sqlite3.Connection:
        return sqlite3.connect(database, timeout=timeout)

    with pytest.raises(TypeError, match=r"connect=.*timout"):
        dbapi.connector(sqlite3.connect, "a.db", timout=3)
    with pytest.raises(TypeError, match=r"connect=.*connect"):
        dbapi.connector(connect, "a.db", "extra")
    dbapi.connector(connect, "a.db", timeout=2.0)
    dbapi.connector(sqlite3.connect, "a.db", timeout=2.0, uri=False, cached_statements=8)
