"""Socket connectors: TCP and Unix sockets for both connection pools.

fatih/pool's use case, with the health check it lacks::

    from poolkit import ConnectionPool
    from poolkit.adapters.sockets import TCPConnector

    pool = ConnectionPool(TCPConnector("10.0.0.5", 11211), max_size=8)
    with pool.connection() as sock:
        sock.sendall(b"version\\r\\n")

Liveness is checked at every checkout with a non-blocking ``MSG_PEEK`` (as
urllib3, redis-py and generic-connection-pool do): an idle socket that is
readable with zero bytes was closed by the peer, and one with unexpected bytes
waiting is out of step with its protocol; both are discarded. Any ``OSError``
raised while the socket is in use counts as broken.

Async connections are :class:`Stream` pairs ``(reader, writer)`` from
``asyncio.open_connection``; their check reads the stream's own state (EOF
seen, transport closing, unread bytes), which the event loop keeps current.

Timeouts of any size are accepted. A socket cannot wait longer than
:data:`SOCKET_TIMEOUT_MAX` (about 24.8 days) in one call, so a longer timeout,
and ``math.inf``, mean "no limit": the socket blocks (:func:`socket_timeout`).

What the pools hand out is typed as the connection itself:
:class:`PooledSocket` is a ``socket.socket`` and :class:`PooledStream` a
:class:`Stream` to a type checker (and poolkit's ``PooledConnectionBase``:
``discard()``, ``raw``, ``released``), so ``sock.sendall`` is checked and a
misspelt method is an error. At run time they are proxies that forward every
attribute and implement what the types promise beyond attributes: ``with
sock:`` gives the socket back (a pooled socket's ``close()``; discarded when
the block's error broke it), and a stream unpacks, indexes and has a length
as a ``(reader, writer)`` pair.

After ``os.fork()`` a child shares the parent's sockets. The pools forget
them in the child without closing them; as a second line of defence, a
connector's ``close()`` only shuts a socket down (``shutdown()`` acts on the
connection itself, for every process holding it) in the process that opened
it, and otherwise just closes its own file descriptor. An async connector's
``close()`` does nothing to a stream another process opened: closing its
transport would unregister the socket from the epoll instance parent and
child share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeAlias

from poolkit._validate import check_bool, check_int, check_optional_seconds
from poolkit.adapters._timeouts import check_timeout
from poolkit.connections._pooled import PooledConnection
from poolkit.connections._pooled_async import AsyncPooledConnection

if TYPE_CHECKING:
    from poolkit.connections import AsyncPooledConnectionBase, PooledConnectionBase

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "SOCKET_TIMEOUT_MAX",
    "AsyncTCPConnector",
    "AsyncUnixConnector",
    "PooledSocket",
    "PooledStream",
    "SocketProbe",
    "Stream",
    "TCPConnector",
    "UnixConnector",
    "is_socket_alive",
    "is_stream_alive",
    "probe_alive",
    "socket_timeout",
]

# Seconds to wait for a connection to be established: long enough for a
# loaded server's accept queue, short enough that a dead address fails well
# inside a pool's 30 s acquire timeout (net.Dialer examples use 30 s; urllib3's
# connect timeout default is the socket default, often unbounded).
DEFAULT_CONNECT_TIMEOUT = 10.0
# The longest timeout a socket honours, in seconds: INT_MAX milliseconds. CPython
# waits on a socket with poll(), whose timeout is a C int of milliseconds; a
# longer value wraps around (4294967.296 s times out at once) and past ~9.2e9 s
# settimeout() raises OverflowError. Longer timeouts mean "no limit".
SOCKET_TIMEOUT_MAX = 2_147_483.647


def socket_timeout(seconds: float | None) -> float | None:
    """What to give ``socket.settimeout`` for a timeout of ``seconds``.

    Args:
        seconds: a checked timeout (>= 0); ``None`` or ``math.inf``: no limit.

    Returns:
        ``seconds`` itself up to :data:`SOCKET_TIMEOUT_MAX`; ``None`` (a
        blocking socket, no limit) for ``None``, ``math.inf`` and anything
        longer, which no socket wait can honour anyway.
    """
    if seconds is None or seconds > SOCKET_TIMEOUT_MAX:
        return None
    return seconds


def _check_name(name: str, value: object) -> str:
    """A host name or a socket path: a non-empty str."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got ''")
    return value


def _check_port(port: object) -> int:
    value = check_int("port", port, minimum=1)
    if value > 65535:
        raise ValueError(f"port must be <= 65535, got {port}")
    return value


