"""MemcacheClient and the pymemcache connector against real memcached servers."""

from __future__ import annotations

import importlib
import math
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pymemcache import exceptions as mc_errors
from pymemcache.client.base import Client
from pymemcache.serde import pickle_serde

from poolkit import ConnectionPool
from poolkit.adapters.memcache import (
    HashRing,
    MemcacheClient,
    MemcacheConnector,
    ServerDown,
    is_broken,
    parse_server,
)
from poolkit.testing import FakeClock
from tests.adapters.conftest import MemcachedServer, eventually
from tests.adapters.fork_scenarios import ENDINGS, run

Factory = Callable[[], MemcachedServer]
# Generous per-command timeout: tests run on a loaded 2-core machine.
TIMEOUT = 5.0


def _client(*servers: MemcachedServer, **kw: Any) -> MemcacheClient:
    kw.setdefault("timeout", TIMEOUT)
    kw.setdefault("connect_timeout", TIMEOUT)
    return MemcacheClient([s.address for s in servers], **kw)


def wait_readable(sock: socket.socket) -> None:
    """Wait (bounded) until ``sock`` is readable: state the checkout check does not touch."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    assert poller.poll(10_000), "the socket never became readable"


def _idle_sockets(mc: MemcacheClient, server: MemcachedServer, n: int) -> list[socket.socket]:
    """Open ``n`` connections to ``server`` and leave them idle in the client's pool."""
    pool = mc._pools[server.address]
    held = [pool.acquire() for _ in range(n)]
    for proxy in held:
        assert proxy.raw.version()  # connects
    socks = [proxy.raw.sock for proxy in held]
    for proxy in held:
        pool.release(proxy)
    return socks


def test_set_get_delete_reuse_one_connection(memcached_factory: Factory) -> None:
    server = memcached_factory()
    with _client(server) as mc:
        assert mc.set("k", b"v")
        assert mc.get("k") == b"v"
        assert mc.delete("k")
        assert mc.get("k", b"default") == b"default"
        assert mc.add("n", b"1")
        assert mc.incr("n", 5) == 6
        assert mc.decr("n") == 5
        assert mc.touch("n", 100)
        assert mc.replace("n", b"9")
        assert mc.stats().created == 1
        assert "1 servers" in repr(mc)


def test_cache_level_errors_keep_the_connection(memcached_factory: Factory) -> None:
    """gomemcache resumableError: miss, not stored, CAS conflict, bad key keep the socket."""
    server = memcached_factory()
    with _client(server) as mc:
        assert mc.get("missing") is None
        mc.set("k", b"1")
        assert not mc.add("k", b"2")  # not stored
        value, token = mc.gets("k")
        assert value == b"1"
        mc.set("k", b"3")
        assert mc.cas("k", b"4", token) is False  # conflict
        with pytest.raises(mc_errors.MemcacheIllegalInputError):
            mc.get("bad key")
        with pytest.raises(mc_errors.MemcacheServerError):
            mc.set("big", b"x" * (2 << 20))  # SERVER_ERROR object too large
        assert mc.get("k") == b"3"
        stats = mc.stats()
        assert (stats.created, stats.closed_by_reason["broken"]) == (1, 0)


def test_killed_server_fails_its_operations_and_they_recover_after_restart(
    memcached_factory: Factory,
) -> None:
    """Socket errors discard the connection; after a restart the next operation works."""
    server = memcached_factory()
    with _client(server) as mc:
        [sock] = _idle_sockets(mc, server, 1)
        server.kill()
        wait_readable(sock)  # the FIN of the killed server has arrived
        with pytest.raises(ConnectionRefusedError):
            # Sent unprobed on the dead one, which is dropped; sent once
            # more on a new connection: nothing listens.
            mc.set("k", b"w")
        with pytest.raises(ConnectionRefusedError):
            mc.add("k", b"w")  # probed first: no idle one left; nothing listens
        stats = mc.stats()
        assert (stats.closed_by_reason["check_failed"], stats.closed_by_reason["broken"]) == (0, 3)
        assert stats.created == 3
        server.start()
        assert mc.set("k", b"again")
        assert mc.get("k") == b"again"


