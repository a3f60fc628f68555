"""The psycopg adapter against the machine's PostgreSQL: return rules, failover, SQLSTATEs."""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import psycopg
import pytest
from psycopg import errors

from poolkit import AsyncConnectionPool, ConnectionDetached, ConnectionPool, PoolTimeout
from poolkit.adapters import dbapi
from poolkit.adapters import psycopg as pg
from poolkit.testing import FakeClock
from tests.adapters.conftest import committed_rows, free_port, wait_readable


def _terminate(dsn: str, pids: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _make(dsn: str, **kw: Any) -> ConnectionPool[psycopg.Connection[Any]]:
    kw.setdefault("timeout", 10.0)
    return ConnectionPool(pg.connector(dsn), **kw)


def test_pooled_connection_runs_queries_and_is_reused(pg_dsn: str) -> None:
    pool = _make(pg_dsn, max_size=2)
    pids = set()
    for _ in range(3):
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            pids.add(conn.info.backend_pid)
    assert len(pids) == 1
    pool.close()


def test_transaction_left_open_is_rolled_back_on_return(pg_dsn: str, table: str) -> None:
    """release() (the proxy's close()) never commits: what is left open is rolled back."""
    pool = _make(pg_dsn, max_size=1)
    conn = pool.acquire()
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    conn.close()
    with pool.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert len(committed_rows(pg_dsn, table)) == 0
    assert pool.stats().closed == 0
    pool.close()


def test_failed_transaction_is_rolled_back_and_the_connection_kept(pg_dsn: str, table: str) -> None:
    """A unique violation is the caller's error: the connection stays (not ErrBadConn)."""
    pool = _make(pg_dsn, max_size=1)
    with pool.connection() as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        conn.commit()

    def duplicate() -> None:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")

    with pytest.raises(errors.UniqueViolation):
        duplicate()
    with pool.connection() as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    assert pool.stats().closed == 0
    pool.close()


def test_terminated_idle_backends_are_discarded_at_checkout(pg_dsn: str) -> None:
    """Failover simulation: pg_terminate_backend() on every idle pooled backend.

    The test waits only until each FATAL reached its socket (poll, no read):
    the pool's first checkout must then discard all of them by itself and
    hand out a fresh connection whose first query works.
    """
    pool = _make(pg_dsn, max_size=3)
    held = [pool.acquire() for _ in range(3)]
    old = [c.info.backend_pid for c in held]
    sockets = [c.pgconn.socket for c in held]
    for c in held:
        c.close()
    _terminate(pg_dsn, old)
    wait_readable(sockets)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.backend_pid not in old
    assert pool.stats().closed_by_reason["check_failed"] == 3
    pool.close()


def test_backend_terminated_while_in_use_is_discarded_and_next_checkout_works(
    pg_dsn: str,
) -> None:
    pool = _make(pg_dsn, max_size=1)

    def use_killed() -> None:
        with pool.connection() as conn:
            _terminate(pg_dsn, [conn.info.backend_pid])
            conn.execute("SELECT 1")

    with pytest.raises(psycopg.OperationalError):
        use_killed()
    assert pool.stats().closed_by_reason["broken"] == 1
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pool.close()


def test_read_only_server_error_discards_the_connection(pg_dsn: str, table: str) -> None:
    """25006 after a failover (the old primary is now a standby) counts as broken."""

    def demoted(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET default_transaction_read_only = on")

    pool = ConnectionPool(pg.connector(pg_dsn, configure=demoted), max_size=1, timeout=10.0)

    def write() -> None:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")

    with pytest.raises(errors.ReadOnlySqlTransaction):
        write()
    assert pool.stats().closed_by_reason["broken"] == 1
    pool.close()


def test_require_writable_ping_rejects_a_read_only_server(pg_dsn: str) -> None:
    """SELECT 1 passes on a demoted primary (gpustack#6105); asking read-only does not."""
    clock = FakeClock()
    pool = ConnectionPool(
        pg.connector(pg_dsn, require_writable=True),
        max_size=1,
        ping_after=1.0,
        clock=clock,
        timeout=10.0,
    )
    with pool.connection() as conn:
        conn.execute("SET SESSION default_transaction_read_only = on")
        conn.commit()
        first = conn.info.backend_pid
    clock.advance(2)
    with pool.connection() as conn:
        assert conn.info.backend_pid != first
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert pool.stats().closed_by_reason["ping_failed"] == 1
    pool.close()


def test_ping_opens_no_transaction(pg_dsn: str) -> None:
    clock = FakeClock()
    pool = ConnectionPool(pg.connector(pg_dsn), max_size=1, ping_after=1.0, clock=clock)
    with pool.connection():
        pass
    clock.advance(2)
    with pool.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert not conn.autocommit
    assert pool.stats().closed == 0
    pool.close()


def test_connection_closed_by_its_user_is_discarded_on_return(pg_dsn: str) -> None:
    pool = _make(pg_dsn, max_size=1)
    with pool.connection() as conn:
        conn.raw.close()
    assert pool.stats().closed_by_reason["reset_failed"] == 1
    pool.close()


def test_configure_runs_once_per_connection_and_is_committed(pg_dsn: str) -> None:
    seen: list[int] = []

    def configure(conn: psycopg.Connection[Any]) -> None:
        seen.append(conn.info.backend_pid)
        conn.execute("SET application_name = 'poolkit-test'")

    pool = ConnectionPool(pg.connector(pg_dsn, configure=configure), max_size=1)
    for _ in range(2):
        with pool.connection() as conn:
            assert conn.execute("SHOW application_name").fetchone() == ("poolkit-test",)
    assert len(seen) == 1
    pool.close()


@pytest.mark.parametrize(
    ("exc", "broken"),
    [
        (errors.AdminShutdown(), True),
        (errors.CrashShutdown(), True),
        (errors.CannotConnectNow(), True),
        (errors.ReadOnlySqlTransaction(), True),
        (errors.ConnectionFailure(), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (ConnectionResetError(), True),
        (errors.UniqueViolation(), False),
        (errors.SyntaxError(), False),
        (errors.QueryCanceled(), False),
        (ValueError(), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_broken_classifies_by_sqlstate(exc: BaseException, broken: bool) -> None:
    assert pg.is_broken(exc) == broken


def test_dbpool_over_psycopg_commits_on_success(pg_dsn: str, table: str) -> None:
    """The DB-API client works with any connector: psycopg here."""
    db: dbapi.DBPool[psycopg.Connection[Any]] = dbapi.DBPool(pg.connector(pg_dsn), max_size=1)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {table} VALUES (1)")
    assert len(committed_rows(pg_dsn, table)) == 1
    db.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conninfo": 5}, "conninfo must be a str"),
        ({"configure": 1}, "configure must be callable"),
        ({"reset": "x"}, "reset must be callable"),
        ({"require_writable": 2}, "require_writable must be True or False"),
        ({"require_writable": "yes"}, "require_writable must be True or False"),
        ({"require_writable": None}, "require_writable must be True or False"),
        ({"autocommit": 1}, "autocommit must be True or False"),
        ({"prepare_threshold": "5"}, "prepare_threshold must be an int"),
        ({"row_factory": 3}, "row_factory must be callable"),
    ],
)
def test_connectors_reject_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    """A flag is never coerced: each bad argument is refused at the call, by name."""
    with pytest.raises(TypeError, match=match):
        pg.connector(**kwargs)
    with pytest.raises(TypeError, match=match):
        pg.async_connector(**kwargs)


@pytest.mark.parametrize(
    ("conninfo", "kwargs", "match"),
    [
        ("dbname=test", {"dbnme": "x"}, 'invalid connection option "dbnme"'),
        ("dbname=test port", {}, 'missing "="'),
        ("postgresql://h/db?sslmod=require", {}, 'invalid URI query parameter: "sslmod"'),
    ],
)
def test_connectors_reject_a_conninfo_libpq_cannot_parse(
    conninfo: str, kwargs: dict[str, Any], match: str
) -> None:
    """Not a PoolTimeout after retries: the connection string is refused at the call."""
    with pytest.raises(ValueError, match=match):
        pg.connector(conninfo, **kwargs)
    with pytest.raises(ValueError, match=match):
        pg.async_connector(conninfo, **kwargs)


def test_connectors_accept_connect_options_and_libpq_keywords(pg_dsn: str) -> None:
    connector = pg.connector(pg_dsn, autocommit=True, prepare_threshold=None, application_name="x")
    conn = connector.create()
    try:
        assert conn.autocommit
        assert conn.execute("SHOW application_name").fetchone() == ("x",)
    finally:
        connector.close(conn)


def test_repr_does_not_show_the_dsn() -> None:
    assert "secret" not in repr(pg.connector("password=secret"))


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "poolkit.adapters.psycopg")
    with pytest.raises(ImportError, match=r"pip install 'poolkit\[postgres\]'"):
        importlib.import_module("poolkit.adapters.psycopg")


def test_importing_adapters_does_not_import_psycopg() -> None:
    import subprocess

    code = "import sys, poolkit.adapters; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- asyncio --------------------------------------------------------------------


def test_async_pool_runs_queries_and_rolls_back_on_return(pg_dsn: str, table: str) -> None:
    """The async twin: release() never commits, what is left open is rolled back."""

    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=2) as pool:
            conn = await pool.acquire()
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
            await conn.close()
            async with pool.connection() as conn:
                cur = await conn.execute(f"SELECT count(*) FROM {table}")
                assert await cur.fetchone() == (0,)
            assert pool.stats().created == 1

    asyncio.run(main())


def test_async_terminated_backends_are_discarded(pg_dsn: str) -> None:
    """The async twin: the first checkout after the FATALs arrived discards them."""

    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=2) as pool:
            a, b = await pool.acquire(), await pool.acquire()
            old = [a.info.backend_pid, b.info.backend_pid]
            sockets = [a.pgconn.socket, b.pgconn.socket]
            await a.close()
            await b.close()
            _terminate(pg_dsn, old)
            wait_readable(sockets)
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1")
                assert await cur.fetchone() == (1,)
                assert conn.info.backend_pid not in old
            assert pool.stats().closed_by_reason["check_failed"] == 2

            async def use_killed() -> None:
                async with pool.connection() as conn:
                    _terminate(pg_dsn, [conn.info.backend_pid])
                    await conn.execute("SELECT 1")

            with pytest.raises(psycopg.OperationalError):
                await use_killed()
            assert pool.stats().closed_by_reason["broken"] == 1

    asyncio.run(main())


def test_async_ping_rejects_a_read_only_server(pg_dsn: str) -> None:
    """The async twin of the require_writable ping: the demoted connection is replaced."""
    clock = FakeClock()

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("SET default_transaction_read_only = on")

    async def main() -> None:
        pool = AsyncConnectionPool(
            pg.async_connector(pg_dsn, configure=configure, require_writable=True),
            max_size=1,
            ping_after=1.0,
            clock=clock,
            timeout=10.0,
        )
        async with pool:
            async with pool.connection() as conn:
                first = conn.info.backend_pid
            clock.advance(2)
            async with pool.connection() as conn:  # fresh: not pinged
                assert conn.info.backend_pid != first
                assert not conn.autocommit
            assert pool.stats().closed_by_reason["ping_failed"] == 1

    asyncio.run(main())


def test_unreachable_server_surfaces_the_connect_error_in_the_timeout() -> None:
    """No server: acquire gives up after its timeout, chained to psycopg's own error."""
    pool = ConnectionPool(
        pg.connector("host=127.0.0.1 port=1 dbname=test connect_timeout=1"), timeout=0.2
    )
    with pytest.raises(PoolTimeout) as info:
        pool.acquire()
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert pool.stats().create_errors >= 1
    pool.close()


def test_dbpool_over_psycopg_guards_cursors_and_forwards_attributes(
    pg_dsn: str, table: str
) -> None:
    """DB-API rules with psycopg: conn.autocommit = True reaches psycopg; after the
    give-back, cursor and connection raise psycopg's own Error."""
    db: dbapi.DBPool[psycopg.Connection[Any]] = dbapi.DBPool(pg.connector(pg_dsn), max_size=1)
    conn = db.connect()
    conn.autocommit = True
    assert conn.raw.autocommit
    cur = conn.cursor()
    cur.execute(f"INSERT INTO {table} VALUES (1)")
    conn.autocommit = False
    conn.close()
    assert (
        len(committed_rows(pg_dsn, table)) == 1
    )  # autocommitted, so the rollback on return kept it
    for use in (
        lambda: cur.execute(f"INSERT INTO {table} VALUES (2)"),
        cur.fetchall,
        conn.cursor,
        conn.commit,
        lambda: conn.execute("SELECT 1"),
    ):
        with pytest.raises(psycopg.ProgrammingError, match="given back") as info:
            use()
        assert isinstance(info.value, ConnectionDetached)
        assert not pg.is_broken(info.value)
    with pytest.raises(psycopg.ProgrammingError):
        conn.autocommit = True
    assert len(committed_rows(pg_dsn, table)) == 1
    db.close()


def test_open_wait_fails_fast_when_the_server_is_unreachable() -> None:
    """psycopg_pool open(wait=True): an unreachable server fails at start, not at first use."""
    dsn = f"host=127.0.0.1 port={free_port()} dbname=test connect_timeout=2"
    pool = ConnectionPool(pg.connector(dsn), min_size=1, timeout=10.0)
    with pytest.raises(PoolTimeout, match="0 of min_size=1") as info:
        pool.open(wait=True, timeout=0.5)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert pool.closed


def test_open_wait_returns_with_min_size_connections_ready(pg_dsn: str) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(pg.async_connector(pg_dsn), min_size=2, timeout=10.0)
        await pool.open(wait=True, timeout=30)
        assert pool.stats().idle == 2
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
        await pool.close()

    asyncio.run(main())


def test_check_connection_replaces_a_terminated_backend_and_leaves_no_transaction(
    pg_dsn: str,
) -> None:
    """psycopg_pool's check_connection as the pool's check=: one round trip per checkout."""
    pool = _make(pg_dsn, max_size=1, check=pg.check_connection)
    with pool.connection() as conn:
        old = conn.info.backend_pid
        socket = conn.pgconn.socket
    _terminate(pg_dsn, [old])
    wait_readable([socket])
    with pool.connection() as conn:
        # The check ran in autocommit mode and put the setting back.
        assert conn.autocommit is False
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.info.backend_pid != old
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


def test_async_check_connection_replaces_a_terminated_backend(pg_dsn: str) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(
            pg.async_connector(pg_dsn), max_size=1, timeout=10.0, check=pg.async_check_connection
        )
        async with pool.connection() as conn:
            old = conn.info.backend_pid
            socket = conn.pgconn.socket
        _terminate(pg_dsn, [old])
        wait_readable([socket])
        async with pool.connection() as conn:
            assert conn.autocommit is False
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert conn.info.backend_pid != old
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
        assert pool.stats().closed_by_reason["check_failed"] == 1
        await pool.close()

    asyncio.run(main())
