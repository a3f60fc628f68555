"""HTTPPool against a real HTTP/1.1 server on loopback: keep-alive, close, retries, limits."""

from __future__ import annotations

import http.client
import io
import math
import os
import select
import socket
import threading
from typing import Any

import pytest

from poolkit import PoolTimeout
from poolkit.adapters.http import HTTPConnector, HTTPPool
from poolkit.testing import FakeClock
from tests.adapters.conftest import LoopbackHTTPServer, eventually
from tests.adapters.fork_scenarios import ENDINGS, run


def wait_readable(sock: socket.socket) -> None:
    """Wait (bounded) until ``sock`` is readable: state the checkout check does not touch."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    assert poller.poll(10_000), "the socket never became readable"


def test_keep_alive_reuses_one_connection(http_server: LoopbackHTTPServer) -> None:
    """net/http: a response read to the end puts its connection back for the next request."""
    with HTTPPool() as client:
        responses = [client.get(f"{http_server.base}/n{i}") for i in range(3)]
        assert [r.data for r in responses] == [b"hello /n0", b"hello /n1", b"hello /n2"]
        assert [r.reused for r in responses] == [False, True, True]
        assert http_server.accepted == 1
        assert client.stats().pool.idle == 1


def test_server_asking_to_close_takes_the_connection_out(http_server: LoopbackHTTPServer) -> None:
    """Connection: close from the server: the connection is not pooled."""
    with HTTPPool() as client:
        assert client.get(f"{http_server.base}/close").data == b"bye"
        assert client.stats().pool.idle == 0
        assert client.get(f"{http_server.base}/after").status == 200
        assert http_server.accepted == 2
        assert client.stats().server_closed == 1


def test_chunked_body_is_read_and_the_connection_reused(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        assert client.get(f"{http_server.base}/chunked").data == b"one,two,three"
        with client.get(f"{http_server.base}/chunked", stream=True) as resp:
            chunks = list(resp.iter_content(3))
            assert b"".join(chunks) == b"one,two,three"
            assert max(len(c) for c in chunks) == 3
            assert resp.released
        assert http_server.accepted == 1


def test_streamed_body_returns_the_connection_once_consumed(
    http_server: LoopbackHTTPServer,
) -> None:
    with HTTPPool() as client:
        resp = client.get(f"{http_server.base}/big", stream=True)
        assert client.stats().pool.in_use == 1
        assert sum(len(c) for c in resp.iter_content()) == 200_000
        assert client.stats().pool.in_use == 0
        assert client.stats().pool.idle == 1
        assert http_server.accepted == 1


def test_response_closed_before_its_end_closes_the_connection(
    http_server: LoopbackHTTPServer,
) -> None:
    """Unread bytes would be taken for the next response: the connection goes."""
    with HTTPPool() as client:
        with client.get(f"{http_server.base}/big", stream=True) as resp:
            assert len(resp.read(10)) == 10
        assert resp.released
        assert client.stats().pool.idle == 0
        assert client.get(f"{http_server.base}/x").data == b"hello /x"
        assert http_server.accepted == 2


def test_idle_connection_closed_by_the_server_is_not_used() -> None:
    """The server's keep-alive timeout closes the idle connection: the pool's checkout drops it.

    The test waits for the FIN with poll() on the client's socket (state the
    check does not change), then makes one request: the checkout, not a retry,
    must have dropped the dead connection.
    """
    server = LoopbackHTTPServer(idle_timeout=0.05)
    try:
        with HTTPPool() as client:
            resp = client.get(f"{server.base}/a", stream=True)
            sock = resp._proxy.raw.sock if resp._proxy is not None else None
            assert resp.read() == b"hello /a"
            assert isinstance(sock, socket.socket)
            wait_readable(sock)  # the server timed the idle connection out
            assert client.get(f"{server.base}/b").data == b"hello /b"
            stats = client.stats()
            assert (stats.pool.closed_by_reason["check_failed"], stats.retried) == (1, 0)
            assert server.accepted == 2
    finally:
        server.stop()


def test_replayable_request_is_retried_when_a_reused_connection_was_closed(
    http_server: LoopbackHTTPServer,
) -> None:
    """net/http: GET on a reused connection that the server closed goes again, once."""
    with HTTPPool() as client:
        assert client.get(f"{http_server.base}/drop-reused").status == 200
        second = client.get(f"{http_server.base}/drop-reused")
        assert second.status == 200
        assert not second.reused
        assert client.stats().retried == 1
        assert http_server.accepted == 2


def test_post_is_not_retried_on_a_reused_connection(http_server: LoopbackHTTPServer) -> None:
    """A POST may have run on the server: it is not replayed, the error goes to the caller."""
    with HTTPPool() as client:
        assert client.post(f"{http_server.base}/drop-reused", b"a").data == b"a"
        with pytest.raises(http.client.RemoteDisconnected):
            client.post(f"{http_server.base}/drop-reused", b"b")
        assert client.stats().retried == 0
        assert client.stats().pool.closed_by_reason["discarded"] == 1


def test_post_with_idempotency_key_is_retried(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        client.post(f"{http_server.base}/drop-reused", b"a")
        resp = client.post(
            f"{http_server.base}/drop-reused", "é", headers={"Idempotency-Key": "k1"}
        )
        assert resp.data == "é".encode()
        assert client.stats().retried == 1


def test_body_cut_short_raises_and_discards_the_connection(
    http_server: LoopbackHTTPServer,
) -> None:
    with HTTPPool() as client:
        with pytest.raises(http.client.IncompleteRead):
            client.get(f"{http_server.base}/truncated")
        stats = client.stats().pool
        assert (stats.in_use, stats.idle, stats.closed_by_reason["discarded"]) == (0, 0, 1)
        assert client.get(f"{http_server.base}/ok").data == b"hello /ok"


def test_timeout_on_a_reused_connection_is_not_retried(http_server: LoopbackHTTPServer) -> None:
    """A slow server is not a closed one: the timeout goes to the caller, the connection goes."""
    with HTTPPool() as client:
        client.get(f"{http_server.base}/warm")
        with pytest.raises(TimeoutError):
            client.get(f"{http_server.base}/slow", timeout=0.05)
        http_server.release_slow.set()
        assert client.stats().retried == 0
        assert client.stats().pool.closed_by_reason["discarded"] == 1
        assert client.get(f"{http_server.base}/after").status == 200


def test_request_on_a_fresh_connection_is_not_retried() -> None:
    """Only a reused connection may have gone stale; a refused dial is the caller's error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    with HTTPPool() as client:
        with pytest.raises(ConnectionRefusedError):
            client.get(f"http://127.0.0.1:{port}/")
        assert client.stats().retried == 0
        assert client.stats().pool.total == 0


