"""memcached through pymemcache, the gomemcache way: a keyed pool per server address.

::

    from poolkit.adapters.memcache import MemcacheClient

    with MemcacheClient(["10.0.0.1:11211", "10.0.0.2:11211"]) as mc:
        mc.set("user:1", b"alice")
        mc.get("user:1")

- :class:`MemcacheConnector` makes pymemcache's base ``Client`` (one socket,
  connected on its first command) for any :class:`~poolkit.ConnectionPool`.
- :class:`MemcacheClient` routes each key to a server by consistent hashing
  (:class:`HashRing`, ketama-style points on a circle: adding a server moves
  about 1/N of the keys, not most of them as ``hash % N`` would) and borrows a
  connection to that server for each operation from the pool keyed by that
  address: per-address LIFO free lists as gomemcache's ``freeconn``, with
  ``max_idle_per_server`` (gomemcache keeps 2 idle per address, and asks for
  "more than your peak parallel requests") and a cap gomemcache lacks,
  ``max_conns_per_server``. The servers are fixed when the client is built,
  so the keyed pool is a dict of :class:`~poolkit.ConnectionPool`, one per
  address: no key to add or forget at run time, and the per-operation cost of
  one pool's acquire and release.
- A restart costs callers nothing: a read or a plain store (``get``, ``gets``,
  ``get_many``, ``set``, ``set_many``) goes on a reused connection unprobed and,
  if the server had closed it, once more on a probed or new one (net/http's
  retry of a replayable request); any other command is sent once, on a
  connection the liveness probe passed (see ``_RESENDABLE``).
- Errors are classified as gomemcache's ``resumableError``: cache-level answers
  (a miss, not stored, a CAS conflict, a bad key, ``SERVER_ERROR`` such as
  "object too large") leave the connection in step and keep it; socket errors
  and a server that hung up or answered out of protocol discard it.
- Arguments are checked at the call, never coerced: keys are str or bytes,
  ``expire`` and counter deltas ints >= 0, and without a ``serde`` a value is
  bytes, str or int (pymemcache would store ``str(value)`` of anything else,
  and a dict would come back as the bytes of its repr).
- ``dead_timeout=`` ejects a dead server (pymemcache ``HashClient``'s
  ``dead_timeout`` / ``retry_attempts`` / ``retry_timeout``): after a failure
  the server is not tried for ``retry_timeout`` seconds (its operations raise
  :class:`ServerDown`, or miss with ``ignore_exc``); after ``retry_attempts``
  more failures it leaves the ring for ``dead_timeout`` seconds and its keys
  go to the live servers; then it is tried again (one failure ejects it
  again). Off by default: a single failure never moves keys.
- Timeouts of any size: longer than a socket can wait
  (:data:`~poolkit.adapters.sockets.SOCKET_TIMEOUT_MAX`, about 24.8 days), or
  ``math.inf``, means no limit.

Needs pymemcache: ``pip install 'poolkit[memcache]'``.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from poolkit.adapters._extras import missing_extra

try:
    from pymemcache import exceptions as _mc_errors
    from pymemcache.client.base import Client
except ImportError as exc:
    raise missing_extra("memcache", "pymemcache", "memcache") from exc

from poolkit import _fork
from poolkit._errors import PoolError
from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_int,
    check_optional_int,
    check_optional_seconds,
    check_seconds,
)
from poolkit.adapters._ejection import Ejections
from poolkit.adapters._timeouts import check_idle_timeout, check_pool_timeout, check_timeout
from poolkit.adapters.sockets import probe_alive, socket_timeout
from poolkit.connections import ConnectionPool, ConnectionPoolStats
from poolkit.connections._budget import Budget
from poolkit.connections._keyed import sum_stats

__all__ = [
    "DEFAULT_MAX_CONNS_PER_SERVER",
    "DEFAULT_MAX_IDLE_PER_SERVER",
    "DEFAULT_TIMEOUT",
    "HashRing",
    "MemcacheClient",
    "MemcacheConnector",
    "ServerDown",
    "is_broken",
    "parse_server",
]

Address = tuple[str, int]

logger = logging.getLogger("poolkit.adapters.memcache")

# gomemcache's DefaultTimeout: 500 ms to connect and for each command. A cache
# answers in well under a millisecond; waiting longer only stacks callers.
DEFAULT_TIMEOUT = 0.5
# gomemcache keeps 2 idle connections per address and tells users to raise it
# above their peak parallelism, or every burst dials and closes (TIME_WAIT
# churn, bradfitz/gomemcache#90). 8 covers a typical thread pool.
DEFAULT_MAX_IDLE_PER_SERVER = 8
# gomemcache has no cap and dials whenever the free list is empty; a burst
# can exhaust the server's connection limit (memcached -c, 1024 by default).
DEFAULT_MAX_CONNS_PER_SERVER = 32
# Seconds to wait for a connection to a server at max_conns_per_server.
DEFAULT_POOL_TIMEOUT = 5.0
# Points per server on the ring: libketama's 160 (40 MD5 digests, 4 points
# each) spreads keys within a few percent of even.
RING_POINTS = 160
MEMCACHED_PORT = 11211
# memcached's counters and their deltas are unsigned 64-bit integers.
MAX_COUNTER_DELTA = 2**64 - 1
# pymemcache HashClient: 2 more failures after the first eject a server; a
# failed server is not tried again for 1 s.
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_RETRY_TIMEOUT = 1.0
# Commands that may reach the server twice with the same outcome: the reads
# and the plain stores. MemcacheClient sends them on a reused connection
# without probing it first (two getsockopt calls per checkout, about a tenth
# of the client's own work for a set+get pair); one that finds the
# connection closed by the server (a restart, an idle timeout) is sent once
# more on a probed or new connection. Any other command (add, cas, incr,
# delete...) has its connection probed first, as any pool's checkout check
# does, since sending it twice could change its answer or its effect.
_RESENDABLE = frozenset({"get", "gets", "get_many", "set", "set_many"})
# What a command on a connection the server had closed raises: its reply
# never came (pymemcache read the close), or the server's end reset it.
_HUNG_UP = (
    _mc_errors.MemcacheUnexpectedCloseError,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class ServerDown(PoolError, ConnectionError):
    """The key's memcached server failed lately and is not tried yet, or every
    server is ejected (see ``MemcacheClient(dead_timeout=...)``)."""


def _check_key(key: object) -> None:
    # Fast path first: this runs on every operation.
    if type(key) is not str and not isinstance(key, bytes):
        raise TypeError(f"key must be a str or bytes, got {type(key).__name__} {key!r}")


def _check_keys(keys: object) -> list[str | bytes]:
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise TypeError(
            f"keys must be an iterable of keys, e.g. ['a', 'b'], got {type(keys).__name__} {keys!r}"
        )
    checked = list(keys)
    for key in checked:
        _check_key(key)
    return checked


def _check_expire(expire: object) -> None:
    if type(expire) is not int or expire < 0:
        # memcached stores an item with a negative expiry and drops it at
        # once: a write that reports success and loses the value.
        check_int("expire", expire, minimum=0)


def _check_delta(value: object) -> None:
    if check_int("value", value, minimum=0) > MAX_COUNTER_DELTA:
        raise ValueError(f"value must be <= 2**64 - 1 (memcached counters), got {value}")


def _check_value(value: Any) -> Any:
    """A value pymemcache's default (no serde) stores as it is."""
    if type(value) is bytes or type(value) is str:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(
        f"value must be bytes, str or int without a serde, got {type(value).__name__}: "
        "pass serde= (e.g. pymemcache.serde.pickle_serde) to store other objects"
    )


