"""ObjectPool: the sync.Pool contract, its bounds, guards, aging, faults and threads."""

from __future__ import annotations

import gc
import math
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from poolkit import ObjectPool, PoolClosed, PoolError, ReleaseError, accept_by_capacity
from poolkit.buffers import MaxCapacity, ObjectPoolStats
from poolkit.buffers._object import DEFAULT_MAX_IDLE, _GcHook


class Clock:
    """A fake monotonic clock: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Thing:
    """A pooled object with an identity and a size."""

    def __init__(self, size: int = 0) -> None:
        self.size = size


def check_accounting(stats: ObjectPoolStats) -> None:
    """Every object that went back ends up exactly once: hit, idle, dropped or cleared."""
    accounted = (
        stats.hits
        + stats.idle
        + stats.dropped_by_accept
        + stats.dropped_by_error
        + stats.evicted
        + stats.expired
        + stats.dropped_by_gc
        + stats.dropped_closed
        + stats.cleared
        + stats.refused
    )
    assert stats.returned == accounted


@pytest.fixture
def no_auto_gc() -> Iterator[None]:
    """Only the test's own gc.collect() calls run (they still fire gc.callbacks)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- the sync.Pool contract --------------------------------------------------


def test_get_on_an_empty_pool_calls_the_factory() -> None:
    made: list[Thing] = []

    def factory() -> Thing:
        made.append(Thing())
        return made[-1]

    pool = ObjectPool(factory)
    obj = pool.get()
    assert made == [obj]
    assert (pool.stats().hits, pool.stats().misses) == (0, 1)


def test_put_then_get_reuses_the_object() -> None:
    pool = ObjectPool(Thing)
    obj = pool.get()
    pool.put(obj)
    assert len(pool) == 1
    assert pool.get() is obj
    stats = pool.stats()
    assert (stats.hits, stats.misses, stats.returned, stats.idle) == (1, 1, 1, 0)


def test_get_is_lifo_the_most_recently_put_object_comes_first() -> None:
    pool = ObjectPool(Thing)
    a, b = Thing(), Thing()
    pool.put(a)
    pool.put(b)
    assert [b, a] == [pool.get(), pool.get()]


def test_put_of_a_foreign_object_prefills_the_pool() -> None:
    pool = ObjectPool(Thing)
    warm = [Thing() for _ in range(3)]
    for obj in warm:
        pool.put(obj)
    assert {id(o) for o in warm} == {id(pool.get()) for _ in range(3)}
    assert pool.stats().misses == 0


def test_put_none_is_a_type_error_and_not_counted() -> None:
    pool: ObjectPool[Any] = ObjectPool(Thing)
    with pytest.raises(TypeError, match=r"put\(None\)"):
        pool.put(None)
    assert pool.stats().returned == 0


def test_a_factory_returning_none_is_a_type_error() -> None:
    pool: ObjectPool[Any] = ObjectPool(lambda: None)
    with pytest.raises(TypeError, match=r"factory .* returned None"):
        pool.get()


def test_generic_subscription_works_at_runtime() -> None:
    pool = ObjectPool[list[int]](list)
    assert pool.get() == []


# -- bounds ------------------------------------------------------------------


def test_default_max_idle_is_bounded() -> None:
    pool = ObjectPool(Thing)
    for _ in range(DEFAULT_MAX_IDLE * 2):
        pool.put(Thing())
    assert len(pool) == DEFAULT_MAX_IDLE
    assert pool.stats().evicted == DEFAULT_MAX_IDLE


def test_overflow_drops_the_coldest_idle_object() -> None:
    pool = ObjectPool(Thing, max_idle=2)
    a, b, c = Thing(), Thing(), Thing()
    for obj in (a, b, c):
        pool.put(obj)
    assert [c, b] == [pool.get(), pool.get()]  # a, the coldest, was dropped
    stats = pool.stats()
    assert stats.evicted == 1
    check_accounting(stats)


def test_overflowed_objects_are_released() -> None:
    pool = ObjectPool(Thing, max_idle=1)
    first = Thing()
    ref = weakref.ref(first)
    pool.put(first)
    del first
    pool.put(Thing())
    assert ref() is None


def test_max_idle_zero_keeps_nothing() -> None:
    pool = ObjectPool(Thing, max_idle=0)
    pool.put(Thing())
    assert len(pool) == 0
    assert pool.stats().evicted == 1


