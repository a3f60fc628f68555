"""The socket adapter against a real TCP echo server on loopback."""

from __future__ import annotations

import asyncio
import math
import os
import select
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters import sockets
from poolkit.adapters.sockets import (
    AsyncTCPConnector,
    AsyncUnixConnector,
    SocketProbe,
    TCPConnector,
    UnixConnector,
    is_socket_alive,
    probe_alive,
    socket_timeout,
)
from poolkit.testing import EchoServer
from tests.adapters.fork_scenarios import ENDINGS, run


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as srv:
        yield srv


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    return sock.recv(64)


def wait_readable(sock: socket.socket) -> None:
    """Wait (bounded) until ``sock`` is readable: state the checkout check does not touch."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    assert poller.poll(10_000), "the socket never became readable"


def test_pooled_socket_round_trips_and_is_reused(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address), max_size=2)
    for _ in range(3):
        with pool.connection() as sock:
            assert roundtrip(sock.raw) == b"ping"
    assert server.accepted == 1
    pool.close()


def test_check_detects_a_peer_that_closed_idle_connections(server: EchoServer) -> None:
    """The pool's own checkout drops the connection the server closed; the caller never sees it."""
    pool = ConnectionPool(TCPConnector(*server.address), max_size=2)
    with pool.connection() as sock:
        raw = sock.raw
        assert roundtrip(raw) == b"ping"  # accepted by the server, surely
    server.close_clients()
    wait_readable(raw)  # the FIN has arrived (poll reads nothing)
    with pool.connection() as sock:
        assert roundtrip(sock.raw) == b"ping"
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


def test_a_probe_answers_for_its_socket_across_checks(server: EchoServer) -> None:
    """One poll object per socket, asked at every check: quiet is alive; then a
    stray byte, a FIN or a close makes it dead."""
    sock = socket.create_connection(server.address)
    probe = SocketProbe(sock)
    for _ in range(3):
        assert probe.alive()
        assert roundtrip(sock) == b"ping"
    sock.sendall(b"x")  # echoed back: a byte nobody asked for
    wait_readable(sock)
    assert not probe.alive()
    assert sock.recv(1) == b"x"
    assert probe.alive()
    server.close_clients()
    wait_readable(sock)
    assert not probe.alive()
    sock.close()
    assert not probe.alive()


linux_only = pytest.mark.skipif(
    os.uname().sysname != "Linux", reason="the GIL-keeping TCP test is Linux's"
)


@linux_only
def test_a_quiet_tcp_probe_keeps_the_gil_and_polls_only_on_doubt(server: EchoServer) -> None:
    """On Linux a quiet TCP socket is answered by getsockopt alone (poll would
    release the GIL at every checkout); a waiting byte or a FIN still goes to
    poll and the peek, which call it dead."""
    assert sockets._tcp_quiet_works()
    sock = socket.create_connection(server.address)
    probe = SocketProbe(sock)
    polls: list[int] = []
    real_poll = probe._poll
    assert real_poll is not None

    def counting_poll(timeout: int) -> list[tuple[int, int]]:
        polls.append(timeout)
        return real_poll(timeout)

    probe._poll = counting_poll
    assert roundtrip(sock) == b"ping"
    assert probe.alive()
    assert polls == []
    sock.sendall(b"x")  # echoed back: a byte nobody asked for
    wait_readable(sock)
    assert not probe.alive()
    assert polls == [0]
    assert sock.recv(1) == b"x"
    assert probe.alive()
    assert polls == [0]
    server.close_clients()
    wait_readable(sock)
    assert not probe.alive()
    assert polls == [0, 0]
    sock.close()


@linux_only
def test_a_tcp_probe_calls_a_reset_connection_dead() -> None:
    """A peer that resets (SO_LINGER 0) leaves the socket closed with nothing
    queued: the probe's first answer is dead."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
        probe = SocketProbe(sock)
        assert probe.alive()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        wait_readable(sock)  # the reset has arrived
        assert not probe.alive()
        sock.close()


@linux_only
def test_is_socket_alive_calls_a_reset_tcp_connection_dead() -> None:
    """The probe-less check takes the same getsockopt answer: quiet is alive,
    a reset connection is dead on the first check."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
        assert is_socket_alive(sock)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        wait_readable(sock)  # the reset has arrived
        assert not is_socket_alive(sock)
        sock.close()


