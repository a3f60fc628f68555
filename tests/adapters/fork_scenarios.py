"""A forked child must never touch its parent's pooled network connections.

Run as a program (``python fork_scenarios.py ADAPTER TARGET ENDING``) by the
adapter tests, so that the child can really end with ``sys.exit()`` (atexit
handlers, finalizers and interpreter teardown all run) without returning into
a pytest session. The servers run in the test process; this program is the
client whose pool holds connections when it forks:

- A: checked out inside a ``with`` block that is still open at the fork;
- B: checked out and held;
- C: idle in the pool.

The child leaves the ``with`` block, gives B back, uses the pool for its own
work (which must open a connection of its own), then ENDING: ``close`` closes
its pool first, ``leave`` does not; both end with ``sys.exit(0)``, and the
``-os-exit`` forms with ``os._exit(0)`` instead. Then the parent uses A, B and
C again, each on its very connection, and prints one JSON line: what it saw.
The test asserts on that and on the server's own counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import poolkit
from poolkit import ConnectionPool
from poolkit.adapters.sockets import TCPConnector

ENDINGS = ("close", "leave", "close-os-exit", "leave-os-exit")


def _fork(child: Callable[[], None], ending: str) -> int:
    """Fork; the child runs ``child`` then ends as ``ending`` says. Returns its exit code."""
    with warnings.catch_warnings():
        # Python 3.12+ warns on any fork of a process with threads (the pool's
        # cleaner runs): forking a pool in use is exactly what is tested here,
        # and the stderr the tests check is for what poolkit itself prints.
        warnings.filterwarnings(
            "ignore", "This process .* is multi-threaded, use of fork", DeprecationWarning
        )
        pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        if ending.endswith("os-exit"):
            sys.stderr.flush()
            os._exit(code)
        sys.exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def sockets_scenario(host: str, port: int, ending: str) -> dict[str, Any]:
    """TCPConnector in a ConnectionPool, against an echo server."""

    def roundtrip(sock: Any, payload: bytes) -> bytes:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(64)
            if not chunk:
                break
            got += chunk
        return got

    pool = ConnectionPool(TCPConnector(host, port, io_timeout=10), max_size=4, timeout=10)
    idle, held = pool.acquire(), pool.acquire()
    with pool.connection() as in_with:
        with_sock, held_sock, idle_sock = in_with.raw, held.raw, idle.raw
        for sock in (with_sock, held_sock, idle_sock):
            assert roundtrip(sock, b"before") == b"before"
        idle.close()  # idle in the pool at the fork

        def child() -> None:
            in_with.close()  # what leaving the block does; the block itself stays the parent's
            held.close()
            with pool.connection() as own:  # the child's own connection
                if own.raw in (with_sock, held_sock, idle_sock):
                    raise AssertionError("the child was handed a parent's connection")
                if roundtrip(own.raw, b"child") != b"child":
                    raise AssertionError("the child's own connection failed")
            if ending.startswith("close"):
                pool.close()

        child_code = _fork(child, ending)
        answers = {"A": roundtrip(with_sock, b"A-after").decode()}
    answers["B"] = roundtrip(held.raw, b"B-after").decode()
    held.close()
    # All three back in the pool: taking three at once must give exactly them.
    again = [pool.acquire() for _ in range(3)]
    same = {id(p.raw) for p in again} == {id(with_sock), id(held_sock), id(idle_sock)}
    answers["C"] = roundtrip(idle_sock, b"C-after").decode()
    for p in again:
        p.close()
    stats = pool.stats()
    pool.close()
    return {
        "child": child_code,
        "answers": answers,
        "same_connections": same,
        "created": stats.created,
        "closed": sum(stats.closed_by_reason.values()),
    }


def http_scenario(base: str, ending: str) -> dict[str, Any]:
    """HTTPPool against the tests' loopback HTTP/1.1 server."""
    from poolkit.adapters.http import HTTPPool

    http = HTTPPool(timeout=10)
    held = http.get(f"{base}/big-held", stream=True)
    idle = http.get(f"{base}/idle", stream=True)
    with http.get(f"{base}/big-with", stream=True) as in_with:
        assert idle.read() == b"hello /idle"  # read to the end: idle in the pool at the fork

        def child() -> None:
            in_with.close()  # what leaving the block does
            held.close()  # give up an unread body: its connection is discarded
            own = http.get(f"{base}/child")
            if own.reused or own.data != b"hello /child":
                raise AssertionError(f"the child's own request: {own!r} reused={own.reused}")
            if ending.startswith("close"):
                http.close()

        child_code = _fork(child, ending)
        answers = {"A": len(in_with.read())}
    answers["B"] = len(held.read())
    # Three requests at once on three idle connections: each must be a reused one.
    streams = [http.get(f"{base}/after{i}", stream=True) for i in range(3)]
    answers["C"] = sum(s.reused for s in streams)
    bodies = [s.read() for s in streams]
    stats = http.stats()
    http.close()
    return {
        "child": child_code,
        "answers": answers,
        "bodies": [b.decode() for b in bodies],
        "retried": stats.retried,
        "created": stats.pool.created,
        "closed": sum(stats.pool.closed_by_reason.values()),
    }