def is_socket_alive(sock: socket.socket) -> bool:
    """Whether an idle socket still looks usable, without blocking.

    On Linux a TCP socket that is established with nothing queued to read is
    alive by two ``getsockopt`` calls, which keep the GIL (see
    :class:`SocketProbe`); any other socket or answer is polled and peeked.

    Returns:
        False if the peer closed it (readable, zero bytes), if unexpected bytes
        are waiting, or if the socket errors; True if nothing is readable.
    """
    fd = sock.fileno()
    if fd < 0:
        return False
    if _answers_tcp_quiet(sock) and _tcp_quiet(sock):
        return True
    # One zero-timeout poll is the common answer ("nothing to read"). recv()
    # alone would not do: on a socket with a timeout Python waits for
    # readability first, so the check would block for the whole timeout.
    if _HAS_POLL:
        poller = select.poll()
        poller.register(fd, _POLL_READ)
        if not poller.poll(0):
            return True
    elif not select.select([sock], [], [], 0)[0]:
        return True
    return _peek_alive(sock)


def _peek_alive(sock: socket.socket) -> bool:
    """The verdict on a socket that polled readable: a spurious wake-up, a FIN or stray bytes."""
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return True  # spurious wake-up: nothing to read after all
    except OSError:
        return False
    finally:
        sock.settimeout(previous)
    return False  # b"": closed by the peer; bytes: out of step with the protocol


_HAS_POLL = hasattr(select, "poll")
_POLL_READ = select.POLLIN | select.POLLPRI if _HAS_POLL else 0

# Linux's SO_MEMINFO (asm-generic; 4.6 and later): its first word is the
# memory of the skbs queued to be read, a FIN's included. Python's socket
# module has no name for it. Other architectures number it differently, so
# _tcp_quiet_works() tests it on a real connection before it is trusted.
_SO_MEMINFO = 55
_TCP_INFO: int = getattr(socket, "TCP_INFO", -1)
_TCP_ESTABLISHED = 1
_tcp_quiet_verdict: bool | None = None


def _tcp_quiet(sock: socket.socket) -> bool:
    """Whether a TCP socket is established with nothing queued to read.

    Two ``getsockopt`` calls, which CPython makes without releasing the GIL
    (``poll`` and ``ioctl`` release it). Under threads that matters more than
    the call itself: a released GIL goes to a waiting thread, and taking it
    back costs this one a context switch, on every checkout.

    "Established, nothing queued" is when ``poll`` finds nothing to read: a
    FIN moves the connection to CLOSE_WAIT and is queued itself, stray bytes
    and urgent data are queued, a reset leaves it CLOSED. Anything else
    (False, and an ``OSError``) is decided by ``poll`` and a peek, as before.
    """
    try:
        return (
            sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0] == _TCP_ESTABLISHED
            and sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO) == 0
        )
    except OSError:
        return False


def _tcp_quiet_works() -> bool:
    """Whether :func:`_tcp_quiet` answers right here; tried once per process.

    On a loopback connection: quiet when fresh, not with a byte waiting,
    quiet once it is read, not after the peer's FIN. Any other answer, or an
    error (no loopback, an older kernel, another option number), leaves the
    probes on ``poll``.
    """
    global _tcp_quiet_verdict
    if _tcp_quiet_verdict is None:
        _tcp_quiet_verdict = False
        if _TCP_INFO >= 0 and _HAS_POLL and os.uname().sysname == "Linux":
            with contextlib.suppress(OSError):
                _tcp_quiet_verdict = _try_tcp_quiet()
    return _tcp_quiet_verdict


def _answers_tcp_quiet(sock: socket.socket) -> bool:
    """Whether :func:`_tcp_quiet` may answer for ``sock``: TCP, where it works.

    Read with ``getattr``: a client library's socket stand-in (pymemcache
    takes a ``socket_module``) may lack the attributes; it is polled.
    """
    return (
        getattr(sock, "type", None) == socket.SOCK_STREAM
        and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6)
        and _tcp_quiet_works()
    )


def _try_tcp_quiet() -> bool:
    """:func:`_tcp_quiet_works`' trial on a fresh loopback connection."""
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname(), timeout=5) as ours,
    ):
        peer, _ = server.accept()
        with peer:
            fresh = _tcp_quiet(ours)
            peer.sendall(b"x")
            byte_seen = _wait_readable(ours) and not _tcp_quiet(ours)
            read = ours.recv(1) == b"x" and _tcp_quiet(ours)
            peer.shutdown(socket.SHUT_WR)
            fin_seen = _wait_readable(ours) and not _tcp_quiet(ours)
    return fresh and byte_seen and read and fin_seen