# Each command as the first one after a restart, on an empty server: the
# call, its answer, and whether it is resent (see memcache._RESENDABLE).
FIRST_AFTER_RESTART: list[tuple[str, Callable[[MemcacheClient], Any], Any, bool]] = [
    ("set", lambda mc: mc.set("k", b"v"), True, True),
    ("set_many", lambda mc: mc.set_many({"k": b"v"}), [], True),
    ("get", lambda mc: mc.get("k", b"miss"), b"miss", True),
    ("gets", lambda mc: mc.gets("k"), (None, None), True),
    ("get_many", lambda mc: mc.get_many(["k"]), {}, True),
    # Sent twice, these would answer differently: each is sent once, on a
    # connection the probe passed.
    ("add", lambda mc: mc.add("k", b"v"), True, False),
    ("replace", lambda mc: mc.replace("k", b"v"), False, False),
    ("cas", lambda mc: mc.cas("k", b"v", b"1"), None, False),
    ("delete", lambda mc: mc.delete("k"), False, False),
    ("incr", lambda mc: mc.incr("k"), None, False),
    ("decr", lambda mc: mc.decr("k"), None, False),
    ("touch", lambda mc: mc.touch("k", 100), False, False),
]


@pytest.mark.parametrize(
    ("call", "answer", "resent"),
    [
        pytest.param(call, answer, resent, id=name)
        for name, call, answer, resent in FIRST_AFTER_RESTART
    ],
)
def test_restart_while_idle_first_operation_after_it_succeeds(
    memcached_factory: Factory, call: Callable[[MemcacheClient], Any], answer: Any, resent: bool
) -> None:
    """memcached restarts while connections sit idle: the very first command works.

    A read or a plain store goes unprobed on the first idle connection, meets
    the close and goes once more, probed: the other dead ones are dropped
    unused. Any other command is probed first. Either way it runs on a new
    connection, once (the test waits on poll(), never on the probe).
    """
    server = memcached_factory()
    with _client(server) as mc:
        socks = _idle_sockets(mc, server, 3)
        server.kill()
        server.start()
        for sock in socks:
            wait_readable(sock)
        assert call(mc) == answer
        stats = mc.stats()
        reasons = (stats.closed_by_reason["check_failed"], stats.closed_by_reason["broken"])
        assert reasons == ((2, 1) if resent else (3, 0))
        assert (stats.created, stats.idle) == (4, 1)
        # The new connection serves what follows.
        assert mc.set("after", b"restart") is True
        assert mc.get("after") == b"restart"
        assert mc.stats().created == 4


def test_a_hang_up_before_the_answer_is_not_a_server_failure(memcached_factory: Factory) -> None:
    """dead_timeout: the dead idle connection's close is not counted against the server.

    retry_attempts=0 would eject the server on its first failure, and
    retry_timeout would refuse its next command: neither happens.
    """
    server = memcached_factory()
    mc = _client(server, dead_timeout=60, retry_attempts=0, retry_timeout=60, clock=FakeClock())
    with mc:
        [sock] = _idle_sockets(mc, server, 1)
        server.kill()
        server.start()
        wait_readable(sock)
        assert mc.set("k", b"v") is True
        assert mc.get("k") == b"v"
        assert mc.ejected_servers == []
        assert mc.stats().closed_by_reason["broken"] == 1


