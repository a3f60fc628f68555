"""Demo part ``connections``: why pool connections, and how poolkit finds a leak.

Throughput: a TCP echo server is started on loopback; the same number of
request/response round trips is made opening a new connection for each (what
code without a pool does) and through a :class:`~poolkit.ConnectionPool` of
sockets, first from one thread and then from four.

Leak: a handler "forgets" to release its connection. With ``leak_timeout`` the
pool warns with the stack of the code that acquired it, and the timeout a
starved caller then gets names the holder instead of just "pool exhausted".
A fake clock moves the half minute, so the demo does not wait for it.
"""

from __future__ import annotations

import functools
import socket
import warnings

from poolkit import ConnectionPool, LeakWarning, PoolTimeout
from poolkit._demo._measure import (
    Way,
    compare_headers,
    compare_ways,
    rate_chart,
    rates,
    repeat,
    time_threads,
)
from poolkit._demo._report import DemoContext, Section
from poolkit.adapters.sockets import PooledSocket, TCPConnector
from poolkit.testing import EchoServer, FakeClock

__all__ = ["run"]

# A small request line, as a status probe would send: the round trip, not the
# payload, is what a pool saves.
PAYLOAD = b"GET /status\r\n"
# Threads in the concurrent round: as many as the pool has connections.
THREADS = 4
# The leak part's leak_timeout, in (fake-clock) seconds: a typical request
# finishes in well under this, so holding a connection longer is a leak.
LEAK_TIMEOUT = 30.0


def _roundtrip(sock: socket.socket) -> None:
    sock.sendall(PAYLOAD)
    got = 0
    while got < len(PAYLOAD):
        chunk = sock.recv(64)
        if not chunk:
            raise ConnectionError("the echo server closed the connection")
        got += len(chunk)


def _pooled_roundtrip(pool: ConnectionPool[socket.socket, PooledSocket]) -> None:
    with pool.connection() as sock:
        _roundtrip(sock.raw)


def _ways(server: EchoServer, requests: int) -> dict[str, Way]:
    """A new connection per round trip, and a pool of THREADS sockets."""

    def fresh(threads: int) -> tuple[float, int]:
        def one() -> None:
            with socket.create_connection(server.address, timeout=10) as sock:
                _roundtrip(sock)

        before = server.accepted
        return time_threads(threads, repeat(requests // threads, one)), server.accepted - before

    def pooled(threads: int) -> tuple[float, int]:
        pool = ConnectionPool(TCPConnector(*server.address), max_size=THREADS, name="demo")
        before = server.accepted
        try:
            one = functools.partial(_pooled_roundtrip, pool)
            seconds = time_threads(threads, repeat(requests // threads, one))
        finally:
            pool.close()
        return seconds, server.accepted - before

    return {"new connection each": fresh, "poolkit ConnectionPool": pooled}


def handle_request_that_forgets_to_release(
    pool: ConnectionPool[socket.socket, PooledSocket],
) -> None:
    """A buggy handler: acquires a connection and never gives it back."""
    conn = pool.acquire()
    _roundtrip(conn.raw)
    _LEAKED.append(conn)  # kept alive, so only the leak timer can notice it


_LEAKED: list[object] = []


def _leak(server: EchoServer) -> tuple[str, str]:
    # A fake clock stands in for the half minute a real leak would take to
    # notice; it also keeps the pool's own cleaner thread from racing this
    # thread to report it.
    clock = FakeClock()
    pool = ConnectionPool(
        TCPConnector(*server.address), max_size=1, leak_timeout=LEAK_TIMEOUT, clock=clock,
        name="leaky",
    )  # fmt: skip
    handle_request_that_forgets_to_release(pool)
    clock.advance(LEAK_TIMEOUT + 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LeakWarning)
        pool.maintain()
    warning = next(str(w.message) for w in caught if issubclass(w.category, LeakWarning))
    try:
        pool.acquire(timeout=0.05)
        timeout_msg = "(no timeout?)"
    except PoolTimeout as exc:
        timeout_msg = str(exc)
    leaked = _LEAKED.pop()
    pool.release(leaked)  # type: ignore[arg-type]
    pool.close()
    return warning, timeout_msg


def run(ctx: DemoContext) -> Section:
    """Round trips with and without a pool, then a leak caught and explained."""
    requests = 200 if ctx.quick else 4000
    with EchoServer() as server:
        rows = compare_ways(
            ctx, "connections: round trips", requests, (1, THREADS), _ways(server, requests)
        )
        warning, timeout_msg = _leak(server)
    chart = rate_chart(
        ctx,
        "connections_throughput.png",
        f"{requests} echo round trips on loopback",
        "requests per second",
        rows,
    )
    by = rates(rows)
    speedup = by[("poolkit ConnectionPool", 1)] / by[("new connection each", 1)]
    stack_lines = [line for line in warning.splitlines() if "forgets_to_release" in line]
    print(
        f"\nLeakWarning as the pool reported it (the {LEAK_TIMEOUT + 1:.0f} s it mentions "
        "passed on a fake clock that the demo moved forward: no real waiting):\n" + warning
    )
    return Section(
        title="Connection pools: reuse, and a leak found by leak_timeout",
        intro=(
            "A TCP echo server runs on loopback. Each request is one round trip, made "
            "either on a new connection (connect, send, receive, close) or on a socket "
            "borrowed from a `poolkit.ConnectionPool` (`TCPConnector`, max_size=4, "
            "liveness checked by a non-blocking peek at every checkout). Loopback is the best "
            "case for a new connection (no network latency, no TLS or login handshake), so "
            "this ratio is the floor of what pooling saves; the sqlite part shows a database "
            "connection's cost. Then a handler "
            "forgets to release its connection: the pool's `leak_timeout` (30 s, moved on a "
            "fake clock) catches it and names the code that acquired it."
        ),
        headers=compare_headers("requests"),
        rows=rows,
        findings=[
            f"one thread: the pool serves {speedup:.1f}x the requests per second of a new "
            "connection per request, opening 1 connection instead of one per request",
            f"leak caught after {LEAK_TIMEOUT + 1:.0f} s on a fake clock: "
            + (stack_lines[0].strip() if stack_lines else warning[:120]),
            "the starved caller's PoolTimeout says who holds the connection: "
            + timeout_msg[timeout_msg.find("longest holders") :],
        ],
        charts=[(chart, "echo round trips per second, with and without the pool")],
    )