def parse_server(server: str | Address) -> Address:
    """``"host:port"``, ``"host"``, ``"[v6addr]:port"`` or ``(host, port)`` as an address tuple.

    Raises:
        TypeError: not a str or a (str, int) pair.
        ValueError: an empty host or a bad port.
    """
    if isinstance(server, str):
        if server.startswith("["):  # an IPv6 literal in brackets (RFC 3986), port optional
            host, bracket, rest = server[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"server must be '[address]:port', got {server!r}")
            port_text = rest[1:] if rest else str(MEMCACHED_PORT)
        else:
            host, sep, port_text = server.rpartition(":")
            if not sep:
                host, port_text = server, str(MEMCACHED_PORT)
        if not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f"server port must be a number, got {server!r}")
        port = int(port_text)
    elif (
        isinstance(server, tuple)
        and len(server) == 2
        and isinstance(server[0], str)
        and isinstance(server[1], int)
        and not isinstance(server[1], bool)
    ):
        host, port = server
    else:
        raise TypeError(f"a server must be 'host:port' or (host, port), got {server!r}")
    if not host or not 0 < port < 65536:
        raise ValueError(f"a server needs a host and a port in 1..65535, got {server!r}")
    return host, port


def is_broken(exc: BaseException) -> bool:
    """Whether ``exc`` from a pymemcache ``Client`` means its connection is unusable.

    Returns:
        True for socket errors (``OSError``, timeouts), a server that closed
        the connection, and replies out of protocol; False for cache-level
        errors (bad key, unknown command, ``SERVER_ERROR``) and anything else.
    """
    if isinstance(exc, OSError | _mc_errors.MemcacheUnexpectedCloseError):
        return True
    return isinstance(exc, _mc_errors.MemcacheUnknownError)