def test_a_timeout_is_not_resent() -> None:
    """Only a connection found closed is sent on again: a slow server is not asked twice.

    A server that answers the first command, then never again: the second
    set times out once, on the connection it was sent on.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so that serve() sees done without a connection
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            accepted.append(conn)
            if len(accepted) == 1:
                conn.recv(1024)
                conn.sendall(b"STORED\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    mc = MemcacheClient([listener.getsockname()], timeout=0.3, connect_timeout=TIMEOUT)
    try:
        assert mc.set("k", b"v") is True
        with pytest.raises(TimeoutError):
            mc.set("k", b"w")
        assert len(accepted) == 1
        assert mc.stats().closed_by_reason["broken"] == 1
    finally:
        mc.close()
        done.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()


def test_keys_spread_over_servers_and_one_killed_mid_test_spares_the_others(
    memcached_factory: Factory,
) -> None:
    servers = [memcached_factory() for _ in range(3)]
    with _client(*servers) as mc:
        keys = [f"key{i}" for i in range(300)]
        assert mc.set_many({k: k.encode() for k in keys}) == []
        owners = {mc.server_for(k) for k in keys}
        assert owners == {s.address for s in servers}
        for s in servers:  # each key is on exactly the server the ring names
            direct = Client(s.address, timeout=TIMEOUT)
            mine = [k for k in keys if mc.server_for(k) == s.address]
            assert set(direct.get_many(mine)) == set(mine)
            direct.close()
        assert mc.get_many(keys) == {k: k.encode() for k in keys}

        dead = servers[0]
        dead.kill()
        alive_keys = [k for k in keys if mc.server_for(k) != dead.address]
        dead_key = next(k for k in keys if mc.server_for(k) == dead.address)
        with pytest.raises((OSError, mc_errors.MemcacheUnexpectedCloseError)):
            mc.get(dead_key)
        assert mc.get_many(alive_keys) == {k: k.encode() for k in alive_keys}
        by_server = mc.stats_by_server()
        assert all(s.in_use == 0 for s in by_server.values())


def test_ignore_exc_turns_a_dead_server_into_misses(memcached_factory: Factory) -> None:
    """pymemcache ignore_exc: a cache outage degrades to misses instead of errors."""
    server = memcached_factory()
    with _client(server, ignore_exc=True) as mc:
        mc.set("k", b"v")
        server.kill()
        assert mc.get("k", b"miss") == b"miss"
        assert mc.set("k", b"v") is False
        assert mc.get_many(["a", "b"]) == {}


def test_max_conns_per_server_caps_concurrent_connections(memcached_factory: Factory) -> None:
    server = memcached_factory()
    with _client(server, max_conns_per_server=2) as mc:
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            start.wait()
            try:
                for i in range(50):
                    mc.set(f"{n}-{i}", b"x")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert mc.stats().created <= 2


def test_max_idle_per_server_closes_surplus_on_return(memcached_factory: Factory) -> None:
    """gomemcache putFreeConn: at maxIdleConns a returned connection is closed."""
    server = memcached_factory()
    with _client(server, max_idle_per_server=1) as mc:
        pool = mc._pools[server.address]
        a, b = pool.acquire(), pool.acquire()
        pool.release(a)
        pool.release(b)
        assert mc.stats().idle == 1
        assert mc.stats().closed_by_reason["max_idle"] == 1


def test_connector_check_drops_connections_the_server_closed(memcached_factory: Factory) -> None:
    server = memcached_factory()
    pool = ConnectionPool(MemcacheConnector(server.address, timeout=TIMEOUT), max_size=2)
    with pool.connection() as client:
        client.raw.set("k", b"v")
        sock = client.raw.sock
    server.kill()
    server.start()
    wait_readable(sock)  # the FIN has arrived; the check under test is not called
    with pool.connection() as client:
        assert client.raw.get("k") is None  # a new connection to the new server
    assert pool.stats().closed_by_reason["check_failed"] == 1
    pool.close()


@pytest.mark.parametrize(
    ("exc", "broken"),
    [
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (mc_errors.MemcacheUnexpectedCloseError(), True),
        (mc_errors.MemcacheUnknownError("bad line"), True),
        (mc_errors.MemcacheIllegalInputError("bad key"), False),
        (mc_errors.MemcacheServerError("object too large"), False),
        (mc_errors.MemcacheClientError("x"), False),
        (ValueError(), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_broken_follows_gomemcache_resumable_errors(exc: BaseException, broken: bool) -> None:
    assert is_broken(exc) == broken


def test_ring_moves_few_keys_when_a_server_is_added() -> None:
    """Consistent hashing: a 4th server takes about a quarter, not most, of the keys."""
    three = HashRing(["a:1", "b:1", "c:1"])
    four = HashRing(["a:1", "b:1", "c:1", "d:1"])
    keys = [f"k{i}" for i in range(4000)]
    moved = [k for k in keys if three.server_for(k) != four.server_for(k)]
    assert all(four.server_for(k) == "d:1" for k in moved)
    assert 0.15 < len(moved) / len(keys) < 0.35
    counts = {s: sum(four.server_for(k) == s for k in keys) for s in ("a:1", "b:1", "c:1", "d:1")}
    assert min(counts.values()) > 600  # roughly even


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("h:1", ("h", 1)),
        ("h", ("h", 11211)),
        (("h", 2), ("h", 2)),
        ("::1:5", ("::1", 5)),
        ("[::1]:5", ("::1", 5)),
        ("[::1]", ("::1", 11211)),
    ],
)
def test_parse_server_accepts_the_usual_forms(server: Any, expected: tuple[str, int]) -> None:
    assert parse_server(server) == expected


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"servers": []}, ValueError, "at least one"),
        ({"servers": "h:1"}, TypeError, "list of servers"),
        ({"servers": ["h:x"]}, ValueError, "port must be a number"),
        ({"servers": ["h:0"]}, ValueError, "1..65535"),
        ({"servers": [3]}, TypeError, "host:port"),
        ({"servers": ["h:1", "h:1"]}, ValueError, "must not repeat"),
        ({"servers": ["h:1"], "max_conns_per_server": 0}, ValueError, "max_conns_per_server"),
        ({"servers": ["h:1"], "max_idle_per_server": -1}, ValueError, "max_idle_per_server"),
        ({"servers": ["h:1"], "timeout": 0}, ValueError, "timeout"),
        ({"servers": ["h:1"], "idle_timeout": -1}, ValueError, "idle_timeout"),
        ({"servers": ["h:1"], "pool_timeout": "x"}, TypeError, "pool_timeout"),
        ({"servers": ["h:1"], "pool_timeout": 0}, ValueError, "pool_timeout must be > 0"),
        ({"servers": ["h:1"], "ignore_exc": "yes"}, TypeError, "ignore_exc must be True or False"),
        ({"servers": ["h:1"], "ignore_exc": 1}, TypeError, "ignore_exc must be True or False"),
        ({"servers": ["h:1"], "ignore_exc": None}, TypeError, "ignore_exc must be True or False"),
        ({"servers": ["h:1"], "connect_timeout": -1}, ValueError, "connect_timeout"),
        ({"servers": ["h:1"], "timeout": math.nan}, ValueError, "timeout"),
        ({"servers": ["h:+5"]}, ValueError, "port must be a number"),
        ({"servers": ["[::1"]}, ValueError, "must be '\\[address\\]:port'"),
        ({"servers": ["[::1]5"]}, ValueError, "must be '\\[address\\]:port'"),
        ({"servers": [("h", True)]}, TypeError, "host:port"),
        ({"servers": ["h:1"], "bogus": 1}, TypeError, "bad pymemcache Client argument"),
        ({"servers": ["h:1"], "dead_timeout": 0}, ValueError, "dead_timeout"),
        ({"servers": ["h:1"], "dead_timeout": "60"}, TypeError, "dead_timeout"),
        ({"servers": ["h:1"], "retry_attempts": -1}, ValueError, "retry_attempts"),
        ({"servers": ["h:1"], "retry_timeout": -1}, ValueError, "retry_timeout"),
        ({"servers": ["h:1"], "clock": 5}, TypeError, "clock"),
    ],
)
def test_client_rejects_bad_arguments(
    kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        MemcacheClient(**kwargs)


def test_missing_pymemcache_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymemcache", None)
    monkeypatch.delitem(sys.modules, "poolkit.adapters.memcache")
    with pytest.raises(ImportError, match=r"pip install 'poolkit\[memcache\]'"):
        importlib.import_module("poolkit.adapters.memcache")


def test_connector_refuses_unknown_client_arguments_at_the_call() -> None:
    """A typo used to surface only in the pool's connect thread, as a PoolTimeout."""
    with pytest.raises(TypeError, match=r"bad pymemcache Client argument.*tiemout"):
        MemcacheConnector("127.0.0.1:11211", tiemout=1)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda mc: mc.get(123), TypeError, "key must be a str or bytes"),
        (lambda mc: mc.get(None), TypeError, "key must be a str or bytes"),
        (lambda mc: mc.delete(1.5), TypeError, "key must be a str or bytes"),
        (lambda mc: mc.set("k", b"v", expire=-1), ValueError, "expire must be >= 0"),
        (lambda mc: mc.set("k", b"v", expire=True), TypeError, "expire must be an int"),
        (lambda mc: mc.add("k", b"v", expire="10"), TypeError, "expire must be an int"),
        (lambda mc: mc.touch("k", 1.5), TypeError, "expire must be an int"),
        (lambda mc: mc.set_many({"k": b"v"}, expire=-5), ValueError, "expire must be >= 0"),
        (lambda mc: mc.incr("n", -1), ValueError, "value must be >= 0"),
        (lambda mc: mc.decr("n", "1"), TypeError, "value must be an int"),
        (lambda mc: mc.incr("n", 2**64), ValueError, "value must be <= 2"),
        (lambda mc: mc.set("k", {"a": 1}), TypeError, "value must be bytes, str or int"),
        (lambda mc: mc.set("k", True), TypeError, "value must be bytes, str or int"),
        (lambda mc: mc.replace("k", 1.5), TypeError, "value must be bytes, str or int"),
        (lambda mc: mc.cas("k", object(), b"1"), TypeError, "value must be bytes, str or int"),
        (lambda mc: mc.set_many({"k": [1]}), TypeError, "value must be bytes, str or int"),
        (lambda mc: mc.set_many([("k", b"v")]), TypeError, "values must be a mapping"),
        (lambda mc: mc.set_many({1: b"v"}), TypeError, "key must be a str or bytes"),
        (lambda mc: mc.get_many("abc"), TypeError, "keys must be an iterable of keys"),
        (lambda mc: mc.get_many(["a", 2]), TypeError, "key must be a str or bytes"),
        (lambda mc: mc.delete_many(b"ab"), TypeError, "keys must be an iterable of keys"),
        (lambda mc: mc.server_for(7), TypeError, "key must be a str or bytes"),
    ],
)
@pytest.mark.parametrize("n_servers", [1, 2])
def test_bad_arguments_are_refused_before_a_connection_is_taken(
    memcached_factory: Factory, n_servers: int, call: Any, exc: type[Exception], match: str
) -> None:
    """No silent coercion: a dict stored as its repr, get_many("abc") as three keys, a
    negative expiry stored and dropped at once, True sent as an expiry."""
    servers = [memcached_factory() for _ in range(n_servers)]
    with _client(*servers) as mc:
        with pytest.raises(exc, match=match):
            call(mc)
        assert mc.stats().created == 0


