"""bpool equivalents: BoundedBufferPool, SizedBufferPool, BytesPool."""

from __future__ import annotations

import threading

import pytest

from poolkit import ByteBuffer, ReleaseError
from poolkit.buffers import BoundedBufferPool, BoundedPoolStats, BytesPool, SizedBufferPool

# -- BoundedBufferPool (bpool NewBufferPool) ------------------------------------


def test_bounded_get_on_empty_allocates_empty_buffer() -> None:
    """NewBufferPool: Get on an empty pool returns a new, empty buffer."""
    pool = BoundedBufferPool(2)
    buf = pool.get()
    assert (len(buf), buf.capacity) == (0, 0)
    assert pool.stats().misses == 1


def test_bounded_put_resets_and_reuses_fifo() -> None:
    """Put resets; Get reuses the coldest (first returned) buffer, like a channel."""
    pool = BoundedBufferPool(2)
    a, b = pool.get(), pool.get()
    a.write(b"aaa")
    pool.put(a)
    pool.put(b)
    first = pool.get()
    assert first is a
    assert len(first) == 0


def test_bounded_put_when_full_drops() -> None:
    """Put into a full pool drops the buffer (never blocks)."""
    pool = BoundedBufferPool(1)
    a, b = pool.get(), pool.get()
    pool.put(a)
    pool.put(b)
    stats = pool.stats()
    assert (stats.idle, stats.dropped) == (1, 1)


def test_bounded_num_pooled() -> None:
    """NumPooled: how many buffers wait in the pool."""
    pool = BoundedBufferPool(3)
    bufs = [pool.get() for _ in range(2)]
    for buf in bufs:
        pool.put(buf)
    assert pool.num_pooled() == 2
    assert pool.size == 3


def test_bounded_double_and_foreign_put_raise() -> None:
    """A double put or a buffer from elsewhere raises ReleaseError."""
    pool = BoundedBufferPool(3)
    buf = pool.get()
    pool.put(buf)
    with pytest.raises(ReleaseError, match="returned twice"):
        pool.put(buf)
    with pytest.raises(ReleaseError, match="made by hand"):
        pool.put(ByteBuffer())


def test_bounded_live_view_is_not_kept() -> None:
    """A buffer returned with a live view is not reused."""
    pool = BoundedBufferPool(3)
    buf = pool.get()
    buf.write(b"x")
    view = buf.view()
    pool.put(buf)
    assert (pool.num_pooled(), pool.stats().refused) == (0, 1)
    view.release()