def test_a_unix_socket_probe_polls(tmp_path: Any) -> None:
    """Only TCP sockets take the getsockopt answer: a Unix socket's queued
    bytes are not counted on the reader, so its probe polls."""
    ours, peer = socket.socketpair(socket.AF_UNIX)
    with ours, peer:
        probe = SocketProbe(ours)
        assert not probe._tcp
        assert probe.alive()
        peer.sendall(b"x")
        wait_readable(ours)
        assert not probe.alive()


def test_a_probe_of_a_closed_socket_never_polls_the_number_reused(server: EchoServer) -> None:
    """The descriptor number of a closed socket goes to the next file opened
    (here a quiet socket: polled, it would look alive); the probe of the
    closed socket says dead instead of polling that file."""
    first = socket.create_connection(server.address)
    probe = SocketProbe(first)
    first.close()
    second = socket.create_connection(server.address)
    try:
        assert not probe.alive()
    finally:
        second.close()


def test_probe_alive_replaces_the_probe_when_the_client_reconnects(server: EchoServer) -> None:
    """``probe_alive(client, client.sock)`` keeps a probe on the client for its
    current socket, so a client that reconnects is checked on its new socket."""

    class Client:
        sock: socket.socket

    client = Client()
    client.sock = socket.create_connection(server.address)
    assert probe_alive(client, client.sock)
    kept = client._poolkit_probe  # type: ignore[attr-defined]
    assert probe_alive(client, client.sock)
    assert client._poolkit_probe is kept  # type: ignore[attr-defined]
    client.sock.close()
    client.sock = socket.create_connection(server.address)
    assert probe_alive(client, client.sock)
    assert client._poolkit_probe is not kept  # type: ignore[attr-defined]
    client.sock.close()


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
    """After a restart, the first checkout drops every dead idle socket and hands out a new one."""
    pool = ConnectionPool(TCPConnector(*server.address), max_size=3)
    socks = [pool.acquire() for _ in range(3)]
    raws = [s.raw for s in socks]
    for s in socks:
        assert roundtrip(s.raw) == b"ping"  # each accepted by the server before it stops
        s.close()
    server.restart()
    for raw in raws:
        wait_readable(raw)  # each FIN has arrived
    with pool.connection() as sock:
        assert roundtrip(sock.raw) == b"ping"
    stats = pool.stats()
    assert (stats.closed_by_reason["check_failed"], stats.created) == (3, 4)
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
    ("cls", "args", "kwargs", "exc", "match"),
    [
        (TCPConnector, ("", 1), {}, ValueError, "host must be a non-empty str"),
        (TCPConnector, (b"h", 1), {}, TypeError, "host must be a str"),
        (TCPConnector, ("h", 70000), {}, ValueError, "port must be <= 65535"),
        (TCPConnector, ("h", 0), {}, ValueError, "port must be >= 1"),
        (TCPConnector, ("h", True), {}, TypeError, "port must be an int"),
        (TCPConnector, ("h", 1), {"connect_timeout": 0}, ValueError, "connect_timeout must be > 0"),
        (TCPConnector, ("h", 1), {"io_timeout": -1}, ValueError, "io_timeout must be >= 0"),
        (TCPConnector, ("h", 1), {"io_timeout": "5"}, TypeError, "io_timeout"),
        (TCPConnector, ("h", 1), {"nodelay": "yes"}, TypeError, "nodelay must be True or False"),
        (TCPConnector, ("h", 1), {"nodelay": 0}, TypeError, "nodelay must be True or False"),
        (AsyncTCPConnector, ("h", -1), {}, ValueError, "port must be >= 1"),
        (AsyncTCPConnector, ("h", 1), {"connect_timeout": math.nan}, ValueError, "connect_timeout"),
        (UnixConnector, ("",), {}, ValueError, "path must be a non-empty str"),
        (UnixConnector, (3,), {}, TypeError, "path must be a str"),
        (AsyncUnixConnector, ("p",), {"connect_timeout": -1}, ValueError, "connect_timeout"),
    ],
)
def test_bad_arguments_name_the_parameter(
    cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        cls(*args, **kwargs)


@pytest.mark.parametrize("seconds", [2_147_483.648, 4_294_967.296, 1e10, 1e300, math.inf])
def test_socket_timeouts_beyond_what_poll_takes_mean_blocking(
    server: EchoServer, seconds: float
) -> None:
    """A socket cannot wait longer than INT_MAX ms: past that the timeout is "no limit".

    4294967.296 s used to wrap to a 0 ms poll (every read timed out at once),
    1e10 s and up raised OverflowError when the pool opened the connection.
    """
    pool = ConnectionPool(
        TCPConnector(*server.address, connect_timeout=seconds, io_timeout=seconds), timeout=5
    )
    with pool.connection() as sock:
        assert sock.raw.gettimeout() is None
        assert roundtrip(sock.raw) == b"ping"
    pool.close()


def test_socket_timeouts_up_to_the_limit_are_kept(server: EchoServer) -> None:
    pool = ConnectionPool(TCPConnector(*server.address, io_timeout=2_147_483.647), timeout=5)
    with pool.connection() as sock:
        assert sock.raw.gettimeout() == 2_147_483.647
    pool.close()
    assert socket_timeout(0.0) == 0.0
    assert socket_timeout(None) is None


def test_unix_connector_takes_huge_timeouts() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            connector = UnixConnector(path, connect_timeout=1e300, io_timeout=math.inf)
            sock = connector.create()
            assert sock.gettimeout() is None
            connector.close(sock)


def test_async_connectors_take_huge_and_infinite_connect_timeouts(server: EchoServer) -> None:
    async def main() -> None:
        for seconds in (1e300, math.inf):
            pool = AsyncConnectionPool(
                AsyncTCPConnector(*server.address, connect_timeout=seconds), timeout=5
            )
            async with pool.connection() as stream:
                stream.writer.write(b"hi")
                assert await stream.reader.readexactly(2) == b"hi"
            await pool.close()

    asyncio.run(main())


# -- fork: a child never touches its parent's sockets --------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("ending", ENDINGS)
def test_forked_child_never_touches_the_parents_sockets(server: EchoServer, ending: str) -> None:
    """Held in a with block, held, idle: after the child releases, closes, exits, all still work.

    The parent then uses each of its three sockets again: the same objects,
    nothing closed, nothing reopened; the server saw one more connection (the
    child's own), never a shutdown of the parent's.
    """
    host, port = server.address
    result = run("sockets", f"{host}:{port}", ending)
    assert result["child"] == 0, result["stderr"]
    assert result["stderr"] == ""  # nothing raised or warned in a finalizer at the child's exit
    assert result["answers"] == {"A": "A-after", "B": "B-after", "C": "C-after"}
    assert result["same_connections"]
    assert (result["created"], result["closed"]) == (3, 0)
    assert server.accepted == 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_connector_close_in_a_forked_child_leaves_the_parents_connection_up(
    server: EchoServer,
) -> None:
    """shutdown() would cut the connection for both processes; a child only closes its copy."""
    connector = TCPConnector(*server.address, io_timeout=10)
    sock = connector.create()
    assert roundtrip(sock) == b"ping"
    pid = os.fork()
    if pid == 0:  # as a pool that forgot the fork rule would do
        code = 1
        try:
            connector.close(sock)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert roundtrip(sock, b"still") == b"still"
    connector.close(sock)
    assert sock.fileno() == -1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_async_connector_close_in_a_forked_child_leaves_the_parents_stream_readable(
    server: EchoServer,
) -> None:
    """Closing a transport in the child would unregister the socket from the shared epoll.

    The parent's loop would then never see its stream readable again: its
    next read hangs. The child's close() must leave the stream alone.
    """

    async def main() -> None:
        connector = AsyncTCPConnector(*server.address)
        stream = await connector.create()
        stream.writer.write(b"a")
        assert await stream.reader.readexactly(1) == b"a"
        pid = os.fork()
        if pid == 0:  # still inside the parent's loop, as a forked worker is
            code = 1
            try:
                await connector.close(stream)  # as a pool that forgot the fork rule would
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        stream.writer.write(b"b")
        async with asyncio.timeout(5):  # hung here: the socket was gone from the epoll set
            assert await stream.reader.readexactly(1) == b"b"
        assert os.waitstatus_to_exitcode(status) == 0
        await connector.close(stream)
        assert stream.writer.is_closing()

    asyncio.run(main())


def test_async_close_aborts_a_transport_that_cannot_flush() -> None:
    """close() has a deadline: a peer that never reads cannot keep the stream open."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        async def main() -> None:
            connector = AsyncTCPConnector(*listener.getsockname(), connect_timeout=0.05)
            stream = await connector.create()
            peer, _ = listener.accept()
            with peer:  # never reads: the send buffers fill, the write stays pending
                raw = stream.writer.transport.get_extra_info("socket")
                stream.writer.transport.set_write_buffer_limits(high=1 << 30)
                stream.writer.write(b"x" * (64 << 20))
                assert stream.writer.transport.get_write_buffer_size() > 0
                await connector.close(stream)
                await asyncio.sleep(0)  # connection_lost runs on the next turn
                assert raw.fileno() == -1

        asyncio.run(main())
