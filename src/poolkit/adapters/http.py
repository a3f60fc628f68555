"""HTTP/1.1 keep-alive: net/http Transport's idle pool over ``http.client``.

::

    from poolkit.adapters.http import HTTPPool

    with HTTPPool(max_conns_per_host=8) as http:
        resp = http.request("GET", "http://127.0.0.1:8080/status")
        print(resp.status, resp.data)

One :class:`~poolkit.KeyedConnectionPool` keyed by origin (scheme, host, port)
holds ``http.client.HTTPConnection`` / ``HTTPSConnection`` objects. The rules
are net/http's:

- A connection goes back to the pool only once its response was read to the
  end and the server did not ask to close (``Connection: close``, HTTP/1.0);
  a response closed before its end takes its connection down with it (the
  unread body would be read as the next response).
- Reuse is LIFO; an idle connection is checked at checkout with a
  non-blocking peek, so one the server closed (its idle timeout) is dropped,
  not used (net/http's ``readLoop`` noticing the FIN).
- The server may still close a kept-alive connection just as a request goes
  out. Such a request is retried on another connection only when the failed
  connection was *reused* and the request is replayable: GET, HEAD, OPTIONS,
  TRACE, or carrying an ``Idempotency-Key`` header, with a body that can be
  sent again (net/http ``RoundTrip`` / ``isReplayable``).
- Limits: ``max_conns_per_host`` (``MaxConnsPerHost``: in use, idle and being
  opened; more callers wait up to ``pool_timeout``), ``max_idle_per_host``
  (``MaxIdleConnsPerHost``), ``max_idle`` across hosts (``MaxIdleConns``, the
  least recently used closes first) and ``idle_timeout`` (``IdleConnTimeout``).
- Nothing a caller passes reaches the wire unchecked: the method must be an
  HTTP token, header names tokens and header values free of CR, LF and NUL,
  the URL free of spaces, control characters and credentials
  (``http.client`` lets ``"GET X"`` through as a method, and ``urlsplit``
  silently drops CR, LF and tab from a URL), and a ``Content-Length`` must
  match the body (a wrong one leaves bytes on the kept-alive connection for
  the next caller). A bad one raises ``ValueError`` (``TypeError`` for a
  wrong type) naming the parameter before a connection is taken.
- Timeouts of any size: a socket timeout longer than a socket can wait
  (:data:`~poolkit.adapters.sockets.SOCKET_TIMEOUT_MAX`, about 24.8 days), or
  ``math.inf``, means no limit. ``timeout=Timeout(connect=..., read=...)``
  bounds connecting and each wait for the server apart (urllib3 ``Timeout``);
  they raise :class:`ConnectTimeoutError` and :class:`ReadTimeoutError`.

On top of that, urllib3's behaviour where users rely on it:

- ``retries=Retry(...)`` (or an int): urllib3 ``Retry`` semantics, see
  :class:`Retry`: connect errors retried for any method, read errors and
  ``status_forcelist`` statuses for idempotent methods, exponential backoff
  with jitter, ``Retry-After`` honoured; out of retries,
  :class:`MaxRetryError`. Without a policy (the default) errors propagate as
  they are.
- ``redirect=True`` follows 301, 302, 303, 307 and 308 (303 becomes a GET
  without body), at most ``Retry.redirect`` (or ``total``) times, 10 without a
  policy; ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` are dropped
  when a redirect leaves the origin. A redirect loop raises :class:`MaxRetryError`.
- ``block=False`` (urllib3's default): a host at ``max_conns_per_host`` gets
  more connections instead of making callers wait; only
  ``max_idle_per_host`` of them are kept when they come back, the rest close
  (counted as ``closed_by_reason["max_idle"]``).
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias
from urllib.parse import urljoin, urlsplit

from poolkit import _fork
from poolkit._stats import StatsBase
from poolkit._validate import Clock, check_bool, check_int, check_optional_int, check_seconds
from poolkit._waits import event_wait
from poolkit.adapters._http_retry import (
    DEFAULT_ALLOWED_METHODS,
    DEFAULT_REMOVE_ON_REDIRECT,
    REDIRECT_STATUSES,
    ConnectTimeoutError,
    Kind,
    MaxRetryError,
    ReadTimeoutError,
    RequestHistory,
    Retry,
    RetryState,
    Timeout,
    as_timeout,
)
from poolkit.adapters._timeouts import check_idle_timeout, check_pool_timeout, check_timeout
from poolkit.adapters.sockets import probe_alive, socket_timeout
from poolkit.connections import ConnectionPoolStats, KeyedConnectionPool, PooledConnection

if TYPE_CHECKING:
    from poolkit.connections import PooledConnectionBase

    # For type checkers the proxy is the connection, plus what every proxy has
    # (see poolkit/connections/_proxy.py).
    _Face: TypeAlias = http.client.HTTPConnection
    _Proxy: TypeAlias = PooledConnectionBase[http.client.HTTPConnection]
else:
    _Face, _Proxy = PooledConnection, object

__all__ = [
    "DEFAULT_ALLOWED_METHODS",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_IDLE",
    "DEFAULT_TIMEOUT",
    "REPLAYABLE_METHODS",
    "ConnectTimeoutError",
    "HTTPConnector",
    "HTTPPool",
    "HTTPPoolStats",
    "MaxRetryError",
    "Origin",
    "PooledHTTPConnection",
    "ReadTimeoutError",
    "RequestHistory",
    "Response",
    "Retry",
    "Timeout",
]

Origin = tuple[str, str, int]

# net/http DefaultTransport: IdleConnTimeout 90 s, MaxIdleConns 100.
DEFAULT_IDLE_TIMEOUT = 90.0
DEFAULT_MAX_IDLE = 100
# Per-host cap: bounded by default (net/http has none and users hit port
# exhaustion, golang/go#13801); 10 matches the connection pools' default.
DEFAULT_MAX_CONNS_PER_HOST = 10
# Seconds to connect and for each socket read/write of a request (urllib3 and
# requests leave it unbounded by default; a hung server must not hang callers).
DEFAULT_TIMEOUT = 30.0
# Seconds to wait for a connection when a host is at max_conns_per_host.
DEFAULT_POOL_TIMEOUT = 30.0
# Methods net/http replays on a new connection after a reused one failed.
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Headers that make any request replayable (net/http isReplayable).
IDEMPOTENCY_HEADERS = ("idempotency-key", "x-idempotency-key")
# Attempts of one request when reused connections keep failing under it: the
# first, and a retry on a connection that was just opened if need be.
MAX_ATTEMPTS = 3
# Bytes read per chunk by Response.iter_content by default.
CHUNK_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9110 5.6.2: a method and a header name are tokens of these characters.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# RFC 9110 5.5: a field value must not hold CR, LF or NUL (a CR or LF would
# end the header and start another one: header injection).
_FORBIDDEN_IN_VALUE = frozenset("\r\n\0")
# A per-key cap no host reaches: block=False lets a host have any number of
# connections (urllib3), max_idle_per_host still bounds what is kept.
_UNBOUNDED_PER_HOST = 2**31 - 1
# What a 303 (and the GET it turns into) must not carry over (urllib3).
_BODY_HEADERS = frozenset(
    {"content-encoding", "content-language", "content-location", "content-type",
     "content-length", "digest", "last-modified"}
)  # fmt: skip


def _check_token(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value or not _TCHAR.issuperset(value):
        raise ValueError(
            f"{what} must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~), got {value!r}"
        )
    return value


def _check_headers(headers: object) -> dict[str, str | bytes]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, got {type(headers).__name__}")
    checked: dict[str, str | bytes] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        _check_token("a header name in headers", name)
        if name.lower() in seen:
            raise ValueError(
                f"headers has {name!r} twice (header names are case-insensitive): give it once"
            )
        seen.add(name.lower())
        if isinstance(value, str):
            bad = _FORBIDDEN_IN_VALUE.intersection(value)
            try:
                value.encode("latin-1")  # what http.client sends a str value as
            except UnicodeEncodeError:
                raise ValueError(
                    f"headers[{name!r}] must be Latin-1 text (encode other text yourself, "
                    f"e.g. RFC 8187), got {value!r}"
                ) from None
        elif isinstance(value, bytes):
            bad = _FORBIDDEN_IN_VALUE.intersection(value.decode("latin-1"))
        else:
            raise TypeError(
                f"headers[{name!r}] must be a str or bytes, got {type(value).__name__} {value!r}"
            )
        if bad:
            raise ValueError(f"headers[{name!r}] must not contain CR, LF or NUL, got {value!r}")
        checked[name] = value
    return checked


def _check_body(body: object) -> Any:
    if body is None or isinstance(body, bytes | bytearray | memoryview) or hasattr(body, "read"):
        return body
    if isinstance(body, str):
        return body.encode()  # http.client would encode a str as Latin-1
    if isinstance(body, Mapping) or not isinstance(body, Iterable):
        raise TypeError(
            "body must be bytes, str, a file object or an iterable of bytes, got "
            f"{type(body).__name__} (encode it first, e.g. json.dumps(...).encode())"
        )
    return body


def _check_framing(headers: Mapping[str, str | bytes], body: object) -> None:
    """Refuse headers that would frame the body wrongly.

    A wrong length desynchronizes a kept-alive connection: the server takes
    the rest of the body for the next request, or waits for bytes that never
    come, and the pool hands the connection to the next caller.
    """
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "transfer-encoding":
            raise ValueError(
                f"headers must not set {name!r}: the pool frames the body itself (a file "
                "or iterable body without Content-Length is sent chunked)"
            )
        if lowered != "content-length":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"headers[{name!r}] must be a number of bytes, got {value!r}")
        expected = 0 if body is None else _known_length(body)
        if expected is not None and int(text) != expected:
            raise ValueError(
                f"headers[{name!r}] is {text} but the body has {expected} bytes: leave "
                "Content-Length out (it is computed) or make it match"
            )


def _known_length(body: object) -> int | None:
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, memoryview):
        return body.nbytes
    return None  # a file or an iterable: the caller's to state


class PooledHTTPConnection(_Face, _Proxy):
    """An ``http.client.HTTPConnection`` borrowed from a pool of :class:`HTTPConnector`.

    Typed as the connection (``conn.request(...)``, ``conn.getresponse()``
    are ``http.client``'s, a misspelt method is an error) and as poolkit's
    ``PooledConnectionBase`` (``discard()``, ``raw``); at run time a proxy
    that forwards every attribute (``http.client`` connections have no
    special methods to stand in for). ``close()`` gives it back.
    """

    __slots__ = ()


class HTTPConnector:
    """Makes ``http.client`` connections to one origin for the keyed pool.

    A new connection is not connected yet (``http.client`` connects on its
    first request), so a dead server fails that request at once instead of
    being retried by the pool in the background.

    Args:
        origin: ``(scheme, host, port)``.
        timeout: connect and socket I/O timeout in seconds (> 0; ``math.inf``,
            or more than :data:`~poolkit.adapters.sockets.SOCKET_TIMEOUT_MAX`:
            no limit).
        ssl_context: for https (default: ``ssl.create_default_context()``).

    Raises:
        TypeError, ValueError: a bad timeout (the message names it).
    """

    # What the pool's acquire() returns: typed as an HTTPConnection.
    proxy_class = PooledHTTPConnection

    def __init__(
        self, origin: Origin, timeout: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.origin = origin
        self.timeout = check_timeout("timeout", timeout)
        self.ssl_context = ssl_context

    def create(self) -> http.client.HTTPConnection:
        """A new, not yet connected, connection to the origin."""
        scheme, host, port = self.origin
        timeout = socket_timeout(self.timeout)
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self.ssl_context
            )
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def close(self, conn: http.client.HTTPConnection) -> None:
        """Close the connection's socket."""
        conn.close()

    def check(self, conn: http.client.HTTPConnection) -> bool:
        """Still usable: never connected, or the socket shows no FIN and no stray bytes.

        Checked through a probe kept on the connection for its socket
        (:func:`~poolkit.adapters.sockets.probe_alive`).
        """
        sock = conn.sock
        return sock is None or probe_alive(conn, sock)

    def is_broken(self, exc: BaseException) -> bool:
        """Socket errors and protocol errors (``http.client.HTTPException``) break it."""
        return isinstance(exc, OSError | http.client.HTTPException)


@dataclass(frozen=True)
class HTTPPoolStats(StatsBase):
    """What an :class:`HTTPPool` did, and its connection pool's statistics.

    Attributes:
        requests: requests sent (each retry counts once more).
        reused: requests sent on a kept-alive connection.
        retried: requests retried after a reused connection failed under them.
        server_closed: responses after which the server asked to close.
        pool: the keyed connection pool's totals across hosts.
        retries: attempts made again by the retry policy (errors and statuses).
        redirects: redirects followed.
    """

    family = "connections"

    requests: int
    reused: int
    retried: int
    server_closed: int
    pool: ConnectionPoolStats
    retries: int = 0
    redirects: int = 0


class Response:
    """An HTTP response; its connection goes back to the pool once the body is read.

    With ``stream=False`` (the default) the body is already read: :attr:`data`.
    With ``stream=True`` read it with :meth:`read` or :meth:`iter_content`,
    then the connection is returned by itself; call :meth:`close` (or use
    ``with``) to give up early, which closes the connection instead.

    Attributes:
        status: the status code.
        reason: the reason phrase.
        headers: the response headers (``http.client.HTTPMessage``).
        reused: True if it came over a kept-alive connection.
        url: the URL it answers (the last one, after redirects).
        history: the attempts retried or redirected before it (:class:`RequestHistory`).
    """

    def __init__(
        self,
        client: HTTPPool,
        proxy: PooledHTTPConnection,
        resp: http.client.HTTPResponse,
        reused: bool,
    ) -> None:
        self._client = client
        self._proxy: PooledHTTPConnection | None = proxy
        self._resp = resp
        self._data: bytes | None = None
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.headers
        self.reused = reused
        self.url = ""
        self.history: tuple[RequestHistory, ...] = ()

    def read(self, amt: int | None = None) -> bytes:
        """Read up to ``amt`` bytes of the body (all of it by default).

        Raises:
            TypeError, ValueError: ``amt`` is not ``None`` or an int >= 0.
            OSError, http.client.HTTPException: the connection failed (it is discarded).
        """
        if amt is not None:
            check_int("amt", amt, minimum=0)
        try:
            chunk = self._resp.read(amt)
        except BaseException:
            self._done(broken=True)
            raise
        if self._resp.isclosed():
            self._done(broken=False)
        return chunk

    def iter_content(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes."""
        check_int("chunk_size", chunk_size, minimum=1)
        while True:
            chunk = self.read(chunk_size)
            if not chunk:
                return
            yield chunk

    @property
    def data(self) -> bytes:
        """The whole body (read now if it was streamed and not read yet)."""
        if self._data is None:
            self._data = self.read()
        return self._data

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded."""
        return self.data.decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.data)

    @property
    def released(self) -> bool:
        """True once the connection went back to the pool (or was closed)."""
        return self._proxy is None

    def drain(self) -> None:
        """Read and drop the rest of the body, so the connection goes back to the pool.

        A failure while reading only closes the connection (its error is not raised).
        """
        if self._proxy is not None:
            try:
                while self.read(CHUNK_SIZE):
                    pass
            except (OSError, http.client.HTTPException):
                pass  # read() discarded the connection

    def close(self) -> None:
        """Stop reading: an unread body closes the connection instead of returning it."""
        if self._proxy is not None:
            self._resp.close()
            self._done(broken=True)

    def _done(self, *, broken: bool) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is None:
            return
        if broken or self._resp.will_close:
            if not broken:
                self._client._count("server_closed")
            proxy.discard()
        else:
            self._client._pool.release(proxy)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "released" if self._proxy is None else "reading"
        return f"<Response [{self.status} {self.reason}] {state}>"


def _replayable(method: str, headers: Mapping[str, object], body: object) -> bool:
    if body is not None and not isinstance(body, bytes | bytearray | memoryview):
        return False  # a file or an iterator cannot be sent twice
    if method in REPLAYABLE_METHODS:
        return True
    return any(h.lower() in IDEMPOTENCY_HEADERS for h in headers)


class _Failed(Exception):
    """An attempt's error with its urllib3 kind (``connect``, ``read``, ``other``)."""

    def __init__(self, kind: Kind, error: BaseException) -> None:
        super().__init__(kind, error)
        self.kind = kind
        self.error = error


def _timed_out(
    cls: type[TimeoutError], exc: BaseException, origin: Origin, seconds: float, what: str
) -> TimeoutError:
    err = cls(
        f"{what} to {origin[1]}:{origin[2]} timed out after {seconds} s ({what} timeout; "
        f"raise it with timeout=Timeout({what}=...))"
    )
    err.__cause__ = exc
    return err


def _read_failed(exc: BaseException, origin: Origin, seconds: float) -> NoReturn:
    """Raise ``exc`` (after the request went out) as a read error, or as it is."""
    if isinstance(exc, TimeoutError):
        raise _Failed("read", _timed_out(ReadTimeoutError, exc, origin, seconds, "read")) from exc
    if isinstance(exc, OSError | http.client.HTTPException):
        raise _Failed("read", exc) from exc
    raise exc


def _strip_headers(
    hdrs: dict[str, str | bytes], names: Collection[str] | None
) -> dict[str, str | bytes]:
    """``hdrs`` without the credentials a redirect to another origin must not carry."""
    drop = DEFAULT_REMOVE_ON_REDIRECT if names is None else names
    return {k: v for k, v in hdrs.items() if k.lower() not in drop}


def _sleep(seconds: float) -> None:
    if seconds > 0:
        event_wait(threading.Event(), seconds)


class HTTPPool:
    """An HTTP/1.1 client that keeps connections alive per origin (net/http Transport).

    Args:
        max_conns_per_host: connections per origin, in use, idle or being
            opened; more callers wait up to ``pool_timeout`` (``MaxConnsPerHost``).
        max_idle_per_host: idle connections kept per origin (default:
            ``max_conns_per_host``; 0 disables keep-alive).
        max_idle: idle connections kept across origins, the least recently used
            closed first (``MaxIdleConns``; ``None``: no cap).
        idle_timeout: seconds an idle connection is kept (``IdleConnTimeout``;
            ``None`` or ``math.inf``: until the server closes it).
        timeout: default connect and socket timeout of a request, in seconds
            (> 0), or a :class:`Timeout` with separate ``connect`` and ``read``
            timeouts. ``math.inf``, or anything above
            :data:`~poolkit.adapters.sockets.SOCKET_TIMEOUT_MAX` (about 24.8
            days, the longest a socket can wait), means no limit.
        pool_timeout: seconds to wait for a connection at ``max_conns_per_host``
            (> 0: new connections are opened by the pool's threads; any size,
            ``math.inf``: no limit).
        ssl_context: TLS settings for https origins.
        clock: monotonic seconds for idle ages (``None``: the pools' default,
            ``time.monotonic``; tests pass a fake one).
        retries: the default retry policy: a :class:`Retry`, an int
            (``Retry(total=n)``) or ``None`` (no retries; errors propagate as
            they are).
        redirect: follow redirects by default (see the module docstring).
        block: ``True``: callers wait up to ``pool_timeout`` for a host at
            ``max_conns_per_host``. ``False`` (urllib3 ``block=False``): they
            get a new connection at once; ``max_conns_per_host`` then only
            bounds the idle ones kept (unless ``max_idle_per_host`` is given).

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        *,
        max_conns_per_host: int = DEFAULT_MAX_CONNS_PER_HOST,
        max_idle_per_host: int | None = None,
        max_idle: int | None = DEFAULT_MAX_IDLE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        timeout: float | Timeout = DEFAULT_TIMEOUT,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        retries: Retry | int | None = None,
        redirect: bool = False,
        block: bool = True,
    ) -> None:
        per_host = check_int("max_conns_per_host", max_conns_per_host, minimum=1)
        idle_per_host = check_optional_int("max_idle_per_host", max_idle_per_host, minimum=0)
        self._timeouts = as_timeout("timeout", timeout)
        self.timeout = timeout
        self.retries = Retry.coerce("retries", retries)
        self.redirect = check_bool("redirect", redirect)
        self.block = check_bool("block", block)
        if not self.block:
            if idle_per_host is None:
                idle_per_host = per_host
            per_host = _UNBOUNDED_PER_HOST
        self._rng = random.Random()
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
        self._ssl_context = ssl_context
        self._pool: KeyedConnectionPool[
            Origin, http.client.HTTPConnection, PooledHTTPConnection
        ] = KeyedConnectionPool(
            self._connector,
            max_size_per_key=per_host,
            max_idle_per_key=idle_per_host,
            max_idle=check_optional_int("max_idle", max_idle, minimum=0),
            max_idle_time=check_idle_timeout(idle_timeout),
            max_lifetime=None,
            timeout=check_pool_timeout(pool_timeout),
            clock=clock,
            name="http",
        )
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("requests", "reused", "retried", "server_closed", "retries", "redirects"), 0
        )
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held the counters' lock at the
        # fork; that thread does not exist here, so the copy would stay locked
        # and the child's first request would hang. The connection pool
        # underneath resets itself (it forgets the parent's connections).
        self._lock = threading.Lock()

    def _connector(self, origin: Origin) -> HTTPConnector:
        return HTTPConnector(origin, self._timeouts.connect, self._ssl_context)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    @staticmethod
    def _split(url: str) -> tuple[Origin, str]:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        # Checked before urlsplit, which would silently delete CR, LF and tab.
        if any(c <= " " or c == "\x7f" for c in url):
            raise ValueError(
                f"url must not contain spaces or control characters (percent-encode them), "
                f"got {url!r}"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"url has no host: {url!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"url has an invalid port: {url!r}") from exc
        if parts.username is not None or parts.password is not None:
            # They would be dropped, not sent: say so rather than lose them.
            raise ValueError(
                "url must not carry credentials (user:password@): send an Authorization "
                "header instead"
            )
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if not target.isascii():
            raise ValueError(f"url path and query must be ASCII (percent-encode them), got {url!r}")
        return (scheme, parts.hostname, port), target

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | str | Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
        pool_timeout: float | None = None,
        stream: bool = False,
        retries: Retry | int | bool | None = None,
        redirect: bool | None = None,
    ) -> Response:
        """Send a request on a pooled connection to the URL's origin.

        Args:
            method: ``"GET"``, ``"POST"``...: an HTTP token (RFC 9110), sent
                in upper case.
            url: an absolute ``http://`` or ``https://`` URL, without spaces,
                control characters or credentials; its path and query ASCII
                (percent-encoded).
            body: bytes, str (UTF-8), a file object or an iterable of bytes.
            headers: request headers, names that are HTTP tokens (each
                once, in any case), values str (Latin-1) or bytes without CR,
                LF or NUL (``Host`` and ``Content-Length`` are added). A
                ``Content-Length`` must match a bytes body; ``Transfer-Encoding``
                is the pool's to set.
            timeout: connect and socket timeout for this request, > 0 as for
                the pool's, or a :class:`Timeout` (default: the pool's;
                ``math.inf``: no limit).
            pool_timeout: seconds to wait for a connection (default: the pool's);
                0 takes only an idle connection that is ready now; ``math.inf``
                waits without limit.
            stream: leave the body unread (see :class:`Response`).
            retries: this request's policy (default: the pool's; ``False``:
                none), as for the pool.
            redirect: follow redirects (default: the pool's).

        Returns:
            The :class:`Response`, its body read unless ``stream``.

        Raises:
            TypeError, ValueError: a bad argument (the message names it),
                raised before any connection is taken.
            PoolTimeout: no connection to this origin became free within ``pool_timeout``.
            MaxRetryError: out of retries or redirects (from the last error).
            ConnectTimeoutError, ReadTimeoutError: a timeout, not retried.
            OSError, http.client.HTTPException: the request failed and was not
                retried (a replayable one is replayed first if it failed on a
                reused connection).
        """
        method = _check_token("method", method).upper()
        origin, target = self._split(url)
        hdrs = _check_headers(headers)
        # 0 is refused here as in the constructor (see check_timeout).
        timeouts = self._timeouts if timeout is None else as_timeout("timeout", timeout)
        if pool_timeout is not None:
            check_seconds("pool_timeout", pool_timeout, allow_inf=True)
        check_bool("stream", stream)
        if retries is False:
            policy = None
        elif retries is None:
            policy = self.retries
        else:
            policy = Retry.coerce("retries", retries)
        follow = self.redirect if redirect is None else check_bool("redirect", redirect)
        body = _check_body(body)
        _check_framing(hdrs, body)
        state = RetryState(policy, self._rng)
        while True:
            # A body that can be sent again: none, or bytes (not a file or an iterator).
            resendable = body is None or _known_length(body) is not None
            failed: _Failed | None = None
            try:
                response = self._send(
                    method, origin, target, body, hdrs, timeouts, pool_timeout, stream
                )
            except _Failed as exc:
                failed = exc
            if failed is not None:
                # Raises the error itself when it is not to be retried.
                pause = state.on_error(failed.kind, method, url, failed.error, resendable)
                self._count("retries")
                _sleep(pause)
                continue
            response.url = url
            status = response.status
            retry_after = response.headers.get("Retry-After")
            if resendable and state.wants_status_retry(method, status, retry_after is not None):
                status_pause = state.on_status(method, url, status, retry_after)
                if status_pause is not None:
                    response.drain()
                    self._count("retries")
                    _sleep(status_pause)
                    continue
            location = response.headers.get("Location")
            if follow and status in REDIRECT_STATUSES and location:
                nxt = self._redirect_target(url, location)
                # A file or iterator body cannot be sent again: 303 drops it.
                resend = status == 303 or resendable
                if nxt is not None and resend and state.on_redirect(method, url, status, nxt):
                    response.drain()
                    self._count("redirects")
                    new_origin, target = self._split(nxt)
                    if status == 303 and method != "HEAD":
                        method, body = "GET", None
                        hdrs = {k: v for k, v in hdrs.items() if k.lower() not in _BODY_HEADERS}
                    if new_origin != origin:
                        dropped = policy.remove_headers_on_redirect if policy else None
                        hdrs = _strip_headers(hdrs, dropped)
                    origin, url = new_origin, nxt
                    continue
            response.history = tuple(state.history)
            return response

    def _redirect_target(self, url: str, location: str) -> str | None:
        """The absolute URL a redirect points to, or None if it is not one to follow."""
        nxt = urljoin(url, location)
        try:
            self._split(nxt)
        except (TypeError, ValueError):
            return None  # not http(s), or unsafe: returned to the caller as it is
        return nxt

    def _send(
        self,
        method: str,
        origin: Origin,
        target: str,
        body: Any,
        hdrs: dict[str, str | bytes],
        timeouts: Timeout,
        pool_timeout: float | None,
        stream: bool,
    ) -> Response:
        """One attempt (net/http's replays on a reused connection included).

        Raises:
            _Failed: the attempt failed (connect, read or other error).
        """
        replayable = _replayable(method, hdrs, body)
        read_timeout = socket_timeout(timeouts.read)
        attempt = 0
        while True:
            attempt += 1
            proxy = self._pool.acquire(origin, pool_timeout)
            conn = proxy.raw
            reused = conn.sock is not None
            self._count("requests")
            if reused:
                self._count("reused")
            if not reused:
                # Connected here, not inside request(): a failure now is a
                # connect error (nothing was sent), retried for any method.
                try:
                    conn.timeout = socket_timeout(timeouts.connect)
                    conn.connect()
                except BaseException as exc:
                    proxy.discard()
                    if isinstance(exc, TimeoutError):
                        raise _Failed(
                            "connect",
                            _timed_out(
                                ConnectTimeoutError, exc, origin, timeouts.connect, "connect"
                            ),
                        ) from exc
                    if isinstance(exc, ssl.SSLError):
                        raise _Failed("other", exc) from exc
                    if isinstance(exc, OSError):
                        raise _Failed("connect", exc) from exc
                    raise
            conn.timeout = read_timeout
            try:
                assert conn.sock is not None
                conn.sock.settimeout(read_timeout)
                conn.request(method, target, body=body, headers=hdrs)
                resp = conn.getresponse()
            except BaseException as exc:
                proxy.discard()
                # net/http: a kept-alive connection the server closed just as
                # the request went out (reset, broken pipe, or hung up without
                # a status line: all ConnectionError); a replayable request
                # goes again. A timeout is not that (the server may be slow,
                # not gone), nor is a fresh connection failing or a request
                # that may have had effects: those are the caller's to handle.
                if (
                    reused
                    and replayable
                    and attempt < MAX_ATTEMPTS
                    and isinstance(exc, ConnectionError)
                ):
                    self._count("retried")
                    continue
                _read_failed(exc, origin, timeouts.read)
            response = Response(self, proxy, resp, reused)
            if not stream or resp.length == 0:
                try:
                    response._data = response.read()
                except BaseException as exc:
                    # A body cut short (the server closed mid-response): a read error.
                    _read_failed(exc, origin, timeouts.read)
            return response

    def get(self, url: str, **kwargs: Any) -> Response:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: bytes | str | Any = None, **kwargs: Any) -> Response:
        """``request("POST", url, body=body, ...)``."""
        return self.request("POST", url, body=body, **kwargs)

    def stats(self) -> HTTPPoolStats:
        """Request counters and the connection pool's totals."""
        with self._lock:
            counts = dict(self._counts)
        return HTTPPoolStats(pool=self._pool.stats(), **counts)

    def stats_by_host(self) -> dict[Origin, ConnectionPoolStats]:
        """Each origin's connection pool statistics."""
        return self._pool.stats_by_key()

    def close_idle(self) -> None:
        """Close every idle connection now, busy ones when they come back
        (net/http ``CloseIdleConnections``)."""
        self._pool.drain()

    def close(self, timeout: float | None = None) -> None:
        """Close every connection (busy ones as they come back). Idempotent."""
        self._pool.close(timeout)

    def __enter__(self) -> HTTPPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._pool.stats()
        return (
            f"<HTTPPool [{len(self._pool.keys())} hosts | {s.idle} idle, {s.in_use} in use | "
            f"{self._counts['requests']} requests, {self._counts['reused']} reused]>"
        )
