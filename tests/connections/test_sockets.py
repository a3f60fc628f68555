"""The socket adapter against a real TCP echo server on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters.sockets import (
    AsyncTCPConnector,
    AsyncUnixConnector,
    TCPConnector,
    UnixConnector,
    is_socket_alive,
)
from poolkit.testing import EchoServer


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as srv:
        yield srv


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    return sock.recv(64)


def test_pooled_socket_round_trips_and_is_reused(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address), max_size=2)
    for _ in range(3):
        with pool.connection() as sock:
            assert roundtrip(sock.raw) == b"ping"
    assert server.accepted == 1
    pool.close()


def test_check_detects_a_peer_that_closed_idle_connections(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address), max_size=2)
    with pool.connection() as sock:
        raw = sock.raw
        assert roundtrip(raw) == b"ping"  # accepted by the server, surely
        assert is_socket_alive(raw)
    server.close_clients()
    while is_socket_alive(raw):  # FIN arrives asynchronously; no sleep, no timing
        threading.Event().wait(0.001)
    with pool.connection() as sock:
        assert roundtrip(sock.raw) == b"ping"
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


def test_unexpected_bytes_on_an_idle_socket_discard_it(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address))
    with pool.connection() as sock:
        sock.raw.sendall(b"late")  # the echo arrives while the socket is idle
    conn = pool._core.idle[0].conn
    while not conn.recv(4, socket.MSG_PEEK):
        pass
    with pool.connection() as sock:
        assert roundtrip(sock.raw) == b"ping"
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


def test_server_restart_is_survived(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address), max_size=3)
    socks = [pool.acquire() for _ in range(3)]
    for s in socks:
        s.close()
    server.restart()
    for _ in range(3):
        with pool.connection() as sock:
            assert roundtrip(sock.raw) == b"ping"
    assert pool.stats().closed_by_reason["check_failed"] >= 1
    pool.close()


def test_oserror_in_use_discards_the_socket(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address))
    with pytest.raises(BrokenPipeError), pool.connection():
        raise BrokenPipeError("peer gone mid-request")
    assert pool.stats().closed_by_reason["broken"] == 1
    pool.close()


def test_connect_failure_is_reported_in_the_timeout() -> None:
    with EchoServer() as srv:
        address = srv.address
    pool = ConnectionPool(TCPConnector(*address, connect_timeout=1), timeout=0.01)
    with pytest.raises(TimeoutError):
        pool.acquire()  # starts the creator; it may not have failed yet
    while pool.stats().create_errors < 1:
        threading.Event().wait(0.001)
    with pytest.raises(TimeoutError, match="ConnectionRefusedError"):
        pool.acquire()
    pool.close()


def test_unix_socket_connector() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "echo.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(64))

        t = threading.Thread(target=serve)
        t.start()
        pool = ConnectionPool(UnixConnector(path, io_timeout=5))
        with pool.connection() as sock:
            assert roundtrip(sock.raw) == b"ping"
        t.join()
        pool.close()
        listener.close()


def test_async_streams_round_trip_and_survive_server_restart(server: EchoServer) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(AsyncTCPConnector(*server.address), max_size=2)
        async with pool.connection() as stream:
            stream.writer.write(b"hello")
            assert await stream.reader.readexactly(5) == b"hello"
        server.restart()
        stale = pool._core.idle[0].conn
        while not stale.reader.at_eof():
            await asyncio.sleep(0.001)
        async with pool.connection() as stream:
            stream.writer.write(b"again")
            assert await stream.reader.readexactly(5) == b"again"
        assert pool.stats().closed_by_reason["check_failed"] == 1
        await pool.close()

    asyncio.run(main())


def test_async_unix_connector_refuses_a_missing_path() -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(AsyncUnixConnector("/nonexistent/echo.sock"), timeout=0.01)
        with pytest.raises(TimeoutError):
            await pool.acquire()  # starts the creator
        while pool.stats().create_errors < 1:
            await asyncio.sleep(0.001)
        with pytest.raises(TimeoutError, match="FileNotFoundError"):
            await pool.acquire()
        await pool.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TCPConnector("", 1), "host must be a non-empty str"),
        (lambda: TCPConnector("h", 70000), "port must be <= 65535"),
        (lambda: TCPConnector("h", 1, connect_timeout=0), "connect_timeout must be > 0"),
        (lambda: AsyncTCPConnector("h", -1), "port must be >= 0"),
        (lambda: UnixConnector(""), "path must be a non-empty str"),
        (lambda: TCPConnector("h", 1, io_timeout=-1), "io_timeout must be >= 0"),
    ],
)
def test_bad_arguments_name_the_parameter(make: object, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        make()  # type: ignore[operator]
