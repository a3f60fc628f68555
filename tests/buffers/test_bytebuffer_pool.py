"""ByteBufferPool: reuse, calibration (with the high-water fix), bounds, misuse, threads."""

from __future__ import annotations

import sys
import threading

import pytest

from poolkit import ByteBuffer, ByteBufferPool, ReleaseError
from poolkit.buffers import ByteBufferPoolStats, Calibrated, KeepAll, MaxCapacity, Utilization

KIB = 1024
MIB = 1024 * KIB


def test_get_returns_put_buffer_empty_with_capacity() -> None:
    """A put buffer is handed out again by get(), empty, its capacity kept."""
    pool = ByteBufferPool()
    buf = pool.get()
    buf.write(b"x" * 5000)
    capacity = buf.capacity
    pool.put(buf)
    again = pool.get()
    assert again is buf
    assert (0, capacity) == (len(again), again.capacity)


def test_get_is_lifo() -> None:
    """The most recently returned buffer is reused first (cache-warm)."""
    pool = ByteBufferPool()
    a, b = pool.get(), pool.get()
    pool.put(a)
    pool.put(b)
    assert b is pool.get()


def test_borrow_puts_back_even_on_error() -> None:
    """borrow() returns the buffer to the pool when the block raises."""
    pool = ByteBufferPool()
    seen: list[ByteBuffer] = []

    def handler() -> None:
        with pool.borrow() as held:
            seen.append(held)
            held.write(b"partial")
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        handler()
    buf = seen[0]
    assert pool.stats().idle == 1
    with pool.borrow() as again:
        assert again is buf
        assert again.getvalue() == b""


def test_double_put_raises_release_error() -> None:
    """Putting one buffer back twice raises ReleaseError and files it once."""
    pool = ByteBufferPool()
    buf = pool.get()
    pool.put(buf)
    with pytest.raises(ReleaseError, match="returned twice"):
        pool.put(buf)
    assert pool.stats().idle == 1


def test_foreign_buffers_raise_release_error() -> None:
    """A hand-made buffer, another pool's buffer, or a non-buffer is refused."""
    pool, other = ByteBufferPool(), ByteBufferPool()
    with pytest.raises(ReleaseError, match="made by hand"):
        pool.put(ByteBuffer())
    with pytest.raises(ReleaseError, match="another pool"):
        pool.put(other.get())
    with pytest.raises(ReleaseError, match="buf must be a ByteBuffer"):
        pool.put(bytearray(10))  # type: ignore[arg-type]
    assert pool.stats().idle == 0


def test_put_with_live_view_drops_the_buffer() -> None:
    """A buffer returned with a live view() is dropped, never handed to another holder."""
    pool = ByteBufferPool()
    buf = pool.get()
    buf.write(b"secret")
    view = buf.view()
    pool.put(buf)
    stats = pool.stats()
    assert (stats.idle, stats.dropped_in_use) == (0, 1)
    assert pool.get() is not buf
    assert bytes(view) == b"secret"  # the old holder's view still sees its data
    view.release()


def test_new_buffers_start_at_calibrated_default_size() -> None:
    """After calibration, new buffers are allocated with default_size capacity."""
    pool = ByteBufferPool(retention=Calibrated(calibrate_calls=100), max_idle=0)
    for _ in range(101):
        with pool.borrow() as buf:
            buf.write(b"x" * 3000)
    assert (pool.default_size, pool.max_size) == (4096, 4096)
    assert pool.get().capacity == 4096


def test_reset_before_put_does_not_calibrate_down() -> None:
    """Calibration uses the high-water length, so reset() before put() still counts the use.

    The original classifies by length at put: resetting first calibrates it to 64 B.
    """
    pool = ByteBufferPool(retention=Calibrated(calibrate_calls=100))
    for _ in range(101):
        buf = pool.get()
        buf.write(b"y" * 1500)
        buf.reset()
        pool.put(buf)
    stats = pool.stats()
    assert (stats.default_buffer_size, stats.max_buffer_size, stats.calibrations) == (2048, 2048, 1)
    assert stats.idle == 1  # the 2 KiB buffer is still reused


def test_calibration_drops_buffers_above_max_size() -> None:
    """Once calibrated, a returned buffer larger than max_size is dropped."""
    pool = ByteBufferPool(retention=Calibrated(calibrate_calls=50))
    for _ in range(51):
        with pool.borrow() as buf:
            buf.write(b"s" * 100)
    big = pool.get()
    big.write(b"b" * 100_000)
    pool.put(big)
    assert big not in list(pool._idle_buffers())
    assert pool.stats().dropped_by_accept >= 1


