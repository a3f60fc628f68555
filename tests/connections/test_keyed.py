"""Keyed pools: per-key and global caps, LRU eviction across keys, forgotten keys."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from poolkit import AsyncKeyedConnectionPool, KeyedConnectionPool, PoolTimeout, ReleaseError
from poolkit.testing import AsyncFakeConnector, FakeClock, FakeConnection, FakeConnector


def fakes() -> tuple[dict[str, FakeConnector], Callable[[str], FakeConnector]]:
    made: dict[str, FakeConnector] = {}

    def connector_for(key: str) -> FakeConnector:
        made.setdefault(key, FakeConnector())
        return made[key]

    return made, connector_for


def test_one_sub_pool_per_key_reuses_per_key() -> None:
    """gomemcache: a free list per address."""
    made, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size_per_key=2, timeout=5)
    for key in ("a", "b", "a", "b"):
        with kpool.connection(key) as c:
            c.use()
    assert {k: len(f.connections) for k, f in made.items()} == {"a": 1, "b": 1}
    assert sorted(kpool.keys()) == ["a", "b"]
    assert kpool.stats().idle == 2
    kpool.close()
    assert all(not f.open_connections for f in made.values())


def test_max_size_per_key_queues_per_key_waiters() -> None:
    """net/http MaxConnsPerHost: at the per-key cap, callers wait for that key."""
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size_per_key=1, timeout=5)
    held = kpool.acquire("a")
    with pytest.raises(PoolTimeout):
        kpool.acquire("a", timeout=0)
    with kpool.connection("b"):  # another key is not blocked
        pass
    got: list[int] = []

    def want_a() -> None:
        with kpool.connection("a", timeout=30) as c:
            got.append(c.raw.id)

    t = threading.Thread(target=want_a)
    t.start()
    while kpool.stats_by_key()["a"].waiting < 1:
        threading.Event().wait(0.001)
    kpool.release(held)
    t.join()
    assert got == [1]
    kpool.close(timeout=0)


def test_max_idle_per_key_closes_surplus() -> None:
    """net/http MaxIdleConnsPerHost / gomemcache maxIdleConns."""
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size_per_key=3, max_idle_per_key=1)
    conns = [kpool.acquire("a") for _ in range(3)]
    for c in conns:
        kpool.release(c)
    stats = kpool.stats()
    assert (stats.idle, stats.closed_by_reason["max_idle"]) == (1, 2)
    kpool.close()


def test_global_cap_evicts_the_least_recently_used_idle_of_another_key() -> None:
    clock = FakeClock()
    made, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size=2, clock=clock, timeout=5)
    with kpool.connection("a"):
        pass
    clock.advance(1)
    with kpool.connection("b"):
        pass
    with kpool.connection("c") as c:  # at the global cap: "a" (oldest idle) makes room
        assert c.raw.id == 1
    assert made["a"].connections[0].closed
    assert not made["b"].connections[0].closed
    assert kpool.stats().closed_by_reason["evicted"] == 1
    assert kpool.stats().total <= 2
    kpool.close()


def test_global_max_idle_closes_the_globally_oldest() -> None:
    """net/http MaxIdleConns: idle across hosts is capped, oldest closed first."""
    clock = FakeClock()
    made, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_idle=1, clock=clock)
    with kpool.connection("a"):
        pass
    clock.advance(1)
    with kpool.connection("b"):
        pass
    assert made["a"].connections[0].closed
    assert kpool.stats().idle == 1
    kpool.close()


def test_release_waiting_key_at_global_cap_gets_room() -> None:
    """A connection returned while another key starves at the cap is closed for it."""
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size=1, timeout=30)
    held = kpool.acquire("a")
    got: list[str] = []

    def want_b() -> None:
        with kpool.connection("b"):
            got.append("b")

    t = threading.Thread(target=want_b)
    t.start()
    while kpool.stats().waiting < 1:
        threading.Event().wait(0.001)
    kpool.release(held)
    t.join()
    assert got == ["b"]
    kpool.close()


def test_keys_are_forgotten_when_their_last_connection_closes() -> None:
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory)
    for i in range(50):
        with kpool.connection(f"host-{i}") as c:
            c.discard()
    assert kpool.keys() == []
    kpool.close()


def test_every_way_of_giving_back_forgets_an_emptied_key() -> None:
    """acquire + proxy.discard(), acquire + kpool.discard(), proxy.close() after a
    drain: each settles the keyed pool at once, so no emptied key lingers."""
    made, factory = fakes()
    kpool = KeyedConnectionPool(factory, timeout=5)
    conn = kpool.acquire("a")
    conn.discard()  # the proxy, not the keyed pool
    conn = kpool.acquire("b")
    kpool.discard(conn)
    conn = kpool.acquire("c")
    kpool.drain()  # busy: closed when it comes back
    conn.close()
    assert kpool.keys() == []
    assert all(not f.open_connections for f in made.values())
    with pytest.raises(ReleaseError, match="not acquired from this keyed pool"):
        kpool.discard(object())  # type: ignore[arg-type]
    kpool.close()


def test_async_keyed_discard_forgets_an_emptied_key() -> None:
    async def main() -> None:
        made: dict[str, AsyncFakeConnector] = {}
        kpool: AsyncKeyedConnectionPool[str, FakeConnection] = AsyncKeyedConnectionPool(
            lambda key: made.setdefault(key, AsyncFakeConnector()), timeout=5
        )
        conn = await kpool.acquire("a")
        await conn.discard()
        conn = await kpool.acquire("b")
        await kpool.discard(conn)
        for _ in range(3):  # closes run as tasks; a key holds its slot until then
            await asyncio.sleep(0)
        assert all(not f.open_connections for f in made.values())
        assert kpool.keys() == []
        await kpool.close()

    asyncio.run(main())


def test_foreign_release_and_bad_arguments() -> None:
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory)
    with pytest.raises(ReleaseError, match="not acquired from this keyed pool"):
        kpool.release(object())  # type: ignore[arg-type]
    kpool.close()
    with pytest.raises(ValueError, match="max_size_per_key must be >= 1"):
        KeyedConnectionPool(factory, max_size_per_key=0)
    with pytest.raises(TypeError, match="connector_for_key must be callable"):
        KeyedConnectionPool(3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        KeyedConnectionPool(factory, timeout=-1)
    with pytest.raises(TypeError, match="does not take min_size"):
        KeyedConnectionPool(factory, min_size=1)  # type: ignore[call-overload]


def test_async_keyed_pool_has_the_same_caps() -> None:
    async def main() -> None:
        made: dict[str, AsyncFakeConnector] = {}

        def factory(key: str) -> AsyncFakeConnector:
            return made.setdefault(key, AsyncFakeConnector())

        clock = FakeClock()
        kpool = AsyncKeyedConnectionPool(factory, max_size=2, clock=clock, timeout=5)
        async with kpool.connection("a"):
            pass
        clock.advance(1)
        async with kpool.connection("b"):
            pass
        async with kpool.connection("c") as c:
            assert c.raw.id == 1
        for _ in range(3):
            await asyncio.sleep(0)
        assert made["a"].connections[0].closed
        assert kpool.stats().closed_by_reason["evicted"] == 1
        assert "AsyncKeyedConnectionPool" in repr(kpool)
        await kpool.close()
        assert all(not f.open_connections for f in made.values())

    asyncio.run(main())


def test_idle_conn_timeout_and_close_idle_connections_per_key() -> None:
    """net/http IdleConnTimeout and CloseIdleConnections on a keyed pool."""
    clock = FakeClock()
    made, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_idle_time=90, clock=clock)
    with kpool.connection("a"):
        pass
    clock.advance(91)
    kpool.maintain()
    assert made["a"].connections[0].closed
    assert kpool.keys() == []
    busy = kpool.acquire("b")
    with kpool.connection("c"):
        pass
    kpool.close_idle()
    assert made["c"].connections[0].closed
    assert [c.closed for c in made["b"].connections] == [False]
    kpool.release(busy)
    # Marked by close_idle(), closed on return.
    assert [c.closed for c in made["b"].connections] == [True]
    kpool.close()


def test_keyed_stats_count_creation_waits_apart_from_waits_at_the_limit() -> None:
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory, max_size_per_key=1, timeout=5)
    with kpool.connection("a"):
        pass
    stats = kpool.stats()
    assert (stats.waited, stats.waited_for_create) == (0, 1)
    kpool.close()


def test_async_keyed_close_idle_and_idle_timeout_match_the_sync_pool() -> None:
    """net/http IdleConnTimeout and CloseIdleConnections on the async keyed pool too."""

    async def main() -> None:
        made: dict[str, AsyncFakeConnector] = {}

        def factory(key: str) -> AsyncFakeConnector:
            return made.setdefault(key, AsyncFakeConnector())

        clock = FakeClock()
        kpool = AsyncKeyedConnectionPool(factory, max_idle_time=90, clock=clock, timeout=5)
        async with kpool.connection("a"):
            pass
        clock.advance(91)
        kpool.maintain()
        for _ in range(3):
            await asyncio.sleep(0)
        assert made["a"].connections[0].closed
        assert kpool.keys() == []
        busy = await kpool.acquire("b")
        async with kpool.connection("c"):
            pass
        kpool.close_idle()
        for _ in range(3):
            await asyncio.sleep(0)
        assert made["c"].connections[0].closed
        assert [c.closed for c in made["b"].connections] == [False]
        await kpool.release(busy)
        for _ in range(3):
            await asyncio.sleep(0)
        # Marked by close_idle(), closed on return.
        assert [c.closed for c in made["b"].connections] == [True]
        await kpool.close()

    asyncio.run(main())


def test_keyed_holders_list_busy_connections_across_keys_longest_first() -> None:
    clock = FakeClock()
    _, factory = fakes()
    kpool = KeyedConnectionPool(factory, clock=clock, leak_timeout=100, timeout=5)
    first = kpool.acquire("a")
    clock.advance(5)
    second = kpool.acquire("b")
    clock.advance(1)
    holders = kpool.holders()
    assert [round(h.held_for) for h in holders] == [6, 1]
    assert all(h.thread == threading.current_thread().name for h in holders)
    kpool.release(first)
    kpool.release(second)
    assert kpool.holders() == []
    kpool.close()


def test_async_keyed_holders_list_busy_connections_across_keys_longest_first() -> None:
    async def main() -> None:
        clock = FakeClock()
        kpool: AsyncKeyedConnectionPool[str, FakeConnection] = AsyncKeyedConnectionPool(
            lambda key: AsyncFakeConnector(), clock=clock, leak_timeout=100, timeout=5
        )
        first = await kpool.acquire("a")
        clock.advance(5)
        second = await kpool.acquire("b")
        clock.advance(1)
        holders = kpool.holders()
        assert [round(h.held_for) for h in holders] == [6, 1]
        task = asyncio.current_task()
        assert task is not None
        assert all(h.task == task.get_name() for h in holders)
        await kpool.release(first)
        await kpool.release(second)
        assert kpool.holders() == []
        await kpool.close()

    asyncio.run(main())