def test_max_conns_per_host_makes_callers_wait(http_server: LoopbackHTTPServer) -> None:
    """net/http MaxConnsPerHost: at the cap a request waits for a connection to come back."""
    with HTTPPool(max_conns_per_host=1) as client:
        resp = client.get(f"{http_server.base}/big", stream=True)
        with pytest.raises(PoolTimeout):
            client.get(f"{http_server.base}/x", pool_timeout=0)
        got: list[bytes] = []
        waiter = threading.Thread(
            target=lambda: got.append(client.get(f"{http_server.base}/w").data)
        )
        waiter.start()
        eventually(lambda: client.stats().pool.waiting == 1, "the second request queued")
        resp.read()
        waiter.join()
        assert got == [b"hello /w"]
        assert http_server.accepted == 1


def test_threads_share_at_most_max_conns_per_host(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool(max_conns_per_host=3) as client:
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def worker() -> None:
            start.wait()
            try:
                for i in range(20):
                    assert client.get(f"{http_server.base}/{i}").status == 200
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert http_server.requests == 120
        assert http_server.accepted <= 3


def test_max_idle_per_host_zero_disables_keep_alive(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool(max_idle_per_host=0) as client:
        for _ in range(3):
            client.get(f"{http_server.base}/")
        assert http_server.accepted == 3
        assert client.stats().pool.closed_by_reason["max_idle"] == 3


def test_global_max_idle_closes_the_least_recently_used_host(
    http_server: LoopbackHTTPServer,
) -> None:
    """net/http MaxIdleConns: across hosts, the oldest idle connection closes first."""
    other = LoopbackHTTPServer()
    try:
        with HTTPPool(max_idle=1) as client:
            client.get(f"{http_server.base}/")
            client.get(f"{other.base}/")
            by_host = client.stats_by_host()
            assert {o[2]: s.idle for o, s in by_host.items()} == {other.server_address[1]: 1}
            assert client.stats().pool.closed_by_reason["evicted"] == 1
    finally:
        other.stop()


def test_idle_timeout_closes_connections_idle_too_long(http_server: LoopbackHTTPServer) -> None:
    """net/http IdleConnTimeout, checked lazily at checkout too (fake clock, no sleep)."""
    clock = FakeClock()
    with HTTPPool(idle_timeout=5.0, clock=clock) as client:
        client.get(f"{http_server.base}/")
        clock.advance(6)
        assert not client.get(f"{http_server.base}/").reused
        assert client.stats().pool.closed_by_reason["idle_time"] == 1
        assert http_server.accepted == 2


def test_close_idle_closes_idle_connections(http_server: LoopbackHTTPServer) -> None:
    """net/http CloseIdleConnections."""
    with HTTPPool() as client:
        client.get(f"{http_server.base}/")
        client.close_idle()
        assert client.stats().pool.idle == 0
        assert not client.get(f"{http_server.base}/").reused


def test_head_json_and_text(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        assert client.request("HEAD", f"{http_server.base}/x").data == b""
        assert client.get(f"{http_server.base}/json").json() == {"ok": True}
        assert client.get(f"{http_server.base}/q?a=1").text() == "hello /q?a=1"
        assert http_server.accepted == 1
        assert "requests" in repr(client)


def test_https_connector_makes_tls_connections_without_dialing() -> None:
    conn = HTTPConnector(("https", "example.invalid", 443), 5.0).create()
    assert isinstance(conn, http.client.HTTPSConnection)
    assert conn.sock is None


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda c: c.get("ftp://x/"), ValueError, "url must start with http"),
        (lambda c: c.get("http:///nohost"), ValueError, "url has no host"),
        (lambda c: c.get("http://h:99999/"), ValueError, "invalid port"),
        (lambda c: c.get(b"http://h/"), TypeError, "url must be a str"),
        (lambda c: c.request("", "http://h/"), ValueError, "method must be an HTTP token"),
        (lambda c: c.request(b"GET", "http://h/"), TypeError, "method must be a str"),
        (lambda c: c.get("http://h/", timeout=-1), ValueError, "timeout"),
        (lambda c: c.get("http://h/", pool_timeout=-1), ValueError, "pool_timeout"),
    ],
)
def test_request_rejects_bad_arguments(call: Any, exc: type[Exception], match: str) -> None:
    with HTTPPool() as client, pytest.raises(exc, match=match):
        call(client)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"max_conns_per_host": 0}, ValueError, "max_conns_per_host"),
        ({"max_idle_per_host": -1}, ValueError, "max_idle_per_host"),
        ({"max_idle": "1"}, TypeError, "max_idle"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"pool_timeout": -1}, ValueError, "pool_timeout"),
        ({"pool_timeout": 0}, ValueError, "pool_timeout must be > 0"),
        ({"ssl_context": object()}, TypeError, "ssl_context"),
    ],
)
def test_pool_rejects_bad_arguments(
    kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        HTTPPool(**kwargs)


def test_iter_content_rejects_bad_chunk_size(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        resp = client.get(f"{http_server.base}/", stream=True)
        with pytest.raises(ValueError, match="chunk_size"):
            next(resp.iter_content(0))
        resp.close()


# -- nothing unchecked reaches the wire ------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["GET X", "GET /evil HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "GE\tT", "GÉT", "GET\x00"],
)
def test_method_must_be_an_http_token(http_server: LoopbackHTTPServer, method: str) -> None:
    """Request-line injection: a method with a space or CR/LF is refused, nothing is sent."""
    with HTTPPool() as client:
        with pytest.raises(ValueError, match="method must be an HTTP token"):
            client.request(method, f"{http_server.base}/x")
        assert client.stats().pool.created == 0
    assert http_server.accepted == 0


def test_custom_token_methods_are_sent(http_server: LoopbackHTTPServer) -> None:
    """Any RFC 9110 token is a method; lower case goes out upper case."""
    with HTTPPool() as client:
        assert client.request("get", f"{http_server.base}/x").data == b"hello /x"
        resp = client.request("PURGE-IT", f"{http_server.base}/x")
        assert resp.status == 501  # the server's answer to a method it lacks: it was sent


@pytest.mark.parametrize(
    ("headers", "exc", "match"),
    [
        ({"X Y": "1"}, ValueError, "header name in headers must be an HTTP token"),
        ({"X:Y": "1"}, ValueError, "header name in headers must be an HTTP token"),
        ({"": "1"}, ValueError, "header name in headers must be an HTTP token"),
        ({"X\r\nEvil": "1"}, ValueError, "header name in headers must be an HTTP token"),
        ({b"X": "1"}, TypeError, "header name in headers must be a str"),
        ({"X": "a\r\nEvil: 1"}, ValueError, r"headers\['X'\] must not contain CR, LF or NUL"),
        ({"X": "a\nb"}, ValueError, r"headers\['X'\] must not contain CR, LF or NUL"),
        ({"X": "a\rb"}, ValueError, r"headers\['X'\] must not contain CR, LF or NUL"),
        ({"X": "a\x00b"}, ValueError, r"headers\['X'\] must not contain CR, LF or NUL"),
        ({"X": b"a\r\nb"}, ValueError, r"headers\['X'\] must not contain CR, LF or NUL"),
        ({"X": "€"}, ValueError, r"headers\['X'\] must be Latin-1 text"),
        ({"X": 5}, TypeError, r"headers\['X'\] must be a str or bytes"),
        ([("X", "1")], TypeError, "headers must be a mapping"),
        ({"X-A": "1", "x-a": "2"}, ValueError, "headers has 'x-a' twice"),
        ({"Transfer-Encoding": "chunked"}, ValueError, "must not set 'Transfer-Encoding'"),
        ({"Content-Length": "5"}, ValueError, "is 5 but the body has 0 bytes"),
        ({"Content-Length": "-1"}, ValueError, "must be a number of bytes"),
    ],
)
def test_bad_headers_are_refused_before_a_connection_is_taken(
    http_server: LoopbackHTTPServer, headers: Any, exc: type[Exception], match: str
) -> None:
    """Header injection: names are tokens, values free of CR, LF and NUL."""
    with HTTPPool() as client:
        with pytest.raises(exc, match=match):
            client.get(f"{http_server.base}/x", headers=headers)
        assert client.stats().pool.created == 0
    assert http_server.accepted == 0


@pytest.mark.parametrize(
    ("body", "length"),
    [(b"abc", "0"), (b"abc", "2"), (bytearray(b"abc"), "4"), (memoryview(b"abc"), b"1")],
)
def test_content_length_that_does_not_match_the_body_is_refused(
    http_server: LoopbackHTTPServer, body: Any, length: str | bytes
) -> None:
    """A wrong length would leave body bytes to be read as the next request (smuggling)."""
    with HTTPPool() as client:
        with pytest.raises(ValueError, match=r"Content-Length'\] is .* but the body has 3 bytes"):
            client.post(f"{http_server.base}/x", body, headers={"Content-Length": length})
        assert client.stats().pool.created == 0
        resp = client.post(f"{http_server.base}/x", body, headers={"content-length": "3"})
        assert resp.data == b"abc"


def test_good_headers_reach_the_server(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        resp = client.post(
            f"{http_server.base}/echo", b"{}", headers={"X-Tab": "a\tb", "X-Bytes": b"\xe9t\xe9"}
        )
        assert resp.data == b"{}"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://h/a b", "url must not contain spaces or control characters"),
        ("http://h/a\r\nX-Injected: 1", "url must not contain spaces or control characters"),
        ("http://h/a\nb", "url must not contain spaces or control characters"),
        ("http://h/a\tb", "url must not contain spaces or control characters"),
        ("http://h/\x00", "url must not contain spaces or control characters"),
        ("http://h/\x7f", "url must not contain spaces or control characters"),
        ("http://user:pw@h/", "url must not carry credentials"),
        ("http://h/é", "url path and query must be ASCII"),
        ("http://h/?q=é", "url path and query must be ASCII"),
    ],
)
def test_request_target_with_unsafe_characters_is_refused(url: str, match: str) -> None:
    """urlsplit would drop CR, LF and tab silently, changing the target: refused instead."""
    with HTTPPool() as client:
        with pytest.raises(ValueError, match=match):
            client.get(url)
        assert client.stats().pool.created == 0


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda c, b: c.get(b, stream="yes"), TypeError, "stream must be True or False"),
        (lambda c, b: c.get(b, stream=1), TypeError, "stream must be True or False"),
        (lambda c, b: c.post(b, 42), TypeError, "body must be bytes, str, a file object"),
        (lambda c, b: c.post(b, {"a": 1}), TypeError, "body must be bytes, str, a file object"),
        (lambda c, b: c.get(b, timeout="5"), TypeError, "timeout"),
        (lambda c, b: c.get(b, timeout=math.nan), ValueError, "timeout"),
    ],
)
def test_bad_request_options_are_refused_before_a_connection_is_taken(
    http_server: LoopbackHTTPServer, call: Any, exc: type[Exception], match: str
) -> None:
    with HTTPPool() as client:
        with pytest.raises(exc, match=match):
            call(client, f"{http_server.base}/x")
        assert client.stats().pool.created == 0


