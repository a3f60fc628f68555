"""HTTPPool's urllib3 parity against local servers that fail, throttle and redirect.

Each server here answers from a script: a list of what to do with each request
it gets (a status, a hang-up before or during the response, a slow answer, a
redirect), so a test meets each fault exactly once.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from poolkit import PoolTimeout
from poolkit.adapters._http_retry import parse_retry_after
from poolkit.adapters.http import (
    ConnectTimeoutError,
    HTTPPool,
    MaxRetryError,
    ReadTimeoutError,
    Retry,
    Timeout,
)
from tests.adapters.conftest import free_port

# A script step: (action, status, headers). Actions: "answer", "hang-up" (close
# before any response), "cut" (headers and part of the body, then close),
# "stall" (answer only once `release` is set).
Step = tuple[str, int, dict[str, str]]


class _Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.lock:
            server.seen.append((self.command, self.path, dict(self.headers), body))
            script = server.scripts.get(self.path.split("?")[0], [])
            action, status, headers = script.pop(0) if script else ("answer", 200, {})
        if action == "hang-up":
            self.close_connection = True
            return
        if action == "stall":
            server.release.wait(10)
        payload = f"{self.command} {self.path}".encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if action == "cut":
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Scripted)
        self.lock = threading.Lock()
        self.scripts: dict[str, list[Step]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def script(self, path: str, *steps: Step) -> str:
        with self.lock:
            self.scripts[path] = list(steps)
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.stop()


@pytest.fixture
def other_server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.stop()


def answer(status: int, **headers: str) -> Step:
    return ("answer", status, {k.replace("_", "-"): v for k, v in headers.items()})


HANG_UP: Step = ("hang-up", 0, {})
CUT: Step = ("cut", 200, {})


# -- retries -----------------------------------------------------------------


def test_status_in_forcelist_is_retried_until_it_succeeds(server: ScriptedServer) -> None:
    url = server.script("/flaky", answer(503), answer(502), answer(200))
    policy = Retry(total=3, status_forcelist=[502, 503])
    with HTTPPool(retries=policy) as client:
        resp = client.get(url)
        assert (resp.status, resp.data) == (200, b"GET /flaky")
        assert [(h.kind, h.status) for h in resp.history] == [("status", 503), ("status", 502)]
        assert client.stats().retries == 2
        # The failed answers were read to the end: one connection served all three.
        assert client.stats().pool.created == 1
    assert len(server.seen) == 3


def test_non_idempotent_methods_are_not_retried_on_status(server: ScriptedServer) -> None:
    url = server.script("/order", answer(503), answer(200))
    with HTTPPool(retries=Retry(total=3, status_forcelist=[503])) as client:
        assert client.post(url, b"one order").status == 503
        assert client.stats().retries == 0
    assert len(server.seen) == 1


def test_out_of_status_retries_raises_or_returns_the_last_response(
    server: ScriptedServer,
) -> None:
    url = server.script("/down", answer(500), answer(500), answer(500), answer(500))
    with HTTPPool() as client:
        with pytest.raises(MaxRetryError, match="status 500") as info:
            client.get(url, retries=Retry(status=1, status_forcelist=[500]))
        assert info.value.reason is None
        assert [h.status for h in info.value.history] == [500, 500]
        policy = Retry(status=1, status_forcelist=[500], raise_on_status=False)
        assert client.get(url, retries=policy).status == 500
    assert len(server.seen) == 4


def test_retry_after_is_honoured_for_429_without_a_forcelist(server: ScriptedServer) -> None:
    url = server.script("/throttled", answer(429, Retry_After="1"), answer(200))
    with HTTPPool(retries=Retry(total=2)) as client:
        resp = client.get(url)
        assert resp.status == 200
        # The server's delay, not the policy's backoff (0 before a first retry).
        assert [(h.status, h.slept) for h in resp.history] == [(429, 1.0)]


def test_retry_after_is_ignored_when_asked(server: ScriptedServer) -> None:
    url = server.script("/throttled", answer(429, Retry_After="1"), answer(200))
    with HTTPPool(retries=Retry(total=2, respect_retry_after_header=False)) as client:
        assert client.get(url).status == 429


def test_a_server_hanging_up_before_answering_is_a_read_error_retried_for_get(
    server: ScriptedServer,
) -> None:
    url = server.script("/hangup", HANG_UP, answer(200))
    with HTTPPool(retries=Retry(read=1, total=None)) as client:
        resp = client.get(url)
        assert resp.status == 200
        assert [h.kind for h in resp.history] == ["read"]
        assert isinstance(resp.history[0].error, http.client.RemoteDisconnected)


def test_a_body_cut_short_is_retried_for_get_and_raised_for_post(server: ScriptedServer) -> None:
    url = server.script("/cut", CUT, answer(200), CUT)
    with HTTPPool(retries=Retry(read=2)) as client:
        resp = client.get(url)
        assert (resp.status, resp.data) == (200, b"GET /cut")
        assert isinstance(resp.history[0].error, http.client.IncompleteRead)
        # POST may have had effects: the read error is the caller's.
        with pytest.raises(http.client.IncompleteRead):
            client.post(url, b"x")
    assert len(server.seen) == 3


def test_connect_errors_are_retried_for_any_method_then_raise_max_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    with HTTPPool(retries=Retry(connect=2, backoff_factor=0.001)) as client:
        with pytest.raises(MaxRetryError, match="connect error") as info:
            client.post(url, b"never sent")
        assert isinstance(info.value.reason, ConnectionRefusedError)
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
        assert [h.kind for h in info.value.history] == ["connect"] * 3
        assert client.stats().retries == 2


def test_without_a_policy_errors_propagate_as_they_are(server: ScriptedServer) -> None:
    url = server.script("/hangup", HANG_UP)
    with HTTPPool() as client, pytest.raises(http.client.RemoteDisconnected):
        client.get(url)


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    """urllib3: nothing before the first retry, then factor * 2 ** (n - 1), capped."""
    import random

    rng = random.Random(7)
    policy = Retry(backoff_factor=0.1, backoff_max=0.5)
    assert [policy.backoff(n, rng) for n in range(1, 6)] == [0.0, 0.2, 0.4, 0.5, 0.5]
    jittery = Retry(backoff_factor=1.0, backoff_jitter=0.25)
    sleeps = [jittery.backoff(3, rng) for _ in range(50)]
    assert all(4.0 <= s <= 4.25 for s in sleeps)
    assert len(set(sleeps)) > 1


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None


# -- timeouts ----------------------------------------------------------------


def test_read_timeout_is_not_the_connect_timeout(server: ScriptedServer) -> None:
    url = server.script("/stall", ("stall", 200, {}), ("stall", 200, {}))
    with HTTPPool() as client:
        with pytest.raises(ReadTimeoutError, match="read timeout"):
            client.get(url, timeout=Timeout(connect=10, read=0.2))
        # A connect timeout far shorter than the wait for the answer: only reads wait.
        threading.Timer(0.3, server.release.set).start()
        assert client.get(url, timeout=Timeout(connect=0.05, read=10)).status == 200


def test_connect_timeout_raises_connect_timeout_error() -> None:
    # A listener with a full accept queue: the kernel drops further SYNs.
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        with HTTPPool(timeout=Timeout(connect=0.2, read=10)) as client:
            with pytest.raises(ConnectTimeoutError, match="connect timeout") as info:
                client.get(f"http://127.0.0.1:{port}/")
            assert isinstance(info.value, TimeoutError)


# -- redirects ---------------------------------------------------------------


def test_redirect_on_the_same_host_is_followed_when_asked(server: ScriptedServer) -> None:
    url = server.script("/old", answer(301, Location="/new"), answer(301, Location="/new"))
    with HTTPPool() as client:
        assert client.get(url).status == 301  # not asked
        resp = client.get(url, redirect=True, headers={"Authorization": "Bearer t"})
        assert (resp.status, resp.data) == (200, b"GET /new")
        assert resp.url == f"{server.base}/new"
        assert [(h.status, h.redirect_location) for h in resp.history] == [
            (301, f"{server.base}/new")
        ]
        assert client.stats().redirects == 1
    # Same origin: the credentials go along.
    assert server.seen[-1][2].get("Authorization") == "Bearer t"


def test_303_turns_a_post_into_a_get_without_body(server: ScriptedServer) -> None:
    url = server.script("/submit", answer(303, Location="/done"))
    with HTTPPool(redirect=True) as client:
        resp = client.post(url, b"form", headers={"Content-Type": "text/plain"})
        assert resp.data == b"GET /done"
    command, _path, headers, body = server.seen[-1]
    assert (command, body) == ("GET", b"")
    assert "Content-Type" not in headers


def test_307_keeps_the_method_and_body(server: ScriptedServer) -> None:
    url = server.script("/api", answer(307, Location="/api2"))
    with HTTPPool(redirect=True) as client:
        assert client.request("PUT", url, body=b"payload").data == b"PUT /api2"
    assert server.seen[-1][3] == b"payload"


def test_cross_host_redirect_drops_credentials(
    server: ScriptedServer, other_server: ScriptedServer
) -> None:
    target = other_server.script("/landing")
    url = server.script("/away", answer(302, Location=target))
    headers = {"Authorization": "Bearer secret", "Cookie": "s=1", "X-Trace": "abc"}
    with HTTPPool(redirect=True) as client:
        assert client.get(url, headers=headers).status == 200
    received = other_server.seen[-1][2]
    assert "Authorization" not in received
    assert "Cookie" not in received
    assert received["X-Trace"] == "abc"


def test_redirect_loop_hits_the_limit(server: ScriptedServer) -> None:
    loop = [answer(302, Location="/loop")] * 20
    url = server.script("/loop", *loop)
    with HTTPPool(redirect=True) as client:
        with pytest.raises(MaxRetryError, match="too many redirects") as info:
            client.get(url, retries=Retry(redirect=3))
        assert len(info.value.history) == 4
        # Without a policy the limit is 10.
        with pytest.raises(MaxRetryError, match="too many redirects"):
            client.get(url)
        # raise_on_redirect=False: the last redirect comes back instead.
        policy = Retry(redirect=1, raise_on_redirect=False)
        assert client.get(url, retries=policy).status == 302


# -- non-blocking pool ---------------------------------------------------------


def test_block_false_opens_past_the_cap_and_keeps_only_the_cap(server: ScriptedServer) -> None:
    """urllib3 block=False: never wait for a busy host; surplus connections close on return."""
    url = server.script("/x")
    with HTTPPool(max_conns_per_host=1, block=False) as client:
        held = client.get(url, stream=True)
        # Served although the host is at its cap (blocking, it would wait 5 s and fail).
        second = client.get(url, pool_timeout=5)
        assert second.status == 200
        held.read()
        stats = client.stats().pool
        assert (stats.idle, stats.closed_by_reason["max_idle"]) == (1, 1)
    with HTTPPool(max_conns_per_host=1) as blocking:
        held = blocking.get(url, stream=True)
        with pytest.raises(PoolTimeout):
            blocking.get(url, pool_timeout=0)
        held.close()


# -- arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Retry(total=-1), ValueError, "total"),
        (lambda: Retry(connect=1.5), TypeError, "connect"),  # type: ignore[arg-type]
        (lambda: Retry(status_forcelist=[700]), ValueError, "status_forcelist"),
        (lambda: Retry(status_forcelist=503), TypeError, "status_forcelist"),  # type: ignore[arg-type]
        (lambda: Retry(allowed_methods="GET"), TypeError, "allowed_methods"),
        (lambda: Retry(backoff_factor=-1), ValueError, "backoff_factor"),
        (lambda: Retry(backoff_jitter=float("nan")), ValueError, "backoff_jitter"),
        (lambda: Retry(raise_on_status=1), TypeError, "raise_on_status"),  # type: ignore[arg-type]
        (lambda: Timeout(connect=0, read=1), ValueError, "connect"),
        (lambda: HTTPPool(timeout=Timeout(1, -1)), ValueError, "read"),
        (lambda: HTTPPool(retries="3"), TypeError, "retries"),  # type: ignore[arg-type]
        (lambda: HTTPPool(retries=-1), ValueError, "retries"),
        (lambda: HTTPPool(redirect=None), TypeError, "redirect"),  # type: ignore[arg-type]
        (lambda: HTTPPool(block=0), TypeError, "block"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_refused(make: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        make()


def test_bad_request_arguments_are_refused_before_sending(server: ScriptedServer) -> None:
    url = server.script("/x")
    with HTTPPool() as client:
        with pytest.raises(TypeError, match="redirect"):
            client.get(url, redirect="yes")
        with pytest.raises(TypeError, match="retries"):
            client.get(url, retries=1.5)
        with pytest.raises(ValueError, match="timeout"):
            client.get(url, timeout=-1)
    assert server.seen == []