class NaivePool:
    """The golang/go#23199 pattern: reset and put back, whatever the size."""

    def __init__(self) -> None:
        self.idle: list[ByteBuffer] = []

    def get(self) -> ByteBuffer:
        return self.idle.pop() if self.idle else ByteBuffer()

    def put(self, buf: ByteBuffer) -> None:
        buf.reset()
        self.idle.append(buf)

    def idle_bytes(self) -> int:
        return sum(b.capacity for b in self.idle)


def test_leak_burst_then_small_stream_releases_big_buffers() -> None:
    """After a burst of 16 MiB buffers and a stream of 1 KiB uses, retained bytes fall.

    A naive reset-and-put-back pool keeps the burst's 48 MiB forever; the
    calibrating pool (bytebufferpool's real constants: 42 000 returns, 95th
    percentile) releases it after calibration and retains about 1 KiB.
    """
    naive = NaivePool()
    pool = ByteBufferPool()  # defaults: Calibrated(), 64 MiB budget
    chunk = b"b" * MIB
    for target in (naive, pool):
        burst = [target.get() for _ in range(3)]
        for buf in burst:
            for _ in range(16):
                buf.write(chunk)
        for buf in burst:
            target.put(buf)
    assert pool.stats().idle_bytes >= 48 * MIB  # the burst fits the budget: kept at first
    small = b"s" * KIB
    for target in (naive, pool):
        for _ in range(45_000):
            buf = target.get()
            buf.write(small)
            target.put(buf)
    assert naive.idle_bytes() >= 48 * MIB
    stats = pool.stats()
    assert stats.calibrations >= 1
    assert stats.idle_bytes <= 4 * KIB
    assert stats.max_buffer_size == 1024


def test_byte_budget_evicts_coldest() -> None:
    """Idle bytes never exceed max_idle_bytes; the coldest buffers go first."""
    pool = ByteBufferPool(retention=KeepAll(), max_idle_bytes=10 * KIB)
    bufs = [pool.get() for _ in range(4)]
    for buf in bufs:
        buf.write(b"z" * (4 * KIB))
        pool.put(buf)
    stats = pool.stats()
    assert (stats.idle, stats.idle_bytes, stats.evicted) == (2, 8 * KIB, 2)
    assert bufs[2:] == list(pool._idle_buffers())


def test_buffer_larger_than_budget_is_never_kept() -> None:
    """A buffer whose capacity alone exceeds max_idle_bytes is not kept."""
    pool = ByteBufferPool(retention=KeepAll(), max_idle_bytes=KIB)
    buf = pool.get()
    buf.write(b"q" * (2 * KIB))
    pool.put(buf)
    assert (pool.stats().idle, pool.stats().idle_bytes) == (0, 0)


def test_max_idle_count_bound() -> None:
    """At most max_idle buffers stay idle."""
    pool = ByteBufferPool(max_idle=3)
    bufs = [pool.get() for _ in range(5)]
    for buf in bufs:
        pool.put(buf)
    assert pool.stats().idle == 3


def test_max_capacity_policy_applies() -> None:
    """retention=MaxCapacity() drops buffers above 64 KiB (the fmt rule)."""
    pool = ByteBufferPool(retention=MaxCapacity())
    buf = pool.get()
    buf.write(b"m" * (65 * KIB))
    pool.put(buf)
    assert (pool.stats().idle, pool.stats().dropped_by_accept) == (0, 1)


def test_utilization_strikes_are_kept_on_the_buffer() -> None:
    """retention=Utilization(): an underused big buffer is dropped after 4 strikes."""
    pool = ByteBufferPool(retention=Utilization())
    buf = pool.get()
    buf.write(b"u" * (64 * KIB))
    pool.put(buf)
    for strike in range(1, 5):
        again = pool.get()
        assert again is buf
        again.write(b"u")  # 1 B of 64 KiB: underused
        pool.put(again)
        assert strike == buf.strikes
    last = pool.get()
    last.write(b"u")
    pool.put(last)
    assert (pool.stats().idle, pool.stats().dropped_by_accept) == (0, 1)


def test_clear_releases_idle_buffers() -> None:
    """clear() releases every idle buffer and returns how many."""
    pool = ByteBufferPool()
    bufs = [pool.get() for _ in range(3)]
    for buf in bufs:
        pool.put(buf)
    assert pool.clear() == 3
    assert (pool.stats().idle, pool.stats().idle_bytes) == (0, 0)


def test_stats_snapshot_and_repr() -> None:
    """stats() is a frozen snapshot; repr shows live counts."""
    pool = ByteBufferPool(max_idle=7)
    buf = pool.get()
    buf.write(b"r" * 100)
    pool.put(buf)
    pool.get()
    stats = pool.stats()
    assert isinstance(stats, ByteBufferPoolStats)
    assert (stats.hits, stats.misses, stats.kept, stats.idle, stats.max_idle) == (1, 1, 1, 0, 7)
    with pytest.raises(AttributeError):
        stats.hits = 5  # type: ignore[misc]
    assert repr(pool) == (
        "<ByteBufferPool | idle 0/7 buffers, 0 B of 64 MiB"
        " | not calibrated yet (every 42000 returns), keeps any size"
        " | hits 1, misses 1, dropped 0>"
    )