def test_accepted_values_round_trip(memcached_factory: Factory) -> None:
    server = memcached_factory()
    with _client(server) as mc:
        assert mc.set("b", bytearray(b"ba"))
        assert mc.get("b") == b"ba"
        assert mc.set("m", memoryview(b"mv"))
        assert mc.get("m") == b"mv"
        assert mc.set("s", "text")
        assert mc.get("s") == b"text"
        assert mc.set("n", 41)
        assert mc.incr("n", 1) == 42
        assert mc.set_many({"x": b"1", b"y": "2"}) == []
        keys: list[str | bytes] = ["x", b"y"]
        assert mc.get_many(iter(keys)) == {"x": b"1", b"y": b"2"}
    # serde=None is pymemcache's default: values are still checked.
    with (
        _client(server, serde=None) as mc,
        pytest.raises(TypeError, match="value must be bytes, str or int"),
    ):
        mc.set("d", {"a": 1})
    with _client(server, serde=pickle_serde) as mc:  # with a serde, any object it takes
        assert mc.set("d", {"a": [1, 2]})
        assert mc.get("d") == {"a": [1, 2]}


def test_ignore_exc_never_hides_a_bad_call(memcached_factory: Factory) -> None:
    """ignore_exc degrades a failing server to misses, but a bad key is the caller's bug."""
    server = memcached_factory()
    with _client(server, ignore_exc=True) as mc:
        with pytest.raises(mc_errors.MemcacheIllegalInputError):
            mc.set("bad key", b"v")
        with pytest.raises(mc_errors.MemcacheIllegalInputError):
            mc.get("x" * 300)
        assert mc.set("k", b"v") is True
        assert mc.set("big", b"x" * (2 << 20)) is False  # SERVER_ERROR: the server's refusal