def test_max_idle_none_is_unbounded_when_asked_by_name() -> None:
    pool = ObjectPool(Thing, max_idle=None)
    for _ in range(1000):
        pool.put(Thing())
    assert len(pool) == 1000
    assert pool.stats().max_idle is None


# -- accept (the leak guard) and reset -------------------------------------------


def test_accept_sees_the_object_before_reset_shrinks_it() -> None:
    """A guard on len() must judge the grown list, not the list after list.clear."""
    seen: list[int] = []

    def accept(obj: list[int]) -> bool:
        seen.append(len(obj))
        return len(obj) <= 10

    pool = ObjectPool(list, reset=list.clear, accept=accept)
    big = pool.get()
    big.extend(range(1000))
    pool.put(big)
    assert seen == [1000]
    assert len(pool) == 0
    assert pool.stats().dropped_by_accept == 1


def test_reset_runs_only_on_kept_objects() -> None:
    resets: list[int] = []
    pool = ObjectPool(Thing, reset=lambda o: resets.append(o.size), accept=lambda o: o.size < 100)
    pool.put(Thing(5))
    pool.put(Thing(500))
    assert resets == [5]


def test_accept_by_capacity_applies_the_fmt_rule() -> None:
    """fmt drops buffers with capacity > 64 KiB; exactly 64 KiB is kept."""
    pool = ObjectPool(bytearray, accept=accept_by_capacity(MaxCapacity()))
    pool.put(bytearray(64 * 1024))
    pool.put(bytearray(64 * 1024 + 1))
    assert len(pool) == 1
    assert pool.stats().dropped_by_accept == 1


def test_accept_by_capacity_takes_a_size_function() -> None:
    guard = accept_by_capacity(MaxCapacity(limit=8), capacity=lambda t: t.size)
    assert guard(Thing(8))
    assert not guard(Thing(9))


def test_accept_by_capacity_refuses_bad_arguments_at_the_call() -> None:
    """A policy without admit() or a non-callable capacity fails at the call, not at first use."""
    with pytest.raises(TypeError, match=r"policy must be a RetentionPolicy .*got int 42"):
        accept_by_capacity(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capacity must be callable"):
        accept_by_capacity(MaxCapacity(), capacity=8)  # type: ignore[arg-type]


def test_accept_result_is_taken_by_truthiness() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(list, accept=len)
    pool.put([])
    pool.put([1])
    assert len(pool) == 1


def test_leak_reproducer_23199_a_burst_is_not_retained() -> None:
    """golang/go#23199 scaled down: a burst grows pooled buffers to 1 MiB, then a
    stream of 1 KiB requests keeps cycling them. A naive pool keeps the burst for
    good; with the fmt guard the grown buffers are dropped on their first return.
    """
    mib = 1 << 20
    naive: deque[bytearray] = deque()
    pool = ObjectPool(bytearray, accept=accept_by_capacity(MaxCapacity()))

    def naive_get() -> bytearray:
        return naive.pop() if naive else bytearray()

    for get, put in ((naive_get, naive.append), (pool.get, pool.put)):
        burst = [get() for _ in range(8)]
        for buf in burst:
            buf.extend(bytes(mib))  # a large request grows the buffer
        for buf in burst:
            put(buf)
        for _ in range(1000):  # small requests reuse whatever is idle, in place
            buf = get()
            buf[:1024] = bytes(1024)
            put(buf)

    assert sum(len(b) for b in naive) >= 8 * mib
    retained = [pool.get() for _ in range(len(pool))]
    assert sum(len(b) for b in retained) <= 64 * 1024 * len(retained)
    assert pool.stats().dropped_by_accept == 8


# -- faults --------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_factory_that_raises_propagates_and_counts_as_a_miss() -> None:
    calls = 0

    def factory() -> Thing:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Boom("no")
        return Thing()

    pool = ObjectPool(factory)
    with pytest.raises(Boom):
        pool.get()
    assert isinstance(pool.get(), Thing)
    assert (pool.stats().hits, pool.stats().misses) == (0, 2)


def test_a_reset_that_raises_drops_the_object_and_propagates() -> None:
    def reset(obj: Thing) -> None:
        if obj.size:
            raise Boom("cannot reset")

    pool = ObjectPool(Thing, reset=reset)
    bad = Thing(1)
    with pytest.raises(Boom):
        pool.put(bad)
    assert len(pool) == 0
    pool.put(Thing())
    stats = pool.stats()
    assert (stats.dropped_by_error, stats.idle, stats.returned) == (1, 1, 2)
    check_accounting(stats)


def test_an_accept_that_raises_drops_the_object_and_propagates() -> None:
    def accept(obj: Thing) -> bool:
        raise Boom("guard broke")

    pool = ObjectPool(Thing, accept=accept)
    with pytest.raises(Boom):
        pool.put(Thing())
    assert len(pool) == 0
    assert pool.stats().dropped_by_error == 1


def test_reset_errors_propagate_out_of_borrow() -> None:
    def reset(obj: Thing) -> None:
        raise Boom("reset")

    pool = ObjectPool(Thing, reset=reset)
    with pytest.raises(Boom), pool.borrow():
        pass
    assert len(pool) == 0


# -- borrow ----------------------------------------------------------------------


def test_borrow_gets_and_puts_back() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(list, reset=list.clear)
    with pool.borrow() as items:
        items.append(1)
        assert len(pool) == 0
    assert len(pool) == 1
    assert pool.get() is items
    assert items == []


def test_borrow_puts_back_when_the_body_raises() -> None:
    pool = ObjectPool(Thing)
    with pytest.raises(Boom), pool.borrow():
        raise Boom("body")
    assert len(pool) == 1


# -- aging by time --------------------------------------------------------------


def test_an_object_idle_longer_than_max_idle_time_is_not_handed_out() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=10, clock=clock)
    old = Thing()
    pool.put(old)
    clock.now = 10.5
    fresh = pool.get()
    assert fresh is not old
    stats = pool.stats()
    assert (stats.expired, stats.hits, stats.misses) == (1, 0, 1)


