"""Real servers for the adapter tests: PostgreSQL, memcached, an HTTP/1.1 server.

A test that needs a server the machine lacks is skipped locally and fails in
CI (``CI=true``), so a CI run can never pass by skipping everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# The machine's PostgreSQL (trust auth); override with POOLKIT_TEST_PG_DSN.
DEFAULT_PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=5"
# Upper bound on waits for something that must happen promptly (a server
# starting, a backend going away); reaching it is a failure, never a pass.
PROMPT = 10.0


def missing(what: str) -> None:
    """Skip (locally) or fail (in CI) a test whose server is absent."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI (CI=true) but is not available")
    pytest.skip(f"{what} is not available")


def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds; no test asserts on elapsed time."""
    deadline = time.monotonic() + PROMPT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.002)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """A DSN of a reachable PostgreSQL, or skip/fail."""
    dsn = os.environ.get("POOLKIT_TEST_PG_DSN", DEFAULT_PG_DSN)
    try:
        import psycopg
    except ImportError:
        missing("psycopg (pip install 'poolkit[postgres]')")
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        missing(f"PostgreSQL at {dsn!r} ({exc})")
    return dsn


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    """A fresh table ``(x int PRIMARY KEY)`` on ``pg_dsn``, dropped afterwards."""
    import psycopg

    name = f"poolkit_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (x int PRIMARY KEY)")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # A failed test may leave a transaction open on the table (a forked
        # test's parent that never got to commit): end those sessions, or
        # DROP waits for ever.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE relation = %s::regclass AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def committed_rows(dsn: str, table: str) -> list[int]:
    """The rows of ``table`` other sessions can see, from a connection of its own."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(f"SELECT x FROM {table} ORDER BY x")]


class MemcachedServer:
    """A memcached process on a free loopback port; ``kill()`` and ``start()`` it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> MemcachedServer:
        args = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]  # memcached refuses to run as root without -u
        proc = self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"memcached exited with {proc.returncode}: {err}")
            try:
                socket.create_connection(self.address, timeout=1).close()
            except OSError:
                return False
            return True

        try:
            eventually(up, f"memcached listening on port {self.port}")
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None


@pytest.fixture
def memcached_factory() -> Iterator[Callable[[], MemcachedServer]]:
    """Start memcached servers on demand; every one is killed at the end."""
    binary = shutil.which("memcached") or (
        "/usr/bin/memcached" if os.path.exists("/usr/bin/memcached") else None
    )
    if binary is None:
        missing("memcached (scripts/install-test-servers.sh installs it)")
    try:
        import pymemcache  # noqa: F401
    except ImportError:
        missing("pymemcache (pip install 'poolkit[memcache]')")
    assert binary is not None
    started: list[MemcachedServer] = []

    def start() -> MemcachedServer:
        server = MemcachedServer(binary).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


class _Handler(BaseHTTPRequestHandler):
    """Routes of the test HTTP/1.1 server (keep-alive unless a route says otherwise)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the
    # second waits for the client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True
    server: LoopbackHTTPServer

    def setup(self) -> None:
        # The server-side keep-alive timeout (socketserver reads it per handler).
        self.timeout = self.server.idle_timeout  # type: ignore[misc]
        super().setup()
        self.served = 0
        with self.server.lock:
            self.server.accepted += 1
            self.server.sockets.append(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD response has headers only (RFC 9110 9.3.2)
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.served += 1
        with self.server.lock:
            self.server.requests += 1
        path = self.path
        if path == "/drop-reused" and self.served > 1:
            # The race net/http retries for: a kept-alive connection closed by
            # the server just as the next request arrived (no response at all).
            self.close_connection = True
            return
        if path == "/close":
            self._send(200, b"bye", {"Connection": "close"})
            self.close_connection = True
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/truncated":
            # Promises 100 bytes, sends 10 and hangs up: a body cut short.
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
        elif path == "/slow":
            self.server.release_slow.wait(PROMPT)
            self._send(200, b"late")
        elif path.startswith("/big"):
            self._send(200, b"x" * 200_000)
        elif path == "/json":
            self._send(200, b'{"ok": true}', {"Content-Type": "application/json"})
        else:
            self._send(200, b"hello " + path.encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self.served += 1
        with self.server.lock:
            self.server.requests += 1
        if self.path == "/drop-reused" and self.served > 1:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length", "0"))
        self._send(200, self.rfile.read(length))


class LoopbackHTTPServer(ThreadingHTTPServer):
    """An HTTP/1.1 server on a free loopback port, run in a thread."""

    daemon_threads = True

    def __init__(self, idle_timeout: float | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.idle_timeout = idle_timeout
        self.lock = threading.Lock()
        self.accepted = 0
        self.requests = 0
        # /slow answers once this is set (or after PROMPT seconds).
        self.release_slow = threading.Event()
        self.sockets: list[socket.socket] = []
        # A short poll interval: shutdown() waits for one poll (default 0.5 s).
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.release_slow.set()
        self.shutdown()
        self.server_close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join()


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    server = LoopbackHTTPServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A private PostgreSQL cluster (``tests.adapters._pgcluster.PgCluster``) that
    fault tests may restart; never the machine's shared server. Skips locally
    or fails in CI when the machine cannot run one."""
    from tests.adapters._pgcluster import ClusterUnavailable, PgCluster

    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg (pip install 'poolkit[postgres]')")
    try:
        cluster = PgCluster(free_port())
    except ClusterUnavailable as exc:
        missing(str(exc))
    try:
        cluster.init().start()
        yield cluster
    finally:
        cluster.destroy()


def wait_readable(fds: list[int]) -> None:
    """Wait (bounded) until each socket has input or a hang-up pending, reading nothing.

    For tests of a liveness check: they wait on the socket the way a kernel
    reports it, so the check under test is the first thing to read.
    """
    import select

    for fd in fds:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        if not poller.poll(PROMPT * 1000):
            raise AssertionError(f"nothing arrived on socket {fd} within {PROMPT} s")


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """``closing(pool)`` returns a sync pool and closes it after the test, even a
    failed one: a pool left open would be finalized during a later test, whose
    warnings filter then fails that innocent test. (Async tests use ``async with``.)"""
    opened: list[Any] = []

    def track(pool: Any) -> Any:
        opened.append(pool)
        return pool

    yield track
    for pool in reversed(opened):
        pool.close()