@pytest.mark.parametrize(
    ("make", "exc", "name"),
    [
        (lambda: BoundedBufferPool(-1), ValueError, "size"),
        (lambda: BoundedBufferPool("4"), TypeError, "size"),  # type: ignore[arg-type]
        (lambda: SizedBufferPool(2, -1), ValueError, "alloc"),
        (lambda: SizedBufferPool(None, 10), TypeError, "size"),  # type: ignore[arg-type]
        (lambda: BytesPool(2, 0), ValueError, "width"),
        (lambda: BytesPool(2, 1.5), TypeError, "width"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_name_the_parameter(make: object, exc: type[Exception], name: str) -> None:
    """Bad sizes raise a clear error naming the parameter."""
    assert callable(make)
    with pytest.raises(exc, match=name):
        make()


# -- SizedBufferPool (bpool NewSizedBufferPool) -----------------------------------


def test_sized_new_buffers_have_alloc_capacity() -> None:
    """NewSizedBufferPool: new buffers start with alloc bytes of capacity."""
    pool = SizedBufferPool(2, 512)
    assert pool.get().capacity == 512
    assert pool.alloc == 512


def test_sized_grown_buffer_gets_fresh_alloc_storage() -> None:
    """A buffer grown past alloc is kept with fresh alloc-sized storage."""
    pool = SizedBufferPool(2, 512)
    buf = pool.get()
    buf.write(b"g" * 10_000)
    pool.put(buf)
    again = pool.get()
    assert again is buf
    assert (again.capacity, len(again)) == (512, 0)
    assert pool.stats().replaced == 1


def test_sized_no_replacement_allocated_when_full() -> None:
    """When the pool is full, a grown buffer is dropped without allocating a replacement."""
    pool = SizedBufferPool(1, 64)
    a, b = pool.get(), pool.get()
    pool.put(a)
    b.write(b"z" * 1000)
    pool.put(b)
    stats = pool.stats()
    assert (stats.idle, stats.dropped, stats.replaced) == (1, 1, 0)
    assert b.capacity > 64  # its storage was not replaced


def test_sized_keeps_buffers_within_alloc() -> None:
    """A buffer within alloc is kept as is."""
    pool = SizedBufferPool(1, 64)
    buf = pool.get()
    buf.write(b"ok")
    pool.put(buf)
    assert pool.get() is buf
    assert pool.stats().replaced == 0


# -- BytesPool (bpool NewBytePool) --------------------------------------------------


def test_bytes_get_returns_width_bytearray() -> None:
    """NewBytePool: Get returns a bytearray of exactly width bytes; Width() reports it."""
    pool = BytesPool(2, 4096)
    buf = pool.get()
    assert (type(buf), len(buf), pool.width) == (bytearray, 4096, 4096)


def test_bytes_put_then_get_reuses() -> None:
    """A put array is handed out again (FIFO)."""
    pool = BytesPool(2, 16)
    a, b = pool.get(), pool.get()
    assert pool.put(a)
    assert pool.put(b)
    assert pool.get() is a
    assert pool.num_pooled() == 1


def test_bytes_rejects_too_small_and_too_large() -> None:
    """Too-small arrays are refused (as bpool does) and too-large ones too (bpool keeps them)."""
    pool = BytesPool(4, 16)
    assert not pool.put(bytearray(8))
    assert not pool.put(bytearray(1 << 20))
    stats = pool.stats()
    assert (stats.idle, stats.refused) == (0, 2)


def test_bytes_full_pool_drops() -> None:
    """Put into a full BytesPool drops the array."""
    pool = BytesPool(1, 8)
    assert pool.put(bytearray(8))
    assert not pool.put(bytearray(8))
    assert pool.stats().dropped == 1


def test_bytes_refused_array_comes_back_untouched() -> None:
    """An array the pool refuses (full, or the lock busy) keeps every byte as it was."""
    pool = BytesPool(1, 8)
    assert pool.put(bytearray(8))
    refused = bytearray(b"payload!")
    assert not pool.put(refused)
    assert refused == bytearray(b"payload!")
    with pool._lock:  # another thread inside the pool: put drops without waiting
        busy = bytearray(b"\xffnot-me\xab")
        assert not pool.put(busy)
    assert busy == bytearray(b"\xffnot-me\xab")


def test_bytes_kept_array_keeps_its_contents() -> None:
    """Contents are not cleared between users (bpool), and not altered either."""
    pool = BytesPool(1, 4)
    assert pool.put(bytearray(b"abcd"))
    assert pool.get() == bytearray(b"abcd")


def test_bytes_double_put_raises() -> None:
    """Returning one array twice raises ReleaseError (it would reach two holders)."""
    pool = BytesPool(2, 8)
    buf = pool.get()
    pool.put(buf)
    with pytest.raises(ReleaseError, match="returned twice"):
        pool.put(buf)
    assert pool.num_pooled() == 1


def test_bytes_wrong_type_raises() -> None:
    """Putting bytes (immutable) or anything but a bytearray raises ReleaseError."""
    with pytest.raises(ReleaseError, match="bytearray"):
        BytesPool(2, 8).put(bytes(8))  # type: ignore[arg-type]


def test_bytes_live_export_is_not_kept() -> None:
    """An array with a live memoryview is not kept."""
    pool = BytesPool(2, 8)
    buf = pool.get()
    view = memoryview(buf)
    assert not pool.put(buf)
    view.release()
    assert pool.put(buf)


def test_stats_and_repr() -> None:
    """stats() is a frozen snapshot; repr shows live state."""
    pool = BytesPool(3, 8)
    pool.put(pool.get())
    stats = pool.stats()
    assert isinstance(stats, BoundedPoolStats)
    assert (stats.idle, stats.max_idle, stats.misses, stats.kept) == (1, 3, 1, 1)
    assert "pooled=1/3" in repr(pool)
    assert pool.clear() == 1


def test_threads_never_share_a_buffer() -> None:
    """Many threads on one BoundedBufferPool: no buffer is held twice."""
    pool = BoundedBufferPool(4)
    holders: set[int] = set()
    guard = threading.Lock()
    errors: list[str] = []
    start = threading.Event()

    def worker() -> None:
        start.wait()
        for _ in range(1000):
            buf = pool.get()
            with guard:
                if id(buf) in holders:
                    errors.append("held twice")
                holders.add(id(buf))
            buf.write(b"w")
            with guard:
                holders.discard(id(buf))
            pool.put(buf)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    assert errors == []
    assert pool.num_pooled() <= 4


def test_bytes_pool_threads_never_share_an_array() -> None:
    """Many threads on one BytesPool: no array is held twice, at most size idle."""
    pool = BytesPool(3, 64)
    holders: set[int] = set()
    guard = threading.Lock()
    errors: list[str] = []
    start = threading.Event()

    def worker(tag: int) -> None:
        start.wait()
        for _ in range(1000):
            arr = pool.get()
            with guard:
                if id(arr) in holders:
                    errors.append("held twice")
                holders.add(id(arr))
            arr[0] = tag
            if arr[0] != tag:
                errors.append("changed under its holder")
            with guard:
                holders.discard(id(arr))
            pool.put(arr)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    assert errors == []
    assert pool.num_pooled() <= 3