def test_max_idle_time_is_strictly_greater_than() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=10, clock=clock)
    obj = Thing()
    pool.put(obj)
    clock.now = 10.0
    assert pool.get() is obj


def test_stale_objects_are_released_lazily_on_put() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=10, clock=clock)
    pool.put(Thing())  # t=0
    clock.now = 5
    pool.put(Thing())  # t=5
    clock.now = 12
    pool.put(Thing())  # the t=0 object is 12 s old: released now
    assert len(pool) == 2
    assert pool.stats().expired == 1


def test_stale_objects_are_released_lazily_on_get() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=10, clock=clock)
    pool.put(Thing())  # t=0, the coldest
    clock.now = 5
    hot = Thing()
    pool.put(hot)
    clock.now = 12
    assert pool.get() is hot  # 7 s idle: still good
    assert len(pool) == 0  # the 12 s old one went with that get
    assert pool.stats().expired == 1


def test_when_the_freshest_is_stale_every_idle_object_goes() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=1, clock=clock)
    for _ in range(5):
        pool.put(Thing())
    clock.now = 2
    pool.get()
    assert len(pool) == 0
    stats = pool.stats()
    assert (stats.expired, stats.misses) == (5, 1)
    check_accounting(stats)


def test_trim_releases_stale_objects_without_traffic() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=10, clock=clock)
    pool.put(Thing())
    clock.now = 5
    pool.put(Thing())
    clock.now = 11
    assert pool.trim() == 1
    assert len(pool) == 1
    assert ObjectPool(Thing).trim() == 0


def test_aged_objects_are_freed() -> None:
    clock = Clock()
    pool = ObjectPool(Thing, max_idle_time=1, clock=clock)
    obj = Thing()
    ref = weakref.ref(obj)
    pool.put(obj)
    del obj
    clock.now = 5
    pool.trim()
    assert ref() is None


# -- aging by garbage collection (Go's victim cache) -----------------------------


@pytest.mark.usefixtures("no_auto_gc")
def test_gc_aging_releases_an_object_unused_across_two_full_collections() -> None:
    pool = ObjectPool(Thing, gc_aging=True)
    try:
        obj = Thing()
        ref = weakref.ref(obj)
        pool.put(obj)
        del obj
        gc.collect()
        assert len(pool) == 1  # one collection: it is in the victim cache
        gc.collect()
        assert len(pool) == 0
        assert ref() is None
        assert pool.stats().dropped_by_gc == 1
    finally:
        pool.close()


@pytest.mark.usefixtures("no_auto_gc")
def test_gc_aging_keeps_objects_used_between_collections() -> None:
    pool = ObjectPool(Thing, gc_aging=True)
    try:
        pool.put(Thing())
        gc.collect()
        pool.put(pool.get())  # used again: a fresh stamp
        gc.collect()
        assert len(pool) == 1
        gc.collect()
        assert len(pool) == 0
    finally:
        pool.close()


