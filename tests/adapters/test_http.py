"""HTTPPool against a real HTTP/1.1 server on loopback: keep-alive, close, retries, limits."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

import pytest

from poolkit import PoolTimeout
from poolkit.adapters.http import HTTPConnector, HTTPPool
from poolkit.testing import FakeClock
from tests.adapters.conftest import LoopbackHTTPServer, eventually


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
    """The server's keep-alive timeout closes the idle connection; the next request works."""
    server = LoopbackHTTPServer(idle_timeout=0.05)
    try:
        with HTTPPool() as client:
            assert client.get(f"{server.base}/a").status == 200
            eventually(
                lambda: all(s.fileno() == -1 for s in server.sockets),
                "the server timed the idle connection out",
            )
            assert client.get(f"{server.base}/b").data == b"hello /b"
            stats = client.stats()
            # Seen by the checkout peek (usually), or by the request failing on
            # it and being retried: either way the caller never sees it.
            assert stats.pool.closed_by_reason["check_failed"] + stats.retried == 1
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
        assert client.stats().pool.size == 0


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
        (lambda c: c.request("", "http://h/"), TypeError, "method must be"),
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