def test_bodies_of_every_accepted_kind_are_sent(http_server: LoopbackHTTPServer) -> None:
    with HTTPPool() as client:
        url = f"{http_server.base}/echo"
        assert client.post(url, bytearray(b"ba")).data == b"ba"
        assert client.post(url, memoryview(b"mv")).data == b"mv"
        # A file goes out chunked unless its length is given (the server reads lengths).
        file_body = io.BytesIO(b"file")
        assert client.post(url, file_body, headers={"Content-Length": "4"}).data == b"file"
        assert client.post(url, "é").data == "é".encode()


def test_read_rejects_a_bad_amount_and_keeps_the_connection(
    http_server: LoopbackHTTPServer,
) -> None:
    with HTTPPool() as client:
        resp = client.get(f"{http_server.base}/x", stream=True)
        with pytest.raises(TypeError, match="amt must be an int"):
            resp.read("5")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="amt must be >= 0"):
            resp.read(-1)
        assert resp.read() == b"hello /x"
        assert client.stats().pool.idle == 1


def test_zero_timeout_is_refused_by_the_pool_and_by_a_request(
    http_server: LoopbackHTTPServer,
) -> None:
    """0 would make the socket non-blocking (BlockingIOError mid-request): both refuse it."""
    with pytest.raises(ValueError, match="timeout must be > 0"):
        HTTPPool(timeout=0)
    with HTTPPool() as client:
        with pytest.raises(ValueError, match="timeout must be > 0"):
            client.get(f"{http_server.base}/x", timeout=0)
        assert client.stats().pool.created == 0