@pytest.mark.usefixtures("no_auto_gc")
def test_gc_aging_ignores_young_generation_collections() -> None:
    pool = ObjectPool(Thing, gc_aging=True)
    try:
        pool.put(Thing())
        for _ in range(3):
            gc.collect(0)
            gc.collect(1)
        assert len(pool) == 1
    finally:
        pool.close()


def _hooks() -> list[Any]:
    return [cb for cb in gc.callbacks if isinstance(cb, _GcHook)]


def test_the_gc_hook_does_not_keep_the_pool_alive_and_goes_with_it() -> None:
    before = len(_hooks())
    pool = ObjectPool(Thing, gc_aging=True, reset=lambda o: None)
    assert before + 1 == len(_hooks())
    ref = weakref.ref(pool)
    del pool
    assert ref() is None  # freed by reference counting: no cycle through the hook
    assert before == len(_hooks())


def test_close_removes_the_gc_hook() -> None:
    before = len(_hooks())
    pool = ObjectPool(Thing, gc_aging=True)
    pool.close()
    assert before == len(_hooks())


@pytest.mark.parametrize(
    "options",
    [{}, {"reset": lambda o: None, "accept": lambda o: True}, {"max_idle_time": 1.0}],
)
def test_a_pool_is_freed_by_reference_counting(options: dict[str, Any]) -> None:
    """get/put are closures that do not refer back to the pool: no reference cycle."""
    pool = ObjectPool(Thing, **options)
    pool.put(Thing())
    ref = weakref.ref(pool)
    del pool
    assert ref() is None


# -- double put ------------------------------------------------------------------


def test_debug_detects_a_double_put() -> None:
    pool = ObjectPool(Thing, debug=True)
    obj = pool.get()
    pool.put(obj)
    with pytest.raises(ReleaseError, match="double put"):
        pool.put(obj)
    assert len(pool) == 1
    assert obj is pool.get()
    assert pool.get() is not obj  # never handed out twice
    stats = pool.stats()
    assert stats.refused == 1
    check_accounting(stats)


def test_debug_forgets_objects_that_left_the_pool() -> None:
    """No false alarm for an object dropped by overflow, aging or clear and put again."""
    clock = Clock()
    pool = ObjectPool(Thing, max_idle=1, max_idle_time=10, clock=clock, debug=True)
    a, b = Thing(), Thing()
    pool.put(a)
    pool.put(b)  # a overflows
    pool.put(a)  # b overflows; a is not idle any more, so this is no double put
    clock.now = 20
    assert pool.trim() == 1
    pool.put(a)
    pool.clear()
    pool.put(a)
    assert len(pool) == 1


def test_debug_works_with_accept_and_reset() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(
        list, reset=list.clear, accept=lambda o: len(o) < 5, debug=True
    )
    items = pool.get()
    items.append(1)
    pool.put(items)
    with pytest.raises(ReleaseError):
        pool.put(items)


def test_without_debug_a_double_put_is_not_detected() -> None:
    """Documented: detection costs a set operation per call, so it is opt-in."""
    pool = ObjectPool(Thing)
    obj = pool.get()
    pool.put(obj)
    pool.put(obj)
    assert len(pool) == 2


# -- close, clear, stats, repr -----------------------------------------------------


def test_clear_releases_every_idle_object() -> None:
    pool = ObjectPool(Thing)
    for _ in range(3):
        pool.put(Thing())
    assert pool.clear() == 3
    assert len(pool) == 0
    stats = pool.stats()
    assert stats.cleared == 3
    check_accounting(stats)


def test_get_after_close_raises_pool_closed() -> None:
    pool = ObjectPool(Thing)
    get = pool.get  # a reference taken before close() must see it too
    pool.put(Thing())
    pool.close()
    assert pool.closed
    assert len(pool) == 0
    with pytest.raises(PoolClosed):
        pool.get()
    with pytest.raises(PoolClosed):
        get()
    assert issubclass(PoolClosed, PoolError)
    assert pool.stats().gets == 0


def test_put_after_close_drops_the_object() -> None:
    pool = ObjectPool(Thing)
    obj = pool.get()
    pool.close()
    pool.close()  # idempotent
    pool.put(obj)
    assert len(pool) == 0
    stats = pool.stats()
    assert stats.dropped_closed == 1
    check_accounting(stats)