class _MemcacheClients:
    """Makes pymemcache ``Client`` objects for one server; no checkout check.

    :class:`MemcacheClient`'s connector: the client probes a connection
    itself, only where a command needs it (see :data:`_RESENDABLE`).
    :class:`MemcacheConnector` adds the check for any other pool.
    """

    def __init__(
        self,
        server: str | Address,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_TIMEOUT,
        **client_kwargs: Any,
    ) -> None:
        self.server = parse_server(server)
        self.timeout = check_timeout("timeout", timeout)
        self.connect_timeout = check_timeout("connect_timeout", connect_timeout)
        client_kwargs.setdefault("default_noreply", False)
        client_kwargs.setdefault("no_delay", True)
        self._kwargs = client_kwargs
        # pymemcache checks its arguments when a Client is built, which the
        # pool would do first in its own thread, reporting a typo as a
        # PoolTimeout. A Client does not connect until its first command, so
        # building one here costs nothing and fails at the call instead.
        try:
            self.create()
        except TypeError as exc:
            raise TypeError(f"bad pymemcache Client argument in client_kwargs: {exc}") from None

    def create(self) -> Client:
        """A new client (not connected until its first command)."""
        client = Client(
            self.server,
            timeout=socket_timeout(self.timeout),
            connect_timeout=socket_timeout(self.connect_timeout),
            **self._kwargs,
        )
        # The liveness probe for the client's socket (see probe_alive); set
        # here so that the probe finds the attribute on the instance.
        client._poolkit_probe = None
        return client

    def close(self, conn: Client) -> None:
        """Close the client's socket."""
        conn.close()

    def is_broken(self, exc: BaseException) -> bool:
        """See :func:`is_broken`."""
        return is_broken(exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server[0]}:{self.server[1]})"


def _alive(client: Client) -> bool:
    """Not connected yet, or the socket shows neither a FIN nor stray bytes."""
    sock = client.sock
    return sock is None or probe_alive(client, sock)


class MemcacheConnector(_MemcacheClients):
    """Makes pymemcache ``Client`` objects for one memcached server.

    The client connects on its first command, so a dead server fails that
    command at once (and the pool discards the client) instead of the pool
    retrying the dial in the background.

    Args:
        server: ``"host:port"`` or ``(host, port)``.
        timeout: seconds for each command (> 0; ``math.inf``: no limit).
        connect_timeout: seconds to connect (> 0; ``math.inf``: no limit).
        **client_kwargs: more ``pymemcache.client.base.Client`` arguments
            (``serde``, ``key_prefix``, ``allow_unicode_keys``...).
            ``default_noreply`` is False: a pooled client waits for each
            reply, so a failure is seen by the command that caused it.

    Raises:
        TypeError, ValueError: a bad server, timeout or client argument (at
            the call, not when the pool first connects).
    """

    def check(self, conn: Client) -> bool:
        """Not connected yet, or the socket shows neither a FIN nor stray bytes.

        The test of :func:`~poolkit.adapters.sockets.is_socket_alive`, through
        a :class:`~poolkit.adapters.sockets.SocketProbe` kept on the client for
        its current socket (:func:`~poolkit.adapters.sockets.probe_alive`).
        """
        return _alive(conn)


