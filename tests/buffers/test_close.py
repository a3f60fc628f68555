"""close() on every buffer pool: idle buffers go, get raises PoolClosed, late returns drop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from poolkit import BufferPool, ByteBufferPool, ObjectPool, PoolClosed
from poolkit.buffers import BoundedBufferPool, BytesPool, SizedBufferPool
from tests.interleave import interleaved, switch_points


@dataclass(frozen=True)
class Kind:
    """How to make one kind of pool, take a buffer from it and count its idle buffers."""

    make: Callable[[], Any]
    take: Callable[[Any], Any]
    idle: Callable[[Any], int]


KINDS = {
    "BufferPool": Kind(
        lambda: BufferPool(1024, 8192),
        lambda pool: pool.get(1000),
        lambda pool: pool.stats().idle,
    ),
    "ByteBufferPool": Kind(ByteBufferPool, lambda pool: pool.get(), lambda pool: pool.stats().idle),
    "BoundedBufferPool": Kind(
        lambda: BoundedBufferPool(4), lambda pool: pool.get(), lambda pool: pool.num_pooled()
    ),
    "SizedBufferPool": Kind(
        lambda: SizedBufferPool(4, 64), lambda pool: pool.get(), lambda pool: pool.num_pooled()
    ),
    "BytesPool": Kind(
        lambda: BytesPool(4, 64), lambda pool: pool.get(), lambda pool: pool.num_pooled()
    ),
    "ObjectPool": Kind(lambda: ObjectPool(list), lambda pool: pool.get(), len),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def test_close_releases_idle_buffers_and_get_raises_pool_closed(kind: Kind) -> None:
    """After close() nothing is idle and get() raises PoolClosed, not a fresh buffer."""
    pool = kind.make()
    pool.put(kind.take(pool))
    assert kind.idle(pool) == 1
    pool.close()
    assert kind.idle(pool) == 0
    with pytest.raises(PoolClosed, match="closed"):
        kind.take(pool)


def test_a_buffer_returned_after_close_is_dropped_without_error(kind: Kind) -> None:
    """A holder giving back late is not an error: the buffer is dropped, not kept."""
    pool = kind.make()
    held = kind.take(pool)
    pool.close()
    pool.put(held)
    assert kind.idle(pool) == 0


def test_with_block_closes_the_pool_and_close_is_idempotent(kind: Kind) -> None:
    """Leaving `with pool:` closes it; a second close() changes nothing."""
    with kind.make() as pool:
        pool.put(kind.take(pool))
    assert kind.idle(pool) == 0
    pool.close()
    with pytest.raises(PoolClosed):
        kind.take(pool)


def _take_then_put(kind: Kind) -> Callable[[Any], object]:
    return lambda pool: pool.put(kind.take(pool))


@pytest.mark.parametrize("call", ["close", "clear", "stats"])
def test_a_handler_calling_the_pool_inside_its_get_or_put_returns(kind: Kind, call: str) -> None:
    """close(), clear() or stats() run at any switch point of a get and put on the same thread.

    That is where a signal handler or a finalizer runs. The interrupted call
    may hold the pool's lock there and cannot go on until the handler
    returns, so the pool must not wait for its lock for good: each call
    returns at once, and the pool keeps its word afterwards.
    """
    step = _take_then_put(kind)
    first = kind.make()
    first.put(kind.take(first))
    for at in range(1, switch_points(step, first) + 1):
        pool = kind.make()
        pool.put(kind.take(pool))
        started = time.monotonic()
        # A get that finds the pool closed by then raises, as it should.
        with contextlib.suppress(PoolClosed):
            interleaved(step, lambda pool: getattr(pool, call)(), at, pool)
        assert time.monotonic() - started < 2.0, at
        if call == "close":
            # The interrupted put may still file its buffer; nothing else is kept.
            assert kind.idle(pool) <= 1, at
            with contextlib.suppress(PoolClosed):
                kind.take(pool)  # may be that one buffer
            with pytest.raises(PoolClosed):
                kind.take(pool)
        else:
            assert kind.idle(pool) <= 1, at
            # The lock was let go: a return is kept and taken again.
            pool.clear()
            pool.put(kind.take(pool))
            assert kind.idle(pool) == 1, at


def test_buffer_pool_borrow_after_close_raises_on_entry() -> None:
    """borrow() after close() raises PoolClosed when the with block is entered."""
    pool = BufferPool(1024, 8192)
    pool.close()
    loan = pool.borrow(100)
    with pytest.raises(PoolClosed), loan:
        pass


@pytest.mark.parametrize("n", [100, 5000, 100_000], ids=["smallest", "class", "oversize"])
def test_buffer_pool_get_after_close_raises_for_every_size(n: int) -> None:
    """A request below, within and above the classes all raise once the pool is closed."""
    pool = BufferPool(1024, 8192)
    pool.close()
    with pytest.raises(PoolClosed):
        pool.get(n)
    assert pool.stats().oversize == 0


@pytest.mark.parametrize(
    "options", [{}, {"zero": True}, {"max_idle_time": 60.0}, {"max_idle_per_class": 2}]
)
def test_buffer_pool_loan_open_across_close_is_dropped_on_exit(options: dict[str, Any]) -> None:
    """A with pool.borrow() block that outlives close() drops its buffer, counted."""
    pool = BufferPool(1024, 8192, **options)
    with pool.borrow(3000) as view:
        pool.close()
        view[:3] = b"abc"
    stats = pool.stats()
    assert (stats.idle, stats.dropped_closed, stats.kept) == (0, 1, 0)


def test_buffer_pool_put_after_close_counts_dropped_closed() -> None:
    """put() after close() drops the buffer and counts it in dropped_closed."""
    pool = BufferPool(1024, 8192)
    buf = pool.get(1000)
    pool.close()
    pool.put(buf)
    assert (pool.stats().dropped_closed, pool.stats().idle) == (1, 0)
    assert "closed" in repr(pool)


def test_byte_buffer_pool_put_after_close_counts_dropped_closed() -> None:
    """ByteBufferPool: a late put is counted in dropped_closed, not kept."""
    pool = ByteBufferPool()
    buf = pool.get()
    pool.close()
    pool.put(buf)
    stats = pool.stats()
    assert (stats.dropped_closed, stats.kept, stats.idle) == (1, 0, 0)


def test_byte_buffer_pool_get_with_its_lock_held_still_raises_after_close() -> None:
    """The contended path of get() (lock busy: allocate) does not bypass close()."""
    pool = ByteBufferPool()
    pool.close()
    with pool._lock, pytest.raises(PoolClosed):  # the lock: another thread inside the pool
        pool.get()
    assert pool.stats().contended_gets == 1


def test_bounded_pools_count_a_put_after_close_as_dropped() -> None:
    """bpool types: a late put is dropped (stats().dropped); BytesPool.put says False."""
    bounded = BoundedBufferPool(2)
    buf = bounded.get()
    bounded.close()
    bounded.put(buf)
    assert (bounded.stats().dropped, bounded.stats().kept) == (1, 0)
    arrays = BytesPool(2, 8)
    array = arrays.get()
    arrays.close()
    assert arrays.put(array) is False
    assert arrays.stats().dropped == 1


def test_sized_pool_makes_no_replacement_storage_after_close() -> None:
    """SizedBufferPool does not allocate fresh storage for a grown buffer it will drop."""
    pool = SizedBufferPool(2, 16)
    buf = pool.get()
    buf.write(b"x" * 100)
    pool.close()
    pool.put(buf)
    assert (pool.stats().replaced, pool.stats().dropped) == (0, 1)