@pytest.mark.parametrize("seconds", [1e300, math.inf, 4_294_967.296])
def test_huge_timeouts_mean_no_limit(http_server: LoopbackHTTPServer, seconds: float) -> None:
    """Pool and per-request timeouts of any size work; past what a socket takes, no limit.

    1e300 raised OverflowError; 4294967.296 s wrapped to a 0 ms wait, so a
    server that took any time at all to answer timed the request out at once.
    """
    with HTTPPool(timeout=seconds, idle_timeout=math.inf) as client:
        assert client.get(f"{http_server.base}/a").data == b"hello /a"
    with HTTPPool() as client:
        got: list[bytes] = []
        errors: list[BaseException] = []

        def slow() -> None:
            try:
                got.append(client.get(f"{http_server.base}/slow", timeout=seconds).data)
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=slow)
        t.start()
        # Two requests: "/a" above, then "/slow" (the one that must not time out).
        eventually(lambda: http_server.requests == 2 or bool(errors), "the server has the request")
        http_server.release_slow.set()
        t.join()
        assert (got, errors) == ([b"late"], [])


def test_connector_takes_huge_timeouts() -> None:
    conn = HTTPConnector(("http", "127.0.0.1", 80), 1e300).create()
    assert conn.timeout is None
    with pytest.raises(ValueError, match="timeout must be > 0"):
        HTTPConnector(("http", "127.0.0.1", 80), 0)