def memcache_scenario(host: str, port: int, ending: str) -> dict[str, Any]:
    """MemcacheConnector in a ConnectionPool, and a MemcacheClient's idle connection."""
    from poolkit.adapters.memcache import MemcacheClient, MemcacheConnector

    mc = MemcacheClient([f"{host}:{port}"], timeout=10, connect_timeout=10)
    assert mc.set("idle", b"C")
    pool = ConnectionPool(MemcacheConnector((host, port), timeout=10, connect_timeout=10))
    held = pool.acquire()
    assert held.raw.set("held", b"B")
    with pool.connection() as in_with:
        assert in_with.raw.set("with", b"A")
        socks = (in_with.raw.sock, held.raw.sock)

        def child() -> None:
            in_with.close()
            held.close()
            with pool.connection() as own:
                if own.raw.sock is not None or own.raw.get("with") != b"A":
                    raise AssertionError("the child's own connection was not a new one")
            if mc.get("idle") != b"C":  # through the client's own (new) connection
                raise AssertionError("the child's client failed")
            if ending.startswith("close"):
                pool.close()
                mc.close()

        child_code = _fork(child, ending)
        answers = {"A": in_with.raw.get("with").decode()}
        same = in_with.raw.sock is socks[0]
    answers["B"] = held.raw.get("held").decode()
    same = same and held.raw.sock is socks[1]
    held.close()
    answers["C"] = mc.get("idle").decode()
    stats, client_stats = pool.stats(), mc.stats()
    pool.close()
    mc.close()
    return {
        "child": child_code,
        "answers": answers,
        "same_connections": same,
        "created": stats.created + client_stats.created,
        "closed": sum(stats.closed_by_reason.values())
        + sum(client_stats.closed_by_reason.values()),
    }


def run(adapter: str, target: str, ending: str) -> dict[str, Any]:
    """Run one scenario in a new interpreter; return what its parent saw.

    The program imports the very poolkit these tests import (its directory
    goes first on ``PYTHONPATH``).
    """
    env = dict(os.environ)
    src = str(Path(poolkit.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, __file__, adapter, target, ending],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(
            f"the scenario failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


def main(argv: list[str]) -> None:
    adapter, target, ending = argv
    if ending not in ENDINGS:
        raise SystemExit(f"ending must be one of {ENDINGS}, got {ending!r}")
    if adapter == "http":
        result = http_scenario(target, ending)
    else:
        host, _, port = target.rpartition(":")
        scenario = sockets_scenario if adapter == "sockets" else memcache_scenario
        result = scenario(host, int(port), ending)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
