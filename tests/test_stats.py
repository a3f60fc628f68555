"""One stats vocabulary: to_dict() on every snapshot, name and family, deprecated old names."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import poolkit
from tests.test_registry import MAKERS

# Family of each pool's stats (the logger is poolkit.<family>).
FAMILY = {
    "ConnectionPool": "connections",
    "AsyncConnectionPool": "connections",
    "KeyedConnectionPool": "connections",
    "AsyncKeyedConnectionPool": "connections",
    "WorkerPool": "workers",
    "AsyncWorkerPool": "workers",
    "ProcessPool": "processes",
}


def _close(pool: Any) -> None:
    close = getattr(pool, "aclose", None) or pool.close
    result = close()
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_to_dict_is_json_ready_and_names_the_pool_and_family(kind: str) -> None:
    pool = MAKERS[kind](name=f"pool-{kind}")
    try:
        data = pool.stats().to_dict()
    finally:
        _close(pool)
    assert json.loads(json.dumps(data)) == data
    assert data["name"] == f"pool-{kind}"
    assert data["family"] == FAMILY.get(kind, "buffers")


# (stats class's home, class, old name, new name)
RENAMES = [
    ("poolkit.connections", "ConnectionPoolStats", "size", "total"),
    ("poolkit.workers", "WorkerPoolStats", "idle_workers", "idle"),
    ("poolkit.workers", "WorkerPoolStats", "blocked", "waiting"),
    ("poolkit.workers", "WorkerPoolStats", "dropped", "overloads"),
    ("poolkit.buffers", "ObjectPoolStats", "puts", "returned"),
    ("poolkit.buffers", "ObjectPoolStats", "dropped_overflow", "evicted"),
    ("poolkit.buffers", "ObjectPoolStats", "dropped_aged", "expired"),
    ("poolkit.buffers", "BufferPoolStats", "returns", "kept"),
    ("poolkit.buffers", "BufferPoolStats", "aged", "expired"),
    ("poolkit.buffers", "BufferPoolStats", "idle_buffers", "idle"),
    ("poolkit.buffers", "ByteBufferPoolStats", "dropped", "dropped_by_accept"),
    ("poolkit.buffers", "ByteBufferPoolStats", "dropped_exported", "dropped_in_use"),
    ("poolkit.buffers", "ByteBufferPoolStats", "default_size", "default_buffer_size"),
    ("poolkit.buffers", "ByteBufferPoolStats", "max_size", "max_buffer_size"),
    ("poolkit.buffers", "BoundedPoolStats", "pooled", "idle"),
    ("poolkit.buffers", "BoundedPoolStats", "size", "max_idle"),
    ("poolkit.buffers", "BoundedPoolStats", "rejected", "refused"),
]
# A pool whose stats are of each class.
STATS_OF = {
    "ConnectionPoolStats": "ConnectionPool",
    "WorkerPoolStats": "WorkerPool",
    "ObjectPoolStats": "ObjectPool",
    "BufferPoolStats": "BufferPool",
    "ByteBufferPoolStats": "ByteBufferPool",
    "BoundedPoolStats": "BytesPool",
}


@pytest.mark.parametrize(("home", "cls", "old", "new"), RENAMES)
def test_an_old_field_name_still_reads_the_new_one_with_a_deprecation_warning(
    home: str, cls: str, old: str, new: str
) -> None:
    pool = MAKERS[STATS_OF[cls]]()
    try:
        stats = pool.stats()
    finally:
        _close(pool)
    assert type(stats).__name__ == cls
    with pytest.warns(DeprecationWarning, match=f"{cls}.{old} is renamed {new}"):
        value = getattr(stats, old)
    assert value == getattr(stats, new)
    assert old not in stats.to_dict()


def test_buffer_pools_report_their_hit_ratio() -> None:
    pool = poolkit.BufferPool(name="ratio")
    with pool.borrow(100):
        pass
    with pool.borrow(100):
        pass
    data = pool.stats().to_dict()
    assert (data["hits"], data["misses"], data["hit_ratio"]) == (1, 1, 0.5)


def test_a_keyed_pool_sums_its_keys_under_its_own_name() -> None:
    pool: Any = MAKERS["KeyedConnectionPool"](name="by-host")
    with pool, pool.connection("a"), pool.connection("b"):
        stats = pool.stats()
    assert (stats.name, stats.in_use, stats.total) == ("by-host", 2, 2)
    assert stats.to_dict()["closed_by_reason"]["pool_closed"] == 0