@pytest.mark.parametrize("seconds", [1e300, math.inf, 4_294_967.296])
def test_huge_timeouts_mean_no_limit(memcached_factory: Factory, seconds: float) -> None:
    """1e300 raised OverflowError at the first command; 4294967.296 s wrapped to a 0 ms wait."""
    server = memcached_factory()
    with _client(server, timeout=seconds, connect_timeout=seconds, idle_timeout=math.inf) as mc:
        assert mc.set("k", b"v")
        assert mc.get("k") == b"v"
    connector = MemcacheConnector(server.address, timeout=seconds, connect_timeout=seconds)
    client = connector.create()
    assert client.version()
    assert client.sock.gettimeout() is None
    connector.close(client)


@pytest.mark.parametrize("seconds", [1e300, math.inf])
def test_pool_timeouts_of_any_size_wait_for_a_connection(
    memcached_factory: Factory, seconds: float
) -> None:
    """At max_conns_per_server an operation waits however long pool_timeout is."""
    server = memcached_factory()
    with _client(server, max_conns_per_server=1, pool_timeout=seconds) as mc:
        mc.set("k", b"v")
        pool = mc._pools[server.address]
        held = pool.acquire()
        got: list[Any] = []
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                got.append(mc.get("k"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        eventually(lambda: mc.stats().waiting == 1 or bool(errors), "the operation queued")
        pool.release(held)
        t.join()
        assert (got, errors) == ([b"v"], [])


def test_ring_refuses_bad_servers_and_keys() -> None:
    with pytest.raises(TypeError, match="server label must be a str"):
        HashRing(["a:1", 2])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence of str labels"):
        HashRing("a:1")
    with pytest.raises(TypeError, match="key must be a str or bytes"):
        HashRing(["a:1"]).server_for(3)  # type: ignore[arg-type]


# -- fork: a child never touches its parent's connections --------------------------


def _total_connections(server: MemcachedServer, probe: Client) -> int:
    return int(probe.stats()[b"total_connections"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("ending", ENDINGS)
def test_forked_child_never_touches_the_parents_memcache_connections(
    memcached_factory: Factory, ending: str
) -> None:
    """Held in a with block, held, idle in a MemcacheClient: after the child releases, closes
    and exits, the parent's next command on each of those very sockets succeeds; the
    server saw exactly the parent's three and the child's two connections."""
    server = memcached_factory()
    probe = Client(server.address, timeout=TIMEOUT)
    before = _total_connections(server, probe)
    result = run("memcache", f"{server.address[0]}:{server.address[1]}", ending)
    assert result["child"] == 0, result["stderr"]
    assert result["stderr"] == ""  # nothing raised or warned in a finalizer at the child's exit
    assert result["answers"] == {"A": "A", "B": "B", "C": "C"}
    assert result["same_connections"]
    assert (result["created"], result["closed"]) == (3, 0)
    assert _total_connections(server, probe) - before == 5
    probe.close()


def _key_on(mc: MemcacheClient, server: MemcachedServer, prefix: str) -> str:
    return next(
        k for k in (f"{prefix}{i}" for i in range(10_000)) if mc.server_for(k) == server.address
    )


def test_dead_server_is_ejected_its_keys_go_to_the_live_one_and_it_is_retried_after(
    memcached_factory: Factory,
) -> None:
    """pymemcache HashClient dead_timeout / retry_attempts / retry_timeout, on a fake clock."""
    dying, live = memcached_factory(), memcached_factory()
    clock = FakeClock()
    mc = _client(dying, live, dead_timeout=60, retry_attempts=1, retry_timeout=1, clock=clock)
    with mc:
        moved, stays = _key_on(mc, dying, "moved"), _key_on(mc, live, "stays")
        assert mc.set(moved, b"1")
        assert mc.set(stays, b"2")
        dying.kill()
        with pytest.raises((OSError, mc_errors.MemcacheUnexpectedCloseError)):
            mc.get(moved)  # first failure: the server is given retry_timeout
        with pytest.raises(ServerDown, match="retry_timeout"):
            mc.get(moved)  # failed too recently: not tried, fails fast
        clock.advance(1.5)
        with pytest.raises((OSError, mc_errors.MemcacheUnexpectedCloseError)):
            mc.get(moved)  # retry_attempts=1 more failure: ejected
        assert mc.ejected_servers == [dying.address]
        # Its keys now go to the live server (a miss at first), the others stay.
        assert mc.server_for(moved) == live.address
        assert mc.get(moved) is None
        assert mc.set(moved, b"moved") is True
        direct = Client(live.address, timeout=TIMEOUT)
        assert direct.get(moved) == b"moved"
        direct.close()
        assert mc.get(stays) == b"2"
        # dead_timeout over, still dead: tried once and ejected again at once.
        clock.advance(61)
        assert mc.server_for(moved) == dying.address
        with pytest.raises((OSError, mc_errors.MemcacheUnexpectedCloseError)):
            mc.get(moved)
        assert mc.server_for(moved) == live.address
        # Back up: after dead_timeout the server is in the ring again and serves its keys.
        dying.start()
        clock.advance(61)
        assert mc.server_for(moved) == dying.address
        assert mc.set(moved, b"home") is True
        assert mc.get(moved) == b"home"
        assert mc.ejected_servers == []


def test_ejection_with_ignore_exc_turns_failures_into_misses(memcached_factory: Factory) -> None:
    dying, live = memcached_factory(), memcached_factory()
    clock = FakeClock()
    mc = _client(dying, live, dead_timeout=60, retry_attempts=0, ignore_exc=True, clock=clock)
    with mc:
        key = _key_on(mc, dying, "k")
        dying.kill()
        assert mc.get(key, b"miss") == b"miss"  # retry_attempts=0: ejected on this failure
        assert mc.set(key, b"v") is True  # now on the live server
        assert mc.get(key) == b"v"


def test_every_server_ejected_raises_server_down(memcached_factory: Factory) -> None:
    only = memcached_factory()
    mc = _client(only, dead_timeout=60, retry_attempts=0, clock=FakeClock())
    with mc:
        only.kill()
        with pytest.raises((OSError, mc_errors.MemcacheUnexpectedCloseError)):
            mc.get("k")
        with pytest.raises(ServerDown, match="every memcached server is ejected"):
            mc.get("k")


# What a command may raise while the server is down or restarting: the
# connection refused, or cut mid-command. Anything else is a failure.
DOWNTIME_ERRORS = (OSError, mc_errors.MemcacheUnexpectedCloseError)


def test_stress_threads_through_two_restarts_get_only_their_own_values(
    memcached_factory: Factory,
) -> None:
    """Six threads set and read their own keys while memcached restarts twice.

    Nothing crosses over: every read answers the thread's own last stored
    value or a miss (a restart empties the cache), never another key's value
    or a reply out of step; a command fails only with a downtime error; and
    once the server is back, every thread's first set and get succeed.
    """
    server = memcached_factory()
    threads_n, stop = 6, threading.Event()
    problems: list[str] = []
    done = [0] * threads_n
    mc = _client(server, max_conns_per_server=8, max_idle_per_server=8)

    def hammer(i: int) -> None:
        key, stored, n = f"t{i}", None, 0
        while not stop.is_set():
            n += 1
            value = f"{i}:{n}".encode()
            try:
                if mc.set(key, value):
                    stored = value
                got = mc.get(key)
            except DOWNTIME_ERRORS:
                continue
            except Exception as exc:
                problems.append(f"thread {i}: {exc!r}")
                return
            if got not in (stored, None):
                problems.append(f"thread {i} read {got!r}, its last value was {stored!r}")
                return
            done[i] += 1

    with mc:
        workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads_n)]
        for worker in workers:
            worker.start()
        try:
            for restart in range(3):
                base = list(done)

                def fifty_more(base: list[int] = base) -> bool:
                    return all(d - b >= 50 for d, b in zip(done, base, strict=True))

                eventually(fifty_more, "every thread through 50 more pairs")
                if restart < 2:
                    server.kill()
                    server.start()
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        assert problems == []
        # Back up: idle connections of the old server may still sit in the
        # pool; each thread's first commands still succeed.
        results: list[object] = []

        def once(i: int) -> None:
            results.append((mc.set(f"u{i}", b"x"), mc.get(f"u{i}")))

        for _ in range(2):
            server.kill()
            server.start()
            finals = [threading.Thread(target=once, args=(i,)) for i in range(threads_n)]
            for final in finals:
                final.start()
            for final in finals:
                final.join(30)
        assert results == [(True, b"x")] * (2 * threads_n)
        stats = mc.stats()
        assert (stats.in_use, stats.waiting) == (0, 0)
        assert stats.total <= 8


def test_a_probe_that_raises_drops_the_connection_as_the_pool_check_does(
    memcached_factory: Factory,
) -> None:
    """A command that needs the probe treats a probe error as a failed check.

    A ConnectionPool's checkout check does (its ``check`` raising means
    check_failed); MemcacheClient's own probe for ``add`` keeps that rule:
    the connection is dropped and the command runs on a new one.
    """

    class RaisingProbe:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def alive(self) -> bool:
            raise RuntimeError("probe failed")

    server = memcached_factory()
    with _client(server) as mc:
        pool = mc._pools[server.address]
        proxy = pool.acquire()
        assert proxy.raw.version()  # connects
        proxy.raw._poolkit_probe = RaisingProbe(proxy.raw.sock)
        pool.release(proxy)
        assert mc.add("k", b"v") is True
        stats = mc.stats()
        assert (stats.closed_by_reason["check_failed"], stats.created) == (1, 2)
