"""What the typed proxies promise, at run time: each does what its driver's type says.

The adapters' proxies are typed as the driver's connection (psycopg's
``Connection``, ``socket.socket``, the async ``Stream``, ``HTTPConnection``,
``sqlite3.Connection``; tests/typing checks that). Attributes are forwarded;
these tests cover what forwarding cannot reach: the special methods
(``with conn:``, unpacking, calling) and the classes handed out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionDetached,
    ConnectionPool,
    KeyedConnectionPool,
    PooledConnection,
)
from poolkit.adapters import dbapi
from poolkit.adapters import psycopg as pg
from poolkit.adapters.http import HTTPConnector, PooledHTTPConnection
from poolkit.adapters.sockets import (
    AsyncTCPConnector,
    PooledSocket,
    PooledStream,
    TCPConnector,
)
from poolkit.connections import AsyncPooledConnection
from poolkit.testing import EchoServer, FakeConnection
from tests.adapters.conftest import LoopbackHTTPServer, committed_rows


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as srv:
        yield srv


def test_psycopg_with_conn_commits_and_keeps_the_connection(pg_dsn: str, table: str) -> None:
    pool = ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0)
    with pool.connection() as conn:
        assert isinstance(conn, pg.PsycopgPooledConnection)
        assert isinstance(conn, PooledConnection)  # the run-time class is a proxy
        with conn as same:
            assert same is conn
            conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert committed_rows(pg_dsn, table) == [1]  # committed by `with conn:` itself
        assert not conn.released  # and still this block's connection

        def insert_then_fail() -> None:
            with conn:
                conn.execute(f"INSERT INTO {table} VALUES (2)")
                raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            insert_then_fail()
        assert committed_rows(pg_dsn, table) == [1]  # rolled back
        with conn.cursor() as cur:  # psycopg's cursor protocol, through the guard
            cur.execute("SELECT 1")
            assert list(cur) == [(1,)]
    stats = pool.stats()
    assert (stats.idle, stats.closed) == (1, 0)
    pool.close()


def test_psycopg_async_with_conn_commits_and_rolls_back(pg_dsn: str, table: str) -> None:
    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1) as pool:
            async with pool.connection() as conn:
                assert isinstance(conn, pg.AsyncPsycopgPooledConnection)
                async with conn as same:
                    assert same is conn
                    await conn.execute(f"INSERT INTO {table} VALUES (1)")
                assert committed_rows(pg_dsn, table) == [1]

                async def insert_then_fail() -> None:
                    async with conn:
                        await conn.execute(f"INSERT INTO {table} VALUES (2)")
                        raise ValueError("boom")

                with pytest.raises(ValueError, match="boom"):
                    await insert_then_fail()
                assert committed_rows(pg_dsn, table) == [1]
                assert not conn.released
            assert pool.stats().closed == 0

    asyncio.run(main())


def test_with_sock_gives_the_socket_back(echo: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*echo.address), max_size=1)
    with pool.connection() as sock:
        assert isinstance(sock, PooledSocket)
        with sock as same:  # socket's `with`: close(), which gives a pooled socket back
            assert same is sock
            sock.sendall(b"ping")
            assert sock.recv(64) == b"ping"
        assert sock.released
    stats = pool.stats()
    assert (stats.idle, stats.closed) == (1, 0)
    pool.close()


def test_with_sock_discards_a_socket_the_error_broke(echo: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*echo.address), max_size=1)
    with pool.connection() as sock, pytest.raises(OSError, match="reset"), sock:
        raise ConnectionResetError("reset")
    stats = pool.stats()
    assert (stats.idle, stats.closed) == (0, 1)
    pool.close()


def test_pooled_stream_unpacks_and_indexes_as_the_pair(echo: EchoServer) -> None:
    async def main() -> None:
        async with AsyncConnectionPool(AsyncTCPConnector(*echo.address), max_size=1) as pool:
            async with pool.connection() as stream:
                assert isinstance(stream, PooledStream)
                reader, writer = stream
                assert (stream[0], stream[1]) == (reader, writer)
                assert stream[:] == (reader, writer)
                assert len(stream) == 2
                assert writer in stream
                writer.write(b"ping")
                await writer.drain()
                assert await reader.readexactly(4) == b"ping"
            with pytest.raises(ConnectionDetached):
                _reader, _writer = stream

    asyncio.run(main())


def test_http_connection_proxy_runs_requests(http_server: LoopbackHTTPServer) -> None:
    host, port = http_server.server_address[:2]
    pool = ConnectionPool(HTTPConnector(("http", str(host), int(port)), timeout=10.0))
    with pool.connection() as conn:
        assert isinstance(conn, PooledHTTPConnection)
        conn.request("GET", "/typed")
        resp = conn.getresponse()
        assert resp.read() == b"hello /typed"
    pool.close()


def test_sqlite_pools_hand_out_pooled_sqlite_connections(tmp_path: Path) -> None:
    db = dbapi.sqlite_pool(str(tmp_path / "app.db"), max_size=1)
    with db.connection() as conn:
        assert isinstance(conn, dbapi.PooledSQLiteConnection)
        # At run time it is also a PooledDBConnection (type checkers see a
        # sqlite3.Connection and a PooledDBConnectionBase).
        assert dbapi.PooledDBConnection in type(conn).__mro__
        conn("SELECT 1")  # sqlite3.Connection is callable (it compiles a statement)
        assert conn.execute("SELECT 2").fetchone() == (2,)
    with pytest.raises(sqlite3.ProgrammingError, match="given back"):
        conn("SELECT 1")
    db.close()


def test_other_drivers_get_the_plain_db_connection(tmp_path: Path) -> None:
    """The class follows the connection: a DB-API driver that is not sqlite3
    (here a sqlite3 connection wrapped in a plain class) gets PooledDBConnection."""

    class Wrapped:
        def __init__(self, path: str) -> None:
            self._conn = sqlite3.connect(path, check_same_thread=False)

        def __getattr__(self, name: str) -> object:
            return getattr(self._conn, name)

    db = dbapi.DBPool(dbapi.connector(Wrapped, str(tmp_path / "w.db")), max_size=1)
    with db.connection() as conn:
        assert type(conn) is dbapi.PooledDBConnection
        assert conn.execute("SELECT 3").fetchone() == (3,)
    db.close()


def test_pools_take_one_type_argument_fewer_at_run_time() -> None:
    """The proxy type parameter has a default (PEP 696) that Python < 3.13 cannot
    state: Pool[C] still subscripts, and subclasses, at run time."""
    assert get_args(ConnectionPool[FakeConnection]) == (
        FakeConnection,
        PooledConnection[FakeConnection],
    )
    keyed = get_args(AsyncKeyedConnectionPool[str, int])
    assert keyed == (str, int, AsyncPooledConnection[int])
    assert get_args(KeyedConnectionPool[str, int, PooledSocket])[2] is PooledSocket
    db = get_args(dbapi.DBPool[sqlite3.Connection])
    assert db == (sqlite3.Connection, dbapi.PooledDBConnection[sqlite3.Connection])

    class Mine(ConnectionPool[FakeConnection]):
        pass

    assert Mine.__mro__[1] is ConnectionPool