# -- fork: a child never touches its parent's connections --------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("ending", ENDINGS)
def test_forked_child_never_touches_the_parents_http_connections(
    http_server: LoopbackHTTPServer, ending: str
) -> None:
    """Two responses being read (one in a with block) and one idle connection at the fork.

    The child gives both responses up, makes a request of its own, maybe
    closes its pool, and exits. The parent then reads both bodies to the end
    on their connections, and three requests at once all reuse the three
    connections: the server accepted only one more (the child's).
    """
    result = run("http", http_server.base, ending)
    assert result["child"] == 0, result["stderr"]
    assert result["stderr"] == ""  # nothing raised or warned in a finalizer at the child's exit
    assert result["answers"] == {"A": 200_000, "B": 200_000, "C": 3}
    assert result["bodies"] == ["hello /after0", "hello /after1", "hello /after2"]
    assert (result["retried"], result["created"], result["closed"]) == (0, 3, 0)
    assert http_server.accepted == 4


@pytest.mark.parametrize(
    ("pool_kwargs", "request_kwargs"),
    [
        ({"pool_timeout": 1e300}, {}),
        ({"pool_timeout": math.inf}, {}),
        ({}, {"pool_timeout": 1e300}),
        ({}, {"pool_timeout": math.inf}),
    ],
    ids=["pool-1e300", "pool-inf", "request-1e300", "request-inf"],
)
def test_pool_timeouts_of_any_size_wait_for_a_connection(
    http_server: LoopbackHTTPServer, pool_kwargs: Any, request_kwargs: Any
) -> None:
    """At max_conns_per_host a request waits however long pool_timeout is (inf: no limit)."""
    with HTTPPool(max_conns_per_host=1, **pool_kwargs) as client:
        resp = client.get(f"{http_server.base}/big", stream=True)
        got: list[bytes] = []
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                got.append(client.get(f"{http_server.base}/w", **request_kwargs).data)
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        eventually(lambda: client.stats().pool.waiting == 1 or bool(errors), "the request queued")
        resp.read()
        t.join()
        assert (got, errors) == ([b"hello /w"], [])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_forked_while_another_thread_counts_a_request_does_not_hang(
    http_server: LoopbackHTTPServer,
) -> None:
    """A lock held by a parent's thread at the fork stays held in the child for ever."""
    with HTTPPool() as client:
        assert client.get(f"{http_server.base}/a").status == 200
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:  # a request being counted at the moment of the fork
            with client._lock:
                holding.set()
                release.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        holding.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if client.get(f"{http_server.base}/child").data == b"hello /child" else 2
            finally:
                os._exit(code)
        release.set()
        t.join()
        deadline = threading.Event()
        for _ in range(1000):  # up to 10 s, then the child is taken as hung
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            deadline.wait(0.01)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the child hung on the counters' lock")
        assert os.waitstatus_to_exitcode(status) == 0
        assert client.get(f"{http_server.base}/b").reused