def _acquire_alive(pool: ConnectionPool[Client]) -> Any:
    """A connection from ``pool`` that is not connected yet or passes the probe.

    The check a :class:`MemcacheConnector`'s pool makes at every checkout,
    made by :class:`MemcacheClient` for the commands that need it, with the
    pool's rules: a dead idle connection, or one whose probe raised, is
    closed (``check_failed``) and the next one tried.
    """
    while True:
        proxy = pool.acquire()
        try:
            alive = _alive(proxy.raw)
        except Exception:
            logger.debug("memcached connection probe raised", exc_info=True)
            alive = False
        except BaseException:
            # Interrupted mid-probe: the connection's state is unknown.
            pool.discard(proxy, "check_failed")
            raise
        if alive:
            return proxy
        pool.discard(proxy, "check_failed")


def _server_failed(exc: BaseException) -> bool:
    """Whether ``ignore_exc`` may hide ``exc``: the server failed, not the call."""
    return is_broken(exc) or isinstance(exc, _mc_errors.MemcacheServerError)


def _digest(text: bytes) -> bytes:
    return hashlib.md5(text, usedforsecurity=False).digest()


class HashRing:
    """Consistent hashing of keys onto servers (ketama-style).

    Each server gets :data:`RING_POINTS` points on a 32-bit circle; a key goes
    to the first point at or after its own hash. Adding or removing a server
    moves only the keys on the arcs it gains or loses.

    Args:
        servers: the server labels (``"host:port"``).

    Raises:
        ValueError: no servers, or a label repeated.
    """

    def __init__(self, servers: Sequence[str]) -> None:
        if isinstance(servers, str) or not isinstance(servers, Sequence):
            raise TypeError(f"servers must be a sequence of str labels, got {servers!r}")
        if not servers:
            raise ValueError("servers must name at least one memcached server")
        for server in servers:
            if not isinstance(server, str):
                raise TypeError(f"a server label must be a str, got {server!r}")
        if len(set(servers)) != len(servers):
            raise ValueError(f"servers must not repeat, got {list(servers)}")
        points: list[tuple[int, str]] = []
        for server in servers:
            for i in range(RING_POINTS // 4):
                d = _digest(f"{server}-{i}".encode())
                points.extend(
                    (int.from_bytes(d[4 * j : 4 * j + 4], "little"), server) for j in range(4)
                )
        points.sort()
        self._hashes = [h for h, _ in points]
        self._servers = [s for _, s in points]

    def server_for(self, key: str | bytes) -> str:
        """The server that owns ``key`` (a str or bytes)."""
        _check_key(key)
        raw = key.encode() if isinstance(key, str) else key
        h = int.from_bytes(_digest(raw)[:4], "little")
        i = bisect.bisect_left(self._hashes, h)
        return self._servers[i % len(self._servers)]


class MemcacheClient:
    """A memcached client over several servers, with pooled connections per server.

    Args:
        servers: ``"host:port"`` strings or ``(host, port)`` pairs.
        max_conns_per_server: connections per server, in use, idle or opening;
            more callers wait up to ``pool_timeout``.
        max_idle_per_server: idle connections kept per server (LIFO reuse).
        idle_timeout: seconds an idle connection is kept (``None`` or
            ``math.inf``: forever).
        timeout: seconds for each command; ``connect_timeout`` to connect
            (> 0; ``math.inf``, or more than a socket can wait, about 24.8
            days: no limit).
        pool_timeout: seconds to wait for a connection at the per-server cap
            (> 0; any size, ``math.inf``: no limit).
        ignore_exc: True or False. When True, a server that fails (socket
            errors, a hang-up, a reply out of protocol, ``SERVER_ERROR``)
            makes reads return a miss and writes False, as pymemcache's
            ``ignore_exc`` (a dead cache server degrades to cache misses
            instead of failing requests). A bad call (a bad key, expiry or
            value) still raises.
        dead_timeout: seconds a server that keeps failing stays out of the
            ring, its keys going to the live servers (pymemcache
            ``HashClient``; > 0). ``None`` (the default): never eject.
        retry_attempts: with ``dead_timeout``, failures after the first that
            eject a server (>= 0; 0 ejects on the first failure).
        retry_timeout: with ``dead_timeout``, seconds a failed server is not
            tried again (>= 0); its operations raise :class:`ServerDown`
            meanwhile (or miss, with ``ignore_exc``).
        clock: monotonic seconds for those timeouts (tests pass a fake one).
        **client_kwargs: more pymemcache ``Client`` arguments (``serde``...).

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        servers: Iterable[str | Address],
        *,
        max_conns_per_server: int = DEFAULT_MAX_CONNS_PER_SERVER,
        max_idle_per_server: int | None = DEFAULT_MAX_IDLE_PER_SERVER,
        idle_timeout: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_TIMEOUT,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        ignore_exc: bool = False,
        dead_timeout: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        clock: Clock | None = None,
        **client_kwargs: Any,
    ) -> None:
        if isinstance(servers, str | tuple):
            raise TypeError("servers must be a list of servers, e.g. ['127.0.0.1:11211']")
        addresses = [parse_server(s) for s in servers]
        labels = [f"{h}:{p}" for h, p in addresses]
        self._ring: HashRing | None = HashRing(labels)
        self._addresses = dict(zip(labels, addresses, strict=True))
        self._labels = {a: label for label, a in self._addresses.items()}
        dead = check_optional_seconds("dead_timeout", dead_timeout, allow_zero=False)
        attempts = check_int("retry_attempts", retry_attempts, minimum=0)
        retry_wait = check_seconds("retry_timeout", retry_timeout)
        self._clock: Clock = time.monotonic if clock is None else check_callable("clock", clock)
        self._ejections = None if dead is None else Ejections(attempts, retry_wait, dead)
        self._lock = threading.Lock()
        per_server = check_int("max_conns_per_server", max_conns_per_server, minimum=1)
        idle = check_optional_int("max_idle_per_server", max_idle_per_server, minimum=0)
        self.ignore_exc = check_bool("ignore_exc", ignore_exc)
        pool_wait = check_pool_timeout(pool_timeout)
        idle_time = check_idle_timeout(idle_timeout)
        # Without a serde, pymemcache stores str(value) of whatever it gets.
        self._check_values = (
            client_kwargs.get("serde") is None and client_kwargs.get("serializer") is None
        )
        connector_args = {"timeout": timeout, "connect_timeout": connect_timeout, **client_kwargs}
        self._pools: dict[Address, ConnectionPool[Client]] = {
            a: ConnectionPool(
                _MemcacheClients(a, **connector_args),
                max_size=per_server,
                max_idle=None if idle is None else min(idle, per_server),
                max_idle_time=idle_time,
                max_lifetime=None,
                timeout=pool_wait,
                name=f"memcache:{a[0]}:{a[1]}",
            )
            for a in addresses
        }
        # One server and no ejection: no ring to consult (the common case in development).
        self._only: Address | None = (
            addresses[0] if len(addresses) == 1 and self._ejections is None else None
        )
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held at the fork by a thread that
        # does not exist here.
        self._lock = threading.Lock()

    @property
    def ejected_servers(self) -> list[Address]:
        """The servers out of the ring now (``dead_timeout``)."""
        if self._ejections is None:
            return []
        with self._lock:
            return [self._addresses[label] for label in self._ejections.ejected()]

    def _rebuild_ring(self) -> None:
        """The ring over the servers not ejected (call with the lock held)."""
        assert self._ejections is not None
        out = set(self._ejections.ejected())
        live = [label for label in self._addresses if label not in out]
        self._ring = HashRing(live) if live else None

    def _revive(self) -> None:
        ejections = self._ejections
        assert ejections is not None
        with self._lock:
            back = ejections.revive(self._clock())
            if back:
                logger.info("memcached servers %s back in rotation (dead_timeout over)", back)
                self._rebuild_ring()

    def _failed(self, address: Address) -> None:
        ejections = self._ejections
        assert ejections is not None
        label = self._labels[address]
        with self._lock:
            if ejections.failed(label, self._clock()):
                logger.warning(
                    "memcached server %s keeps failing: ejected for dead_timeout=%s s, "
                    "its keys go to the live servers",
                    label,
                    ejections.dead_timeout,
                )
                self._rebuild_ring()

    def _blocked(self, address: Address) -> ServerDown | None:
        """The error for an operation on a server that failed too recently, if it did."""
        ejections = self._ejections
        assert ejections is not None
        label = self._labels[address]
        with self._lock:
            if label in ejections.ejected():
                # The ring moved on since this address was chosen (a racing ejection).
                return ServerDown(f"memcached server {label} is ejected (dead_timeout)")
            until = ejections.blocked_until(label, self._clock())
        if until is None:
            return None
        return ServerDown(
            f"memcached server {label} failed lately and is not tried again for "
            f"{until - self._clock():.3g} s (retry_timeout); its keys move to the live "
            "servers if it keeps failing"
        )

    @property
    def servers(self) -> list[Address]:
        """The server addresses."""
        return list(self._addresses.values())

    def server_for(self, key: str | bytes) -> Address:
        """The address of the server that owns ``key``.

        Raises:
            TypeError: ``key`` is not a str or bytes.
        """
        _check_key(key)
        if self._only is not None:
            return self._only
        ejections = self._ejections
        if ejections is not None and ejections.next_revival <= self._clock():
            self._revive()
        ring = self._ring
        if ring is None:
            raise ServerDown(
                "every memcached server is ejected (dead_timeout); they are tried again "
                "when it is over"
            )
        return self._addresses[ring.server_for(key)]

    def _run(self, address: Address, fallback: Any, method: str, *args: Any) -> Any:
        # acquire/release by hand rather than `with pool.connection()`: the
        # same rule (broken errors discard, others keep), one object fewer on
        # the path every cache operation takes.
        ejections = self._ejections
        if ejections is not None and ejections.records:
            down = self._blocked(address)
            if down is not None:
                if self.ignore_exc:
                    return fallback
                raise down
        pool = self._pools[address]
        probed = method not in _RESENDABLE
        while True:
            proxy = _acquire_alive(pool) if probed else pool.acquire()
            raw = proxy.raw
            # A resendable command on a connection opened earlier goes
            # unprobed; if the server had closed it, it goes once more.
            resend = not probed and raw.sock is not None
            try:
                result = getattr(raw, method)(*args)
            except BaseException as exc:
                if not isinstance(exc, Exception) or is_broken(exc):
                    pool.discard(proxy, "broken")
                    if resend and isinstance(exc, _HUNG_UP):
                        # Not a failure of the server (the next try tells):
                        # the idle connection was gone. Probed from now on,
                        # so the other dead idle ones are dropped unused.
                        probed = True
                        continue
                    if ejections is not None and isinstance(exc, Exception):
                        self._failed(address)
                else:
                    pool.release(proxy)
                if self.ignore_exc and _server_failed(exc):
                    return fallback
                raise
            break
        pool.release(proxy)
        if ejections is not None and ejections.records:
            with self._lock:
                ejections.succeeded(self._labels[address])
        return result

    def _one(self, key: str | bytes, fallback: Any, method: str, *args: Any) -> Any:
        # One server and a str key (the common case): no call to route it.
        address = self._only
        if address is None or type(key) is not str:
            address = self.server_for(key)  # checks the key
        return self._run(address, fallback, method, key, *args)

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The value stored at ``key``, or ``default`` on a miss."""
        return self._one(key, default, "get", default)

    def gets(self, key: str | bytes) -> tuple[Any, Any]:
        """``(value, cas_token)``, or ``(None, None)`` on a miss."""
        result: tuple[Any, Any] = self._one(key, (None, None), "gets")
        return result

    def _value(self, value: Any) -> Any:
        if type(value) is bytes or not self._check_values:
            return value
        return _check_value(value)

    def set(self, key: str | bytes, value: Any, expire: int = 0) -> bool:
        """Store ``value``; True when stored.

        Args:
            key: a str or bytes.
            value: bytes, str or int (anything the ``serde`` takes, with one).
            expire: seconds to keep it (0: no expiry; over 30 days: a Unix time).

        Raises:
            TypeError, ValueError: a bad key, value or expire (the message names it).
        """
        # The checks' common answers inline: set() is half of most workloads.
        if type(expire) is not int or expire < 0:
            _check_expire(expire)
        if type(value) is not bytes:
            value = self._value(value)
        return bool(self._one(key, False, "set", value, expire))

    def add(self, key: str | bytes, value: Any, expire: int = 0) -> bool:
        """Store only if absent; False (not an error) if present. Arguments as :meth:`set`."""
        _check_expire(expire)
        return bool(self._one(key, False, "add", self._value(value), expire))

    def replace(self, key: str | bytes, value: Any, expire: int = 0) -> bool:
        """Store only if present; False (not an error) if absent. Arguments as :meth:`set`."""
        _check_expire(expire)
        return bool(self._one(key, False, "replace", self._value(value), expire))

    def cas(self, key: str | bytes, value: Any, cas: Any, expire: int = 0) -> bool | None:
        """Compare and swap: True stored, False conflict, None if the key is gone.

        ``cas`` is the token :meth:`gets` returned; other arguments as :meth:`set`.
        """
        _check_expire(expire)
        result: bool | None = self._one(key, False, "cas", self._value(value), cas, expire)
        return result

    def delete(self, key: str | bytes) -> bool:
        """Delete ``key``; False if it was not there."""
        return bool(self._one(key, False, "delete"))

    def incr(self, key: str | bytes, value: int = 1) -> int | None:
        """Add ``value`` (an int, 0 to 2**64 - 1) to a counter; None if the key is missing."""
        _check_delta(value)
        result: int | None = self._one(key, None, "incr", value)
        return result

    def decr(self, key: str | bytes, value: int = 1) -> int | None:
        """Subtract ``value`` (as :meth:`incr`) from a counter, floored at 0; None if missing."""
        _check_delta(value)
        result: int | None = self._one(key, None, "decr", value)
        return result

    def touch(self, key: str | bytes, expire: int = 0) -> bool:
        """Set a new expiry (as :meth:`set`'s); False if the key is missing."""
        _check_expire(expire)
        return bool(self._one(key, False, "touch", expire))

    def _by_server(self, keys: Iterable[str | bytes]) -> dict[Address, list[str | bytes]]:
        groups: dict[Address, list[str | bytes]] = {}
        for key in keys:
            groups.setdefault(self.server_for(key), []).append(key)
        return groups

    def get_many(self, keys: Iterable[str | bytes]) -> dict[str | bytes, Any]:
        """The values of the keys found (one round trip per server involved).

        Raises:
            TypeError: ``keys`` is a single str or bytes (not a list of keys),
                or holds something that is not a key.
        """
        found: dict[str | bytes, Any] = {}
        for address, group in self._by_server(_check_keys(keys)).items():
            found.update(self._run(address, {}, "get_many", group))
        return found

    def set_many(self, values: Mapping[str | bytes, Any], expire: int = 0) -> list[str | bytes]:
        """Store several values; returns the keys that were not stored.

        Raises:
            TypeError, ValueError: ``values`` is not a mapping, or a bad key,
                value or expire (checked before anything is sent).
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of keys to values, got {values!r}")
        _check_expire(expire)
        checked = {k: self._value(v) for k, v in values.items()}
        failed: list[str | bytes] = []
        for address, group in self._by_server(_check_keys(checked)).items():
            part = {k: checked[k] for k in group}
            failed.extend(self._run(address, list(group), "set_many", part, expire))
        return failed

    def delete_many(self, keys: Iterable[str | bytes]) -> None:
        """Delete several keys (``keys`` as for :meth:`get_many`)."""
        for address, group in self._by_server(_check_keys(keys)).items():
            self._run(address, None, "delete_many", group)

    def flush_all(self) -> None:
        """Empty every server."""
        for address in self.servers:
            self._run(address, None, "flush_all", 0, False)

    def stats(self) -> ConnectionPoolStats:
        """The connection pools' totals across servers."""
        return sum_stats([p.stats() for p in self._pools.values()], Budget(None, None))

    def stats_by_server(self) -> dict[Address, ConnectionPoolStats]:
        """Each server's connection pool statistics."""
        return {a: p.stats() for a, p in self._pools.items()}

    def close(self, timeout: float | None = None) -> None:
        """Close every connection. Idempotent."""
        for pool in self._pools.values():
            pool.close(timeout)

    def __enter__(self) -> MemcacheClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<MemcacheClient [{len(self._addresses)} servers | {s.idle} idle, {s.in_use} in use]>"
        )
