"""Connection pools: what ``connection()`` hands out is typed by the connector."""

from __future__ import annotations

import asyncio
import http.client
import socket
from typing import Any, assert_type

import psycopg

from poolkit import AsyncConnectionPool, ConnectionPool, KeyedConnectionPool, PooledConnection
from poolkit.adapters import psycopg as pg
from poolkit.adapters.http import HTTPConnector, PooledHTTPConnection
from poolkit.adapters.sockets import (
    AsyncTCPConnector,
    PooledSocket,
    PooledStream,
    Stream,
    TCPConnector,
)
from poolkit.testing import FakeConnection, FakeConnector


def psycopg_sync(dsn: str) -> tuple[Any, ...] | None:
    pool = ConnectionPool(pg.connector(dsn), max_size=4)
    assert_type(pool, ConnectionPool[psycopg.Connection[Any], pg.PsycopgPooledConnection])
    with pool.connection() as conn:
        assert_type(conn, pg.PsycopgPooledConnection)
        cur = conn.execute("SELECT 1")  # psycopg's signature and result
        assert_type(cur, psycopg.Cursor[Any])
        conn.autocommit = True
        conn.no_such_method()  # type: ignore[attr-defined]
        conn.execute(42)  # type: ignore[call-overload]
        with conn:  # psycopg's `with conn:` (commit or roll back)
            conn.execute("INSERT INTO t VALUES (1)")
        with conn.cursor() as c:
            c.execute("SELECT 2")
        raw = conn.raw
        assert_type(raw, psycopg.Connection[Any])
        row = cur.fetchone()
    held = pool.acquire()
    assert_type(held, pg.PsycopgPooledConnection)
    held.discard()  # the pool's own verbs are there too
    pool.release(held)
    pool.release(object())  # type: ignore[arg-type]
    return row


async def psycopg_async(dsn: str) -> Any:
    pool = AsyncConnectionPool(pg.async_connector(dsn), max_size=4)
    async with pool.connection() as conn:
        assert_type(conn, pg.AsyncPsycopgPooledConnection)
        cur = await conn.execute("SELECT 1")
        assert_type(cur, psycopg.AsyncCursor[Any])
        conn.no_such_method()  # type: ignore[attr-defined]
        conn.execute("SELECT 1").fetchone()  # type: ignore[attr-defined]  # not awaited
        async with conn:
            await conn.execute("INSERT INTO t VALUES (1)")
        await conn.discard()
    return await cur.fetchone()


def sockets_sync() -> None:
    pool = ConnectionPool(TCPConnector("127.0.0.1", 11211), max_size=8)
    with pool.connection() as sock:
        assert_type(sock, PooledSocket)
        sock.sendall(b"version\r\n")
        data: bytes = sock.recv(1024)
        sock.sendall("text")  # type: ignore[arg-type]
        sock.sendal(b"")  # type: ignore[attr-defined]
        assert_type(sock.raw, socket.socket)
        print(data)


async def sockets_async() -> None:
    pool = AsyncConnectionPool(AsyncTCPConnector("127.0.0.1", 11211))
    async with pool.connection() as stream:
        assert_type(stream, PooledStream)
        reader, writer = stream
        assert_type(reader, asyncio.StreamReader)
        writer.write(b"version\r\n")
        await stream.writer.drain()
        stream.nope  # type: ignore[attr-defined]  # noqa: B018
        assert_type(stream.raw, Stream)


def http_connections() -> None:
    pool = ConnectionPool(HTTPConnector(("http", "127.0.0.1", 8080), timeout=5.0))
    with pool.connection() as conn:
        assert_type(conn, PooledHTTPConnection)
        conn.request("GET", "/status")
        resp = conn.getresponse()
        assert_type(resp, http.client.HTTPResponse)
        conn.request(b"GET")  # type: ignore[arg-type, call-arg]
        conn.send_request()  # type: ignore[attr-defined]


def tcp(address: tuple[str, int]) -> TCPConnector:
    return TCPConnector(*address)


def keyed_sockets() -> None:
    kpool = KeyedConnectionPool(tcp, max_size_per_key=2)
    with kpool.connection(("127.0.0.1", 11211)) as sock:
        assert_type(sock, PooledSocket)
        sock.sendall(b"")
        sock.sendal(b"")  # type: ignore[attr-defined]
    kpool.connection("127.0.0.1:11211")  # type: ignore[arg-type]
    KeyedConnectionPool(tcp, min_size=1)  # type: ignore[call-overload]


def any_connector() -> int:
    """A connector without a typed proxy: forwarded names are Any, ``raw`` is typed."""
    pool = ConnectionPool(FakeConnector(), max_size=2)
    assert_type(pool, ConnectionPool[FakeConnection, PooledConnection[FakeConnection]])
    with pool.connection() as conn:
        assert_type(conn, PooledConnection[FakeConnection])
        assert_type(conn.raw, FakeConnection)
        assert_type(conn.whatever, Any)
        return conn.raw.id


def options_are_typed() -> None:
    ConnectionPool(FakeConnector(), max_sise=4)  # type: ignore[call-overload]
    ConnectionPool(FakeConnector(), timeout="5")  # type: ignore[call-overload]
    ConnectionPool(FakeConnector(), on_create=lambda conn: conn.id)
    ConnectionPool(FakeConnector(), on_create=lambda conn: conn.nope)  # type: ignore[attr-defined]
