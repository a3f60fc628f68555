"""Fakes for testing code that uses poolkit's connection pools.

- :class:`FakeClock`: a monotonic clock that moves only when told, for
  ``clock=`` (lifetimes, idle times, leak timeouts without sleeping).
- :class:`FakeConnector` / :class:`AsyncFakeConnector`: connectors whose
  connections are plain objects, with scriptable faults: ``create()`` raising
  or hanging, checks failing, pings and resets raising, connections broken.
- :class:`EchoServer`: a real TCP echo server on loopback that can drop its
  clients or restart, for testing socket pools.

Example::

    from poolkit import ConnectionPool
    from poolkit.testing import FakeClock, FakeConnector

    clock, connector = FakeClock(), FakeConnector()
    pool = ConnectionPool(connector, max_size=2, max_idle_time=60, clock=clock)
    with pool.connection() as conn:
        ...
    clock.advance(61)
    pool.maintain()
    assert connector.open_connections == []
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import selectors
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = [
    "AsyncFakeConnector",
    "EchoServer",
    "FakeClock",
    "FakeConnection",
    "FakeConnector",
]


# What the connectors' ping and reset return: plain values, or awaitables.
PingT = TypeVar("PingT")
ResetT = TypeVar("ResetT")


class FakeClock:
    """A monotonic clock in seconds that only moves on :meth:`advance`.

    Args:
        start: the initial reading.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds


class FakeConnection:
    """A connection made by a fake connector.

    Attributes:
        id: 1, 2, 3... in creation order.
        closed: closed by the pool (through the connector).
        broken: :meth:`FakeConnector.break_connection` was called: its check fails.
        uses: times :meth:`use` was called.
    """

    def __init__(self, conn_id: int) -> None:
        self.id = conn_id
        self.closed = False
        self.broken = False
        self.uses = 0
        self.resets = 0

    def use(self) -> int:
        """Pretend to do a round trip.

        Returns:
            The connection's id.

        Raises:
            ConnectionResetError: the connection is closed or broken.
        """
        if self.closed or self.broken:
            raise ConnectionResetError(f"fake connection {self.id} is broken")
        self.uses += 1
        return self.id

    def __repr__(self) -> str:
        state = " closed" if self.closed else (" broken" if self.broken else "")
        return f"<FakeConnection {self.id}{state}>"


class _Script(Generic[PingT, ResetT]):
    """The faults shared by both fake connectors.

    Attributes:
        check: the liveness check, or ``None`` when not offered.
        ping: the ping (a coroutine function on the async connector), or ``None``.
        reset: the reset (likewise), or ``None``.
    """

    def __init__(
        self,
        *,
        check: bool,
        ping: Callable[[FakeConnection], PingT] | None,
        reset: Callable[[FakeConnection], ResetT] | None,
    ) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.connections: list[FakeConnection] = []
        self.create_calls = 0
        self.pings = 0
        self._create_failures: list[BaseException] = []
        self.fail_pings = False
        self.fail_resets = False
        # Plain attributes: the pool looks the optional hooks up by name once,
        # and a hook that is not offered must read as None.
        self.check: Callable[[FakeConnection], bool] | None = self._check if check else None
        self.ping = ping
        self.reset = reset

    @property
    def open_connections(self) -> list[FakeConnection]:
        """Connections created and not closed yet."""
        with self._lock:
            return [c for c in self.connections if not c.closed]

    def fail_next_creates(self, count: int = 1, exc: BaseException | None = None) -> None:
        """Make the next ``count`` calls to ``create()`` raise ``exc``."""
        error = exc if exc is not None else ConnectionRefusedError("fake server refused")
        with self._lock:
            self._create_failures.extend([error] * count)

    def break_connection(self, conn: FakeConnection) -> None:
        """Mark ``conn`` broken: its check fails and ``use()`` raises."""
        conn.broken = True

    def _new(self) -> FakeConnection:
        with self._lock:
            self.create_calls += 1
            if self._create_failures:
                raise self._create_failures.pop(0)
            conn = FakeConnection(next(self._ids))
            self.connections.append(conn)
            return conn

    def _close(self, conn: FakeConnection) -> None:
        if conn.closed:
            raise AssertionError(f"{conn!r} closed twice")
        conn.closed = True

    def _check(self, conn: FakeConnection) -> bool:
        return not conn.broken and not conn.closed

    def _ping(self, conn: FakeConnection) -> bool:
        self.pings += 1
        if self.fail_pings or conn.broken:
            raise ConnectionResetError("fake ping failed")
        return True

    def _reset(self, conn: FakeConnection) -> None:
        if self.fail_resets:
            raise ConnectionResetError("fake reset failed")
        conn.resets += 1

    def is_broken(self, exc: BaseException) -> bool:
        """Connection errors break a connection; other exceptions do not."""
        return isinstance(exc, ConnectionError)