def test_the_pool_is_a_context_manager_that_closes() -> None:
    with ObjectPool(Thing) as pool:
        pool.put(Thing())
    assert pool.closed


def test_stats_snapshot_is_frozen_and_adds_up() -> None:
    pool = ObjectPool(Thing, max_idle=2, accept=lambda o: o.size < 10)
    held = [pool.get() for _ in range(4)]
    for obj in held:
        pool.put(obj)
    pool.put(Thing(50))
    pool.get()
    stats = pool.stats()
    assert (
        stats.hits,
        stats.misses,
        stats.returned,
        stats.idle,
        stats.max_idle,
        stats.dropped_by_accept,
        stats.evicted,
    ) == (1, 4, 5, 1, 2, 1, 2)
    assert stats.gets == 5
    assert math.isclose(0.2, stats.hit_ratio)
    assert stats.dropped == 3
    check_accounting(stats)
    with pytest.raises(AttributeError):
        stats.hits = 0  # type: ignore[misc]
    assert ObjectPool(Thing).stats().hit_ratio == 0.0


def test_repr_shows_live_state() -> None:
    pool = ObjectPool(Thing, max_idle=8)
    pool.put(pool.get())
    pool.get()
    assert repr(pool) == "<ObjectPool Thing open [idle 0/8 | hits 1, misses 1 | dropped 0]>"
    pool.close()
    assert "closed" in repr(pool)
    assert "unbounded" in repr(ObjectPool(Thing, max_idle=None))


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"factory": 3}, TypeError, "factory"),
        ({"reset": "clear"}, TypeError, "reset"),
        ({"accept": 1}, TypeError, "accept"),
        ({"clock": 0.0}, TypeError, "clock"),
        ({"max_idle": -1}, ValueError, "max_idle"),
        ({"max_idle": 2.5}, TypeError, "max_idle"),
        ({"max_idle": True}, TypeError, "max_idle"),
        ({"max_idle_time": -1}, ValueError, "max_idle_time"),
        ({"max_idle_time": math.nan}, ValueError, "max_idle_time"),
        ({"max_idle_time": math.inf}, ValueError, "max_idle_time"),
        ({"max_idle_time": "10"}, TypeError, "max_idle_time"),
        ({"gc_aging": 1}, TypeError, "gc_aging"),
        ({"debug": "yes"}, TypeError, "debug"),
    ],
)
def test_bad_arguments_raise_errors_naming_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    options: dict[str, Any] = {"factory": Thing, **kwargs}
    factory = options.pop("factory")
    with pytest.raises(error, match=rf"^{name} "):
        ObjectPool(factory, **options)


# -- threads ---------------------------------------------------------------------


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every few bytecodes, to interleave gets and puts densely."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


POOL_OPTIONS: list[dict[str, Any]] = [
    {},
    {"reset": lambda o: None, "accept": lambda o: True},
    {"max_idle_time": 3600.0},
    {"gc_aging": True},
    {"debug": True},
]


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("options", POOL_OPTIONS, ids=["plain", "guarded", "aged", "gc", "debug"])
def test_threads_never_share_an_object_and_counts_add_up(options: dict[str, Any]) -> None:
    threads, rounds = 8, 3000
    pool = ObjectPool(Thing, max_idle=4, **options)
    held: set[int] = set()
    lock = threading.Lock()
    shared: list[str] = []
    start = threading.Barrier(threads)

    def work(seed: int) -> None:
        start.wait()
        for i in range(rounds):
            obj = pool.get()
            with lock:
                if id(obj) in held:
                    shared.append(f"{id(obj):#x}")
                held.add(id(obj))
            if (i + seed) % 7 == 0:
                gc.collect(2 if i % 500 == 0 else 0)  # run the gc hook now and then
            with lock:
                held.discard(id(obj))
            pool.put(obj)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    pool.close()

    assert shared == []
    stats = pool.stats()
    assert threads * rounds == stats.gets
    assert threads * rounds == stats.returned
    assert stats.idle == 0
    check_accounting(stats)


@pytest.mark.usefixtures("fast_switching")
def test_threads_with_borrow_never_share_an_object() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(list, reset=list.clear, max_idle=2)
    errors: list[str] = []

    def work() -> None:
        for _ in range(2000):
            with pool.borrow() as items:
                if items:
                    errors.append("handed out a list someone else is filling")
                items.append(1)

    workers = [threading.Thread(target=work) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert pool.stats().gets == 12000
