"""The psycopg checkout check (``is_alive``) against the machine's PostgreSQL.

A terminated backend sends its FATAL, then closes. The check must take the
FATAL alone as death: here a relay between the pool and the server passes
the FATAL on but holds the server's FIN back, so the client never sees the
EOF and only the FATAL can tell. The check reads what arrived itself and
watches the notices libpq parses from it; the application's own notice
handlers still get every notice.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from poolkit import ConnectionPool
from poolkit.adapters import psycopg as pg
from tests.adapters.conftest import wait_readable


class FinHoldingRelay:
    """A TCP relay to PostgreSQL that forwards bytes both ways but never forwards
    the server's FIN: a session the server ended stays open on the client's side."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.threads = [threading.Thread(target=self._accept)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for src, dst, to_server in ((client, server, True), (server, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, to_server))
                self.threads.append(t)
                t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                return
        if to_server:  # the client hung up: pass it on
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        # The server hung up: the client is not told.

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self.threads:
            t.join(10)


@pytest.fixture
def relayed_dsn(pg_dsn: str) -> Iterator[str]:
    params = conninfo_to_dict(pg_dsn)
    host = str(params.get("host") or "127.0.0.1")
    if host.startswith("/"):
        pytest.skip("PostgreSQL over a Unix socket: no TCP to relay")
    relay = FinHoldingRelay(host, int(params.get("port") or 5432))
    try:
        yield make_conninfo(pg_dsn, host="127.0.0.1", port=relay.port)
    finally:
        relay.close()


def _terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_fatal_without_the_eof_fails_the_first_checkout(pg_dsn: str, relayed_dsn: str) -> None:
    """The FATAL alone is death: the first checkout discards the connection
    and hands out a fresh one whose first query works."""
    pool: ConnectionPool[Any, Any] = ConnectionPool(
        pg.connector(relayed_dsn), max_size=1, timeout=10.0
    )
    try:
        with pool.connection() as conn:
            old = conn.info.backend_pid
            fd = conn.pgconn.socket
        _terminate(pg_dsn, old)
        wait_readable([fd])  # the FATAL is there; the FIN never comes
        with pool.connection() as conn:
            assert conn.info.backend_pid != old
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert pool.stats().closed_by_reason["check_failed"] == 1
    finally:
        pool.close()


def test_is_alive_on_a_connection_outside_a_pool(pg_dsn: str, relayed_dsn: str) -> None:
    """``is_alive`` as a plain function: True while idle and open, False once
    the server's FATAL arrived, closed, or a transaction is open."""
    with psycopg.connect(relayed_dsn) as conn:
        assert pg.is_alive(conn)
        conn.execute("SELECT 1")
        assert not pg.is_alive(conn)  # a transaction is open
        conn.rollback()
        assert pg.is_alive(conn)
        _terminate(pg_dsn, conn.info.backend_pid)
        wait_readable([conn.pgconn.socket])
        assert not pg.is_alive(conn)
    assert not pg.is_alive(conn)  # closed


def test_application_notice_handlers_still_get_notices_after_checkouts(pg_dsn: str) -> None:
    """The check's watch sits in front of psycopg's notice handler; the
    application's ``add_notice_handler`` callbacks see every notice."""
    seen: list[str] = []
    pool: ConnectionPool[Any, Any] = ConnectionPool(
        pg.connector(pg_dsn, autocommit=True), max_size=1, timeout=10.0
    )
    try:
        with pool.connection() as conn:
            conn.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
        for i in range(2):
            with pool.connection() as conn:  # each checkout runs the check
                conn.execute(f"DO $$ BEGIN RAISE NOTICE 'hello {i}'; END $$")
        assert seen == ["hello 0", "hello 1"]
        assert pool.stats().closed == 0
    finally:
        pool.close()