class FakeConnector(_Script[bool, None]):
    """A :class:`~poolkit.Connector` of :class:`FakeConnection` objects.

    Args:
        check: offer ``check()`` (fails for broken connections).
        ping: offer ``ping()`` (raises when :attr:`fail_pings` or broken).
        reset: offer ``reset()`` (raises when :attr:`fail_resets`).
    """

    def __init__(self, *, check: bool = True, ping: bool = True, reset: bool = True) -> None:
        super().__init__(
            check=check, ping=self._ping if ping else None, reset=self._reset if reset else None
        )
        self._gate: threading.Event | None = None
        self.hanging = threading.Semaphore(0)

    def hang_creates(self) -> None:
        """Make ``create()`` block until :meth:`release_creates` (a dead server)."""
        self._gate = threading.Event()

    def release_creates(self) -> None:
        """Let hanging and future ``create()`` calls proceed."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def create(self) -> FakeConnection:
        """Open a fake connection (or fail/hang as scripted)."""
        gate = self._gate
        if gate is not None:
            self.hanging.release()
            gate.wait()
        return self._new()

    def close(self, conn: FakeConnection) -> None:
        """Mark ``conn`` closed (closing twice is an AssertionError)."""
        self._close(conn)


class AsyncFakeConnector(_Script[Awaitable[bool], Awaitable[None]]):
    """An :class:`~poolkit.AsyncConnector` of :class:`FakeConnection` objects.

    Besides the faults of :class:`FakeConnector`, each coroutine can be made to
    hang until released, to test cancellation at every await point.

    Args:
        check: offer ``check()``.
        ping: offer ``ping()``.
        reset: offer ``reset()``.
    """

    def __init__(self, *, check: bool = True, ping: bool = True, reset: bool = True) -> None:
        super().__init__(
            check=check, ping=self._aping if ping else None, reset=self._areset if reset else None
        )
        self._gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, int] = {"create": 0, "close": 0, "ping": 0, "reset": 0}

    def hang(self, method: str) -> None:
        """Make ``method`` ("create", "close", "ping" or "reset") block until released."""
        self._gates[method] = asyncio.Event()

    def release(self, method: str) -> None:
        """Let hanging and future calls of ``method`` proceed."""
        gate = self._gates.pop(method, None)
        if gate is not None:
            gate.set()

    def hang_creates(self) -> None:
        """Make ``create()`` block until :meth:`release_creates` (as :class:`FakeConnector`)."""
        self.hang("create")

    def release_creates(self) -> None:
        """Let hanging and future ``create()`` calls proceed."""
        self.release("create")

    async def _gate(self, method: str) -> None:
        self.entered[method] += 1
        gate = self._gates.get(method)
        if gate is not None:
            await gate.wait()

    async def create(self) -> FakeConnection:
        """Open a fake connection (or fail/hang as scripted)."""
        await self._gate("create")
        return self._new()

    async def close(self, conn: FakeConnection) -> None:
        """Mark ``conn`` closed."""
        await self._gate("close")
        self._close(conn)

    async def _aping(self, conn: FakeConnection) -> bool:
        await self._gate("ping")
        return self._ping(conn)

    async def _areset(self, conn: FakeConnection) -> None:
        await self._gate("reset")
        self._reset(conn)


class EchoServer:
    """A TCP echo server on loopback, in a background thread, for socket-pool tests.

    It echoes every byte back. :meth:`close_clients` closes every accepted
    connection (a server dropping idle clients); :meth:`restart` stops and
    starts it again on the same port (a server restart).

    Args:
        host: the address to listen on.
        port: the port (0: any free port, fixed across restarts).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.accepted = 0
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to."""
        return (self.host, self.port)

    def start(self) -> EchoServer:
        """Start listening (again); return ``self``."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="poolkit-echo", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    sock = key.fileobj
                    if sock is self._wake_r:
                        self._wake_r.recv(64)
                        with self._lock:
                            for client in list(self._clients):
                                if client.fileno() < 0:
                                    self._clients.discard(client)
                                    with contextlib.suppress(KeyError, ValueError):
                                        sel.unregister(client)
                    elif sock is listener:
                        try:
                            client, _ = listener.accept()
                        except BlockingIOError:
                            continue
                        client.setblocking(False)
                        with self._lock:
                            self._clients.add(client)
                            self.accepted += 1
                        # close_clients() closes sockets from another thread:
                        # their fd number can come back from accept() before
                        # the wake-up below has unregistered the closed one.
                        stale = sel.get_map().get(client.fileno())
                        if stale is not None:
                            with contextlib.suppress(KeyError, ValueError):
                                sel.unregister(stale.fileobj)
                        sel.register(client, selectors.EVENT_READ)
                    else:
                        assert isinstance(sock, socket.socket)
                        self._echo(sock, sel)
        finally:
            sel.close()
            listener.close()
            with self._lock:
                for client in self._clients:
                    client.close()
                self._clients.clear()

    def _echo(self, client: socket.socket, sel: selectors.BaseSelector) -> None:
        try:
            data = client.recv(65536)
            if data:
                client.setblocking(True)
                client.sendall(data)
                client.setblocking(False)
                return
        except OSError:
            pass
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(client)
        with self._lock:
            self._clients.discard(client)
        client.close()

    def close_clients(self) -> None:
        """Close every accepted connection (the server dropping idle clients)."""
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                client.close()
        self._wake_w.send(b"x")

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._stopping = True
        self.close_clients()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def restart(self) -> None:
        """Stop, then listen again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> EchoServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._wake_r.close()
        self._wake_w.close()
