"""Proxy reuse: a released proxy that nothing else refers to serves the next lease.

Reuse must never weaken the proxy's rules: a proxy a caller (or a cursor
guard, a lease, a weak reference) still refers to after its give-back stays
detached for good, a proxy dropped while leased is still reported as a leak,
and a proxy class that could carry state between leases is never reused.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    ConnectionDetached,
    ConnectionPool,
    LeakWarning,
    ReleaseError,
)
from poolkit.connections import PooledConnection
from poolkit.connections._proxy import SOLE_REFS, reusable_class
from poolkit.testing import AsyncFakeConnector, FakeConnection, FakeConnector

needs_refcounts = pytest.mark.skipif(
    SOLE_REFS < 0, reason="no exact reference counts here: proxies are never reused"
)


def make(**kw: Any) -> ConnectionPool[FakeConnection]:
    return ConnectionPool(FakeConnector(), max_size=1, **kw)


@needs_refcounts
def test_a_released_proxy_nothing_refers_to_serves_the_next_lease() -> None:
    pool = make()
    conn = pool.acquire()
    first = id(conn)
    pool.release(conn)
    del conn
    again = pool.acquire()
    assert first == id(again)
    assert not again.released
    assert again.use() == 1
    pool.release(again)
    pool.close()


def test_a_released_proxy_still_held_stays_detached_when_leased_again() -> None:
    pool = make()
    old = pool.acquire()
    pool.release(old)
    new = pool.acquire()  # the same connection (max_size=1), through another proxy
    assert new is not old
    assert new.raw is not None
    assert old.released
    with pytest.raises(ConnectionDetached):
        old.use()
    with pytest.raises(ConnectionDetached):
        _ = old.raw
    with pytest.raises(ReleaseError, match="already released"):
        pool.release(old)
    assert new.use() == 1
    pool.release(new)
    # Given back again, the connection is idle: the old proxy is still detached.
    assert old.released
    with pytest.raises(ConnectionDetached):
        old.use()
    pool.close()


def test_a_released_proxy_held_only_by_a_weak_reference_is_not_reused() -> None:
    pool = make()
    conn = pool.acquire()
    pool.release(conn)
    ref = weakref.ref(conn)
    del conn
    new = pool.acquire()
    old = ref()
    assert old is not new
    if old is not None:
        assert old.released
    pool.release(new)
    pool.close()


def test_a_released_proxy_held_by_a_container_is_not_reused() -> None:
    """What a cursor guard or a finished lease does: it keeps the proxy."""
    pool = make()
    box = [pool.acquire()]
    pool.release(box[0])
    new = pool.acquire()
    assert new is not box[0]
    assert box[0].released
    pool.release(new)
    pool.close()


@needs_refcounts
def test_a_reused_proxy_dropped_while_leased_is_reported_and_closed() -> None:
    pool = make()
    pool.release(pool.acquire())  # its proxy is kept for reuse
    box = [pool.acquire()]
    raw = box[0].raw
    with pytest.warns(LeakWarning, match="garbage-collected without being released"):
        box.clear()
    pool.maintain()
    assert raw.closed
    assert pool.stats().closed_by_reason["dropped"] == 1
    pool.close()


def test_a_reused_proxy_released_twice_raises() -> None:
    pool = make()
    pool.release(pool.acquire())
    conn = pool.acquire()
    pool.release(conn)
    with pytest.raises(ReleaseError, match="already released"):
        pool.release(conn)
    with pytest.raises(ReleaseError, match="already released"):
        pool.discard(conn)
    pool.close()


def test_a_discarded_proxy_is_detached_and_the_next_lease_works() -> None:
    pool = make()
    conn = pool.acquire()
    pool.discard(conn)
    assert conn.released
    del conn
    gc.collect()
    again = pool.acquire()
    assert again.raw.id == 2
    pool.release(again)
    pool.close()


def test_proxy_classes_with_state_of_their_own_are_never_reused() -> None:
    class WithSlot(PooledConnection[Any]):
        __slots__ = ("note",)

    class WithDict(PooledConnection[Any]):
        pass

    class Plain(PooledConnection[Any]):
        __slots__ = ()

    assert not reusable_class(WithSlot)
    assert not reusable_class(WithDict)
    assert reusable_class(Plain) == (SOLE_REFS > 0)


def test_threads_never_share_a_proxy() -> None:
    """Callers that keep their released proxies see them detached, whatever the interleaving."""
    pool = ConnectionPool(FakeConnector(), max_size=2)
    errors: list[BaseException] = []
    rounds = 2_000

    def worker() -> None:
        kept: list[PooledConnection[FakeConnection]] = []
        try:
            for i in range(rounds):
                conn = pool.acquire()
                if any(conn is k for k in kept):
                    raise AssertionError("a proxy still held was handed out again")
                conn.use()
                pool.release(conn)
                if i % 7 == 0:
                    kept.append(conn)  # held past its release
                del conn
            for k in kept:
                if not k.released:
                    raise AssertionError("a held proxy is attached again")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pool.stats().in_use == 0
    pool.close()


@needs_refcounts
def test_async_pool_reuses_released_proxies_and_keeps_held_ones_detached() -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(AsyncFakeConnector(), max_size=1)
        conn = await pool.acquire()
        first = id(conn)
        await pool.release(conn)
        del conn
        conn = await pool.acquire()
        assert id(conn) == first
        await pool.release(conn)
        again = await pool.acquire()
        assert again is not conn
        assert conn.released
        with pytest.raises(ConnectionDetached):
            conn.use()
        await pool.release(again)
        await pool.close()

    asyncio.run(main())