def _wait_readable(sock: socket.socket) -> bool:
    """Poll ``sock`` for up to 5 s; whether it became readable."""
    poller = select.poll()
    poller.register(sock.fileno(), _POLL_READ)
    return bool(poller.poll(5000))


class SocketProbe:
    """:func:`is_socket_alive` for one socket, with its poll object made once.

    A connection is checked at every checkout; building, registering and
    dropping a ``select.poll()`` each time costs about as much again as the
    zero-timeout ``poll`` itself. A probe keeps one for its socket, and
    answers as :func:`is_socket_alive` does:

    - the poll object is registered on the descriptor number the socket had
      when the probe was made, so each check first asks the socket for its
      descriptor: a closed socket (-1) is dead and never polled, so a number
      the system reused for another file after the close is never read as
      this socket's;
    - a ``select.poll`` object is plain memory (no kernel object, unlike
      ``epoll``): nothing to close, and a forked child's copy is as good as
      the parent's;
    - CPython refuses one poll object in two threads at once; a pooled
      connection is checked by the one thread checking it out, and a
      concurrent use anyway (``RuntimeError``) falls back to a poll object
      of its own;
    - on Linux, a TCP socket is first asked whether it is established with
      nothing queued to read, by ``getsockopt`` calls that keep the GIL: the
      usual answer costs no thread switch, where ``poll`` releases the GIL
      and, under threads, waits to take it back. Any other answer goes to
      ``poll`` as above.

    Args:
        sock: the socket the probe checks (:attr:`sock`).
    """

    __slots__ = ("_fd", "_poll", "_tcp", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._fd = fd = sock.fileno()
        self._poll: Callable[[int], list[tuple[int, int]]] | None = None
        if _HAS_POLL and fd >= 0:
            poller = select.poll()
            poller.register(fd, _POLL_READ)
            self._poll = poller.poll
        # A TCP socket on Linux is first asked without releasing the GIL
        # (see _tcp_quiet): the common answer, "quiet", costs no thread switch.
        self._tcp = fd >= 0 and _answers_tcp_quiet(sock)

    def alive(self) -> bool:
        """:func:`is_socket_alive` of :attr:`sock`."""
        sock = self.sock
        poll = self._poll
        if poll is None or sock.fileno() != self._fd:
            return is_socket_alive(sock)  # closed (-1), or no poll() here
        if self._tcp and _tcp_quiet(sock):
            return True
        try:
            if not poll(0):
                return True
        except RuntimeError:  # polled by another thread right now
            return is_socket_alive(sock)
        return _peek_alive(sock)


def probe_alive(owner: Any, sock: socket.socket) -> bool:
    """:func:`is_socket_alive` of ``sock`` through a :class:`SocketProbe` kept on ``owner``.

    For a client object that holds its socket in an attribute and makes a new
    one when it reconnects (pymemcache's ``Client``, ``http.client``'s
    connections): the probe lives in the client's ``_poolkit_probe``
    attribute and is replaced when the client's socket is not its socket.
    """
    probe: SocketProbe | None = getattr(owner, "_poolkit_probe", None)
    if probe is None or probe.sock is not sock:
        owner._poolkit_probe = probe = SocketProbe(sock)
    return probe.alive()


def _is_broken(exc: BaseException) -> bool:
    return isinstance(exc, OSError)


if TYPE_CHECKING:
    # For type checkers the proxies are the connections, plus what every
    # proxy has (see poolkit/connections/_proxy.py).
    _SocketFace: TypeAlias = socket.socket
    _SocketProxy: TypeAlias = PooledConnectionBase[socket.socket]
else:
    _SocketFace, _SocketProxy = PooledConnection, object


class PooledSocket(_SocketFace, _SocketProxy):  # type: ignore[misc]  # see below
    """A ``socket.socket`` borrowed from a pool of a :class:`TCPConnector` or
    :class:`UnixConnector`; typed as a ``socket.socket`` (see the module docstring).

    (The ignore: a type checker sees two bases whose C layouts could not be
    combined; at run time the class derives from ``PooledConnection`` alone.)
    """

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """``with sock:``: give the socket back, or discard it if the error broke it."""
        if self._entry is None:
            return  # given back inside the block
        exc = exc_info[1] if len(exc_info) > 1 else None
        if isinstance(exc, BaseException) and self._pool._hooks.broken(exc):
            self.discard()
        else:
            self.close()


class _SocketConnector:
    # What the pool's acquire() returns: typed as a socket.socket.
    proxy_class = PooledSocket

    def __init__(self, connect_timeout: float, io_timeout: float | None) -> None:
        self.connect_timeout = check_timeout("connect_timeout", connect_timeout)
        self.io_timeout = check_optional_seconds("io_timeout", io_timeout, allow_inf=True)
        # Which process opened each socket (see close()). Weak keys: a socket
        # the pool has forgotten must not be kept alive by its connector.
        self._opened_by: weakref.WeakKeyDictionary[socket.socket, int] = weakref.WeakKeyDictionary()

    def _ready(
        self, sock: socket.socket, prepare: Callable[[socket.socket], None]
    ) -> socket.socket:
        """``sock`` made ready for the pool, or closed if any step fails.

        ``prepare(sock)`` does what the kind of socket needs (connect, set
        options); then the I/O timeout is set and this process is recorded as
        the opener (see :meth:`close`).
        """
        try:
            prepare(sock)
            sock.settimeout(socket_timeout(self.io_timeout))
            self._opened_by[sock] = os.getpid()
            return sock
        except BaseException:
            sock.close()
            raise

    def close(self, conn: socket.socket) -> None:
        """Close the socket; shut the connection down only in the process that opened it.

        ``shutdown()`` ends the connection for every process sharing it (a
        forked child closing an inherited socket would cut the parent's
        connection), where ``close()`` only drops this process's descriptor.
        In the opening process the shutdown makes the peer see the end at
        once even if a forked child still holds a copy of the descriptor.
        """
        if self._opened_by.pop(conn, None) == os.getpid():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    def check(self, conn: socket.socket) -> bool:
        """Non-blocking ``MSG_PEEK`` liveness check (see :func:`is_socket_alive`)."""
        return is_socket_alive(conn)

    def is_broken(self, exc: BaseException) -> bool:
        """Any ``OSError`` raised while the socket was in use breaks it."""
        return _is_broken(exc)


class TCPConnector(_SocketConnector):
    """Opens TCP connections to ``(host, port)`` for a :class:`~poolkit.ConnectionPool`.

    Args:
        host: name or address.
        port: TCP port.
        connect_timeout: seconds to establish the connection (> 0; ``math.inf``:
            no limit but the operating system's own).
        io_timeout: socket timeout for reads and writes afterwards (``None`` or
            ``math.inf``: blocking; 0: non-blocking).
        nodelay: set ``TCP_NODELAY`` (request/response protocols want it).

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        io_timeout: float | None = None,
        nodelay: bool = True,
    ) -> None:
        super().__init__(connect_timeout, io_timeout)
        self.host, self.port = _check_name("host", host), _check_port(port)
        self.nodelay = check_bool("nodelay", nodelay)

    def create(self) -> socket.socket:
        """Connect.

        Raises:
            OSError: refused, unreachable, or not connected within ``connect_timeout``.
        """
        sock = socket.create_connection(
            (self.host, self.port), timeout=socket_timeout(self.connect_timeout)
        )
        return self._ready(sock, self._set_options)

    def _set_options(self, sock: socket.socket) -> None:
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host!r}, {self.port})"


class UnixConnector(_SocketConnector):
    """Opens Unix-domain stream sockets to ``path`` for a :class:`~poolkit.ConnectionPool`.

    Args:
        path: the socket's filesystem path.
        connect_timeout, io_timeout: as for :class:`TCPConnector`.

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        path: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        io_timeout: float | None = None,
    ) -> None:
        super().__init__(connect_timeout, io_timeout)
        self.path = _check_name("path", path)

    def create(self) -> socket.socket:
        """Connect.

        Raises:
            OSError: no such socket, refused, or not connected within ``connect_timeout``.
        """
        return self._ready(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), self._connect)

    def _connect(self, sock: socket.socket) -> None:
        sock.settimeout(socket_timeout(self.connect_timeout))
        sock.connect(self.path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class Stream(NamedTuple):
    """An asyncio connection: the pair ``asyncio.open_connection`` returns."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


if TYPE_CHECKING:
    _StreamFace: TypeAlias = Stream
    _StreamProxy: TypeAlias = AsyncPooledConnectionBase[Stream]
else:
    _StreamFace, _StreamProxy = AsyncPooledConnection, object


class PooledStream(_StreamFace, _StreamProxy):  # type: ignore[misc]  # as PooledSocket
    """A :class:`Stream` borrowed from a pool of an :class:`AsyncTCPConnector` or
    :class:`AsyncUnixConnector`; typed as a :class:`Stream`.

    ``reader, writer = conn``, ``conn[0]``, ``len(conn)`` and ``conn.reader``
    work as on the pair. Comparison and concatenation are the proxy's own
    (identity), not the tuple's.
    """

    __slots__ = ()

    if not TYPE_CHECKING:
        # Typed as Stream's own (a tuple's); forwarded to the pair.

        def _pair(self, name: str) -> Stream:
            entry = self._entry
            if entry is None:
                raise self._gone(name)
            return entry.conn

        def __iter__(self) -> Iterator[Any]:
            return iter(self._pair("__iter__"))

        def __len__(self) -> int:
            return len(self._pair("__len__"))

        def __contains__(self, item: object) -> bool:
            return item in self._pair("__contains__")

        def __getitem__(self, index: Any) -> Any:
            return self._pair("__getitem__")[index]


def is_stream_alive(stream: Stream) -> bool:
    """Whether an idle stream still looks usable (EOF not seen, no stray bytes)."""
    reader, writer = stream
    if writer.is_closing() or reader.at_eof() or reader.exception() is not None:
        return False
    # StreamReader has no public "buffered bytes" query; bytes an idle
    # connection received unasked mean the protocol is out of step.
    return not getattr(reader, "_buffer", b"")


class _AsyncStreamConnector:
    # What the pool's acquire() returns: typed as a Stream.
    proxy_class = PooledStream

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = check_timeout("connect_timeout", connect_timeout)
        # Which process opened each stream (see close()).
        self._opened_by: weakref.WeakKeyDictionary[asyncio.StreamWriter, int] = (
            weakref.WeakKeyDictionary()
        )

    def _opened(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Stream:
        self._opened_by[writer] = os.getpid()
        return Stream(reader, writer)

    async def close(self, conn: Stream) -> None:
        """Close the stream and wait (at most ``connect_timeout``, 10 s) for it to finish.

        A transport still flushing then is aborted, so nothing stays open.
        In a process that did not open the stream (a forked child), nothing
        is done: closing the transport there would unregister the socket from
        the event loop's epoll instance, which parent and child share, and the
        parent's loop would never see its stream readable again. The child's
        copy of the descriptor goes when the child exits.
        """
        opener = self._opened_by.pop(conn.writer, None)
        if opener is not None and opener != os.getpid():
            return
        conn.writer.close()
        try:
            async with asyncio.timeout(min(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT)):
                await conn.writer.wait_closed()
        except (OSError, TimeoutError):
            conn.writer.transport.abort()

    def check(self, conn: Stream) -> bool:
        """Liveness from the stream's state (see :func:`is_stream_alive`)."""
        return is_stream_alive(conn)

    def is_broken(self, exc: BaseException) -> bool:
        """Any ``OSError`` (or incomplete read) while the stream was in use breaks it."""
        return _is_broken(exc) or isinstance(exc, asyncio.IncompleteReadError)


class AsyncTCPConnector(_AsyncStreamConnector):
    """Opens TCP streams to ``(host, port)`` for an :class:`~poolkit.AsyncConnectionPool`.

    Args:
        host, port, connect_timeout: as for :class:`TCPConnector`. A stream
            has no ``io_timeout``: bound each read with ``asyncio.timeout``.

    Raises:
        TypeError, ValueError: a bad argument, as for :class:`TCPConnector`.
    """

    def __init__(
        self, host: str, port: int, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        super().__init__(connect_timeout)
        self.host, self.port = _check_name("host", host), _check_port(port)

    async def create(self) -> Stream:
        """Connect.

        Raises:
            OSError: refused or unreachable.
            TimeoutError: not connected within ``connect_timeout``.
        """
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        return self._opened(reader, writer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host!r}, {self.port})"


class AsyncUnixConnector(_AsyncStreamConnector):
    """Opens Unix-domain streams to ``path`` for an :class:`~poolkit.AsyncConnectionPool`.

    Args:
        path, connect_timeout: as for :class:`UnixConnector`. A stream has no
            ``io_timeout``: bound each read with ``asyncio.timeout``.

    Raises:
        TypeError, ValueError: a bad argument, as for :class:`UnixConnector`.
    """

    def __init__(self, path: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        super().__init__(connect_timeout)
        self.path = _check_name("path", path)

    async def create(self) -> Stream:
        """Connect.

        Raises:
            OSError: no such socket or refused.
            TimeoutError: not connected within ``connect_timeout``.
        """
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_unix_connection(self.path)
        return self._opened(reader, writer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"
