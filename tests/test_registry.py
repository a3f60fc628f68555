"""poolkit.pools(): every pool has a name and lists itself while it lives and is open."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest

import poolkit
from poolkit.buffers import BoundedBufferPool, BytesPool, SizedBufferPool
from poolkit.testing import AsyncFakeConnector, FakeConnector


def _listed(pool: object) -> bool:
    return any(p is pool for p in poolkit.pools())


def _close(pool: Any) -> None:
    close = getattr(pool, "aclose", None) or pool.close
    result = close()
    if asyncio.iscoroutine(result):
        asyncio.run(result)


# Each family's pools, made with and without a name.
MAKERS: dict[str, Callable[..., Any]] = {
    "ConnectionPool": lambda **kw: poolkit.ConnectionPool(FakeConnector(), **kw),
    "AsyncConnectionPool": lambda **kw: poolkit.AsyncConnectionPool(AsyncFakeConnector(), **kw),
    "KeyedConnectionPool": lambda **kw: poolkit.KeyedConnectionPool(
        lambda key: FakeConnector(), **kw
    ),
    "AsyncKeyedConnectionPool": lambda **kw: poolkit.AsyncKeyedConnectionPool(
        lambda key: AsyncFakeConnector(), **kw
    ),
    "WorkerPool": lambda **kw: poolkit.WorkerPool(1, **kw),
    "AsyncWorkerPool": lambda **kw: poolkit.AsyncWorkerPool(1, **kw),
    "ProcessPool": lambda **kw: poolkit.ProcessPool(1, **kw),
    "ObjectPool": lambda **kw: poolkit.ObjectPool(list, **kw),
    "BufferPool": lambda **kw: poolkit.BufferPool(**kw),
    "ByteBufferPool": lambda **kw: poolkit.ByteBufferPool(**kw),
    "BoundedBufferPool": lambda **kw: BoundedBufferPool(2, **kw),
    "SizedBufferPool": lambda **kw: SizedBufferPool(2, 64, **kw),
    "BytesPool": lambda **kw: BytesPool(2, 8, **kw),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_pool_gets_a_generated_name_and_is_listed_until_closed(kind: str) -> None:
    pool = MAKERS[kind]()
    try:
        prefix, _, number = pool.name.rpartition("-")
        assert prefix == kind
        assert number.isdigit()
        assert _listed(pool)
    finally:
        _close(pool)
    assert not _listed(pool)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_given_name_is_kept(kind: str) -> None:
    pool = MAKERS[kind](name=f"orders-{kind}")
    try:
        assert pool.name == f"orders-{kind}"
        if "Buffer" not in kind and kind not in ("ObjectPool", "BytesPool"):
            assert f"orders-{kind}" in repr(pool)
    finally:
        _close(pool)


@pytest.mark.parametrize("kind", ["ConnectionPool", "WorkerPool", "ObjectPool", "BytesPool"])
@pytest.mark.parametrize(("bad", "error"), [(3, TypeError), ("", ValueError)])
def test_a_bad_name_is_refused_naming_the_parameter(
    kind: str, bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="name"):
        MAKERS[kind](name=bad)


def test_generated_names_count_per_kind() -> None:
    first: Any = poolkit.ObjectPool(list)
    second: Any = poolkit.ObjectPool(list)
    n1 = int(first.name.rpartition("-")[2])
    assert second.name == f"ObjectPool-{n1 + 1}"


def test_the_registry_keeps_no_pool_alive() -> None:
    pool: Any = poolkit.ObjectPool(list, name="short-lived")
    assert _listed(pool)
    del pool
    gc.collect()
    assert "short-lived" not in [p.name for p in poolkit.pools()]


def test_a_keyed_pool_is_listed_once_not_per_key() -> None:
    kpool: Any = poolkit.KeyedConnectionPool(lambda key: FakeConnector(), name="kv")
    with kpool as pool:
        for key in ("a", "b"):
            with pool.connection(key):
                pass
        assert [p.name for p in poolkit.pools()].count("kv") == 1
        assert "kv" in repr(pool)


def test_registering_from_many_threads_loses_no_pool() -> None:
    made: list[poolkit.ObjectPool[Any]] = []
    lock = threading.Lock()

    def make() -> None:
        for _ in range(200):
            pool: Any = poolkit.ObjectPool(list)
            with lock:
                made.append(pool)
            poolkit.pools()  # listing while others register

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = {id(p) for p in poolkit.pools()}
    assert all(id(p) in listed for p in made)
    assert len({p.name for p in made}) == len(made)
