"""A KeyboardInterrupt landing anywhere inside a buffer pool's get or put.

It lands where a thread switch could (see ``tests/interleave.py``): at each of
those points in turn, once. The program catches it and goes on using the
pool, which must still keep its word: its lock let go (returns are kept
again, clear() does not wait), and no stale claim refusing a later return.
"""

from __future__ import annotations

from typing import Any

import pytest

from poolkit import BufferPool
from tests.buffers.test_close import KINDS, Kind
from tests.interleave import interleaved, switch_points


def _interrupt(pool: object) -> None:
    raise KeyboardInterrupt


def _still_works(kind: Kind, pool: Any, at: int) -> None:
    lock = getattr(pool, "_lock", None)  # ObjectPool has none
    assert lock is None or not lock.locked(), f"the lock is still held after point {at}"
    pool.clear()
    for _ in range(3):
        pool.put(kind.take(pool))  # no ReleaseError from a stale claim
    assert kind.idle(pool) == 1, f"a return was dropped after point {at}"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_an_interrupt_at_any_point_of_a_get_and_put_leaves_the_pool_working(name: str) -> None:
    """At every switch point of a get and a put, one KeyboardInterrupt; the pool still works."""
    kind = KINDS[name]

    def step(pool: Any) -> None:
        pool.put(kind.take(pool))

    first = kind.make()
    first.put(kind.take(first))
    points = switch_points(step, first)
    assert points >= 5
    for at in range(1, points + 1):
        pool = kind.make()
        pool.put(kind.take(pool))
        with pytest.raises(KeyboardInterrupt):
            interleaved(step, _interrupt, at, pool)
        _still_works(kind, pool, at)


def test_an_interrupt_at_any_point_of_a_borrow_leaves_the_buffer_pool_working() -> None:
    """The same for BufferPool's borrow (its own take and return paths)."""

    def step(pool: BufferPool) -> None:
        with pool.borrow(1000) as view:
            view[0] = 1

    kind = KINDS["BufferPool"]
    points = switch_points(step, kind.make())
    for at in range(1, points + 1):
        pool = kind.make()
        with pytest.raises(KeyboardInterrupt):
            interleaved(step, _interrupt, at, pool)
        _still_works(kind, pool, at)


def test_an_interrupt_in_a_put_probe_hands_the_buffer_back_as_it_came() -> None:
    """put() cut short at its export probe: the caller's buffer keeps its length, unclaimed."""
    pool = BufferPool(1024, 8192)
    buf = pool.get(1024)

    def step(pool: BufferPool) -> None:
        pool.put(buf)

    for at in range(1, switch_points(step, pool) + 1):
        pool = BufferPool(1024, 8192)
        buf = pool.get(1024)
        try:
            interleaved(step, _interrupt, at, pool)
        except KeyboardInterrupt:
            assert len(buf) == 1024, at
            if pool.stats().idle == 0:  # not filed: the caller may put it back
                pool.put(buf)
        assert pool.stats().idle == 1, at