def test_repr_shows_the_bytes_held_and_what_calibration_decided() -> None:
    """Before calibration the repr says so (not "max_size=0"); after, the sizes it chose."""
    pool = ByteBufferPool(retention=Calibrated(calibrate_calls=100))
    big = [pool.get() for _ in range(3)]
    for buf in big:
        buf.write(b"x" * (2 << 20))
    for buf in big:
        pool.put(buf)
    assert repr(pool).startswith(
        "<ByteBufferPool | idle 3/256 buffers, 6 MiB of 64 MiB"
        " | not calibrated yet (every 100 returns), keeps any size"
    )
    for _ in range(101):
        buf = pool.get()
        buf.write(b"y" * 1000)
        pool.put(buf)
    assert "calibrated 1x: new buffers 1 KiB, keeps up to 1 KiB" in repr(pool)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"max_idle": -1}, ValueError, "max_idle"),
        ({"max_idle": 1.5}, TypeError, "max_idle"),
        ({"max_idle_bytes": -1}, ValueError, "max_idle_bytes"),
        ({"max_idle_bytes": "64M"}, TypeError, "max_idle_bytes"),
        ({"retention": "calibrated"}, TypeError, "retention"),
        ({"max_idle_time": 0}, ValueError, "max_idle_time"),
        ({"max_idle_time": -1.0}, ValueError, "max_idle_time"),
        ({"max_idle_time": "10s"}, TypeError, "max_idle_time"),
        ({"clock": 5}, TypeError, "clock"),
    ],
)
def test_bad_arguments_name_the_parameter(
    kwargs: dict[str, object], exc: type[Exception], name: str
) -> None:
    """Each bad constructor argument raises a clear error naming it."""
    with pytest.raises(exc, match=name):
        ByteBufferPool(**kwargs)  # type: ignore[arg-type]


def test_contended_lock_never_blocks() -> None:
    """With the pool's lock held elsewhere nothing waits.

    get() takes an idle buffer without the lock; with none idle it allocates
    (a contended get); put() drops (a contended put).
    """
    pool = ByteBufferPool()
    buf = pool.get()
    pool.put(buf)
    pool._lock.acquire()
    try:
        again = pool.get()
        assert again is buf
        fresh = pool.get()
        assert fresh is not buf
        pool.put(fresh)
        pool.put(again)
    finally:
        pool._lock.release()
    stats = pool.stats()
    assert (stats.hits, stats.contended_gets, stats.contended_puts, stats.idle) == (1, 1, 2, 0)


def test_many_threads_never_share_a_buffer() -> None:
    """Under 8 threads of get/write/put, no buffer is held twice and counts add up."""
    pool = ByteBufferPool(max_idle=4)
    holders: set[int] = set()
    guard = threading.Lock()
    errors: list[str] = []
    start = threading.Event()
    rounds, threads = 2000, 8

    def worker(tag: int) -> None:
        start.wait()
        mark = bytes([tag]) * 100
        for _ in range(rounds):
            buf = pool.get()
            with guard:
                if id(buf) in holders:
                    errors.append("buffer handed to two holders")
                holders.add(id(buf))
            buf.write(mark)
            if buf.getvalue() != mark:
                errors.append("buffer content changed under its holder")
            with guard:
                holders.discard(id(buf))
            pool.put(buf)

    pool_threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool_threads:
        t.start()
    start.set()
    for t in pool_threads:
        t.join()
    assert errors == []
    stats = pool.stats()
    assert rounds * threads == stats.hits + stats.misses + stats.contended_gets
    assert stats.idle <= 4
    assert stats.idle == stats.kept - stats.hits - stats.evicted
    assert sum(b.capacity for b in pool._idle_buffers()) == stats.idle_bytes


def test_put_after_view_released_keeps_the_buffer() -> None:
    """A view released before put() does not stop the buffer from being reused."""
    pool = ByteBufferPool()
    buf = pool.get()
    buf.write(b"abc")
    with buf.view() as view:
        assert bytes(view) == b"abc"
    pool.put(buf)
    again = pool.get()
    assert again is buf
    again.write(b"x" * 10_000)  # grows: no export left behind
    assert again.getvalue() == b"x" * 10_000


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_max_idle_time_releases_cold_buffers_lazily() -> None:
    """Idle buffers unused for max_idle_time seconds are released on a later put."""
    clock = FakeClock()
    pool = ByteBufferPool(retention=KeepAll(), max_idle_time=10.0, clock=clock)
    old = [pool.get() for _ in range(3)]
    fresh = pool.get()
    for buf in old:
        buf.write(b"o" * 1000)
        pool.put(buf)
    clock.now += 10.0
    pool.put(fresh)
    stats = pool.stats()
    assert (stats.idle, stats.expired) == (1, 3)
    assert list(pool._idle_buffers()) == [fresh]
    assert stats.idle_bytes == fresh.capacity


def test_max_idle_time_keeps_recently_used_buffers() -> None:
    """A buffer used within max_idle_time stays."""
    clock = FakeClock()
    pool = ByteBufferPool(max_idle_time=10.0, clock=clock)
    a, b = pool.get(), pool.get()
    pool.put(a)
    clock.now += 9.0
    pool.put(b)
    assert (pool.stats().idle, pool.stats().expired) == (2, 0)


def test_byte_bound_is_exact_after_lock_free_gets() -> None:
    """A get does not lower the byte count; put recounts before evicting, so nothing is lost.

    Taking a buffer out leaves the pool's running byte count high; the next
    put must not evict (or drop) buffers that actually fit.
    """
    pool = ByteBufferPool(retention=KeepAll(), max_idle_bytes=12 * KIB)
    a, b = pool.get(), pool.get()
    a.write(b"a" * (8 * KIB))
    b.write(b"b" * (8 * KIB))
    pool.put(a)
    assert pool.get() is a  # idle again empty; the running count still says 8 KiB
    pool.put(b)
    stats = pool.stats()
    assert (stats.idle, stats.idle_bytes, stats.evicted) == (1, b.capacity, 0)
    pool.put(a)  # now the two really exceed 12 KiB: the colder one (b) goes
    stats = pool.stats()
    assert (stats.idle, stats.evicted) == (1, 1)
    assert [a] == list(pool._idle_buffers())


def test_thread_hammer_keeps_the_retention_cap_the_bounds_and_the_counts() -> None:
    """Under 8 threads of get/write/getvalue/put the fast paths keep every rule.

    Buffers above the retention cap are never kept, the count and byte bounds
    hold, no buffer is held twice, each holder reads back what it wrote, and
    the counters add up exactly.
    """
    cap = 8 * KIB
    pool = ByteBufferPool(retention=MaxCapacity(cap), max_idle=3, max_idle_bytes=12 * KIB)
    holders: set[int] = set()
    guard = threading.Lock()
    errors: list[str] = []
    start = threading.Event()
    rounds, threads = 1500, 8
    sizes = [100, 3000, 7000, 9000, 20_000]  # two of them grow past the cap

    def worker(tag: int) -> None:
        start.wait()
        for i in range(rounds):
            buf = pool.get()
            with guard:
                if id(buf) in holders:
                    errors.append("buffer handed to two holders")
                holders.add(id(buf))
            data = bytes([tag]) * sizes[(i + tag) % len(sizes)]
            buf.write(data[:50])
            buf.write(data[50:])
            if buf.getvalue() != data:
                errors.append("buffer content changed under its holder")
            if i % 7 == 0:
                with buf.view() as view:
                    if bytes(view[:1]) != data[:1]:
                        errors.append("view shows another holder's data")
            with guard:
                holders.discard(id(buf))
            pool.put(buf)

    pool_threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: inside get/put too
    try:
        for t in pool_threads:
            t.start()
        start.set()
        for t in pool_threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    stats = pool.stats()
    idle = list(pool._idle_buffers())
    assert rounds * threads == stats.hits + stats.misses + stats.contended_gets
    assert stats.idle == len(idle) <= 3
    assert stats.idle == stats.kept - stats.hits - stats.evicted
    assert stats.idle_bytes == sum(b.capacity for b in idle) <= 12 * KIB
    assert all(b.capacity <= cap for b in idle)
    assert stats.dropped_by_accept > 0  # the large sizes were refused, not kept
    # Every put filed its buffer, or had it refused, or found the lock busy.
    returned = stats.kept + stats.dropped_by_accept + stats.contended_puts
    assert rounds * threads == returned


def test_put_counts_returns_in_the_calibrated_size_classes() -> None:
    """put's inlined counting files each return in Calibrated.size_class(high water)."""
    policy = Calibrated()
    pool = ByteBufferPool(retention=policy)
    lengths = [0, 1, 63, 64, 65, 127, 128, 129, 4096, 4097, 65_535, 65_536, 65_537, 1 << 20]
    for length in lengths:
        buf = pool.get()
        buf.write(b"z" * length)
        pool.put(buf)
    expected = [0] * len(policy._calls)
    for length in lengths:
        expected[Calibrated.size_class(length)] += 1
    assert expected == policy._calls
