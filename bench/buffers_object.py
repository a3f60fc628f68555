"""ObjectPool get+put against the floor, a ``queue.Queue`` pool and the PyPI peers.

Every subject pools 4 KiB ``bytearray`` buffers and runs the hit path: the
pool holds one idle buffer, each cycle takes it and gives it back.

Subjects:

- ``poolkit``: :class:`poolkit.ObjectPool` with its defaults (``max_idle=64``).
- ``deque floor``: the fastest pool a Python class can be (a ``MaxlenPool``:
  a bounded deque in a class with ``__slots__``): ``get`` a method doing try ``deque.pop`` / except
  ``IndexError``, ``put`` the deque's bound ``append``. No stats, no checks.
  The target is poolkit within 2x of it.
- ``queue.Queue pool``: the hand-rolled pool seen in the wild,
  ``get_nowait``/``put_nowait`` with ``Empty``/``Full`` handling.
- ``pondpond`` (1.4, ``Pond.borrow``/``recycle``), with its eviction thread off
  and on (the default: every borrow also feeds a count-min sketch).
- ``syncpool-py`` (0.1, ``SyncObjectPool``): a lock and a timestamp per put.

Further benches: the ``borrow()`` context manager against the same floor
wrapped in a class-based context manager and in ``@contextmanager``; and
poolkit with options on (reset + accept, max_idle_time) against the peer that
does the same work per cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from poolkit import ObjectPool
from poolkit._bench import BenchContext, peer_installed, time_loop

BUFFER_SIZE = 4096
# Wall time of one timed run: long enough to swamp timer noise, short enough
# that the microsecond-scale peers keep --quick within seconds.
RUN_SECONDS = 0.03
QUICK_RUN_SECONDS = 0.01
# Interleaved rounds per ``ctx.repeat`` (3 quick, 7 full): best of 9 or 21 runs.
ROUNDS_PER_REPEAT = 3
BENCH_HIT = "ObjectPool get+put (hit)"
BENCH_BORROW = "ObjectPool borrow() cycle"
BENCH_GUARDED = "ObjectPool get+put (hit, reset+accept)"
BENCH_AGED = "ObjectPool get+put (hit, max_idle_time)"

Loop = Callable[[int], object]


def run(ctx: BenchContext) -> None:
    """Time the hit path of poolkit, the floor and each peer, side by side."""
    target = QUICK_RUN_SECONDS if ctx.quick else RUN_SECONDS
    closers: list[Callable[[], None]] = []
    try:
        _time(ctx, BENCH_HIT, _hit_subjects(closers), target)
        _time(ctx, BENCH_BORROW, _borrow_subjects(), target)
        _time(ctx, BENCH_GUARDED, _guarded_subjects(closers), target)
        _time(ctx, BENCH_AGED, _aged_subjects(), target)
    finally:
        for close in closers:
            close()


def _time(ctx: BenchContext, bench: str, subjects: dict[str, Loop], seconds: float) -> None:
    """Best run of each subject, the subjects interleaved round by round.

    On a shared machine load comes and goes; timing every subject once per
    round (rather than all runs of one subject, then the next) exposes each
    to the same spells of load, so the ratios hold up better than the
    absolute numbers.
    """
    numbers = {name: _number_for(loop, seconds) for name, loop in subjects.items()}
    best = dict.fromkeys(subjects, float("inf"))
    for _ in range(ctx.repeat * ROUNDS_PER_REPEAT):
        for name, loop in subjects.items():
            best[name] = min(best[name], time_loop(loop, numbers[name], 1))
    for name, ns in best.items():
        ctx.record(bench, name, "ns_per_op", ns)


def _number_for(loop: Loop, seconds: float) -> int:
    """Cycles per timed run so that one run takes about ``seconds``."""
    probe = 1000
    start = time.perf_counter()
    loop(probe)
    per_op = max((time.perf_counter() - start) / probe, 1e-9)
    return max(1000, min(2_000_000, int(seconds / per_op)))


def _factory() -> bytearray:
    return bytearray(BUFFER_SIZE)


def _get_put(get: Callable[[], Any], put: Callable[[Any], object]) -> Loop:
    put(get())  # one idle object: every timed cycle is a hit

    def loop(count: int) -> None:
        for _ in range(count):
            put(get())

    return loop


# -- the floor and the hand-rolled pool ------------------------------------------


class DequeFloor:
    """A ``MaxlenPool`` (a bounded deque in a slotted class): the floor of a Python pool class."""

    __slots__ = ("_factory", "_pop", "put")

    def __init__(self, factory: Callable[[], Any], cap: int = 64) -> None:
        idle: deque[Any] = deque(maxlen=cap)
        self._pop = idle.pop
        self.put = idle.append
        self._factory = factory

    def get(self) -> Any:
        try:
            return self._pop()
        except IndexError:
            return self._factory()


class QueuePool:
    """The common hand-rolled pool: a ``queue.Queue`` of idle objects."""

    def __init__(self, factory: Callable[[], Any], cap: int = 64) -> None:
        self._idle: queue.Queue[Any] = queue.Queue(cap)
        self._factory = factory

    def get(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._factory()

    def put(self, obj: Any) -> None:
        with contextlib.suppress(queue.Full):
            self._idle.put_nowait(obj)


class FloorBorrow:
    """A class-based context manager over :class:`DequeFloor`."""

    __slots__ = ("_obj", "_pool")

    def __init__(self, pool: DequeFloor) -> None:
        self._pool = pool

    def __enter__(self) -> Any:
        self._obj = self._pool.get()
        return self._obj

    def __exit__(self, *exc: object) -> None:
        self._pool.put(self._obj)


# -- subjects ----------------------------------------------------------------------


def _hit_subjects(closers: list[Callable[[], None]]) -> dict[str, Loop]:
    pool = ObjectPool(_factory)
    floor = DequeFloor(_factory)
    qpool = QueuePool(_factory)
    subjects: dict[str, Loop] = {
        "poolkit": _get_put(pool.get, pool.put),
        "deque floor": _get_put(floor.get, floor.put),
        "queue.Queue pool": _get_put(qpool.get, qpool.put),
    }
    pond_off = _pond_loop(closers, eviction=False)
    if pond_off is not None:
        subjects["pondpond"] = pond_off
    pond_on = _pond_loop(closers, eviction=True)
    if pond_on is not None:
        subjects["pondpond (eviction on)"] = pond_on
    sync = _syncpool_loop()
    if sync is not None:
        subjects["syncpool-py"] = sync
    return subjects


def _borrow_subjects() -> dict[str, Loop]:
    pool = ObjectPool(_factory)
    floor = DequeFloor(_factory)

    @contextlib.contextmanager
    def generator_borrow() -> Iterator[Any]:
        obj = floor.get()
        try:
            yield obj
        finally:
            floor.put(obj)

    def with_loop(borrow: Callable[[], contextlib.AbstractContextManager[Any]]) -> Loop:
        with borrow():
            pass

        def loop(count: int) -> None:
            for _ in range(count):
                with borrow():
                    pass

        return loop

    return {
        "poolkit": with_loop(pool.borrow),
        "deque floor": with_loop(lambda: FloorBorrow(floor)),
        "@contextmanager": with_loop(generator_borrow),
    }


def _guarded_subjects(closers: list[Callable[[], None]]) -> dict[str, Loop]:
    """Reset and a capacity guard on every put; pondpond calls reset and validate."""
    pool = ObjectPool(_factory, reset=_reset, accept=_small_enough)
    subjects: dict[str, Loop] = {"poolkit": _get_put(pool.get, pool.put)}
    pond_off = _pond_loop(closers, eviction=False)
    if pond_off is not None:
        subjects["pondpond"] = pond_off
    return subjects


def _aged_subjects() -> dict[str, Loop]:
    """A clock reading per put (and, for poolkit, per get); syncpool-py stamps each put."""
    pool = ObjectPool(_factory, max_idle_time=60.0)
    subjects: dict[str, Loop] = {"poolkit": _get_put(pool.get, pool.put)}
    sync = _syncpool_loop()
    if sync is not None:
        subjects["syncpool-py"] = sync
    return subjects


def _reset(buf: bytearray) -> None:
    pass


def _small_enough(buf: bytearray) -> bool:
    return len(buf) <= 64 * 1024


# -- peers -------------------------------------------------------------------------


def _pond_loop(closers: list[Callable[[], None]], *, eviction: bool) -> Loop | None:
    if not peer_installed("pondpond", "pond"):
        return None
    from pond import Pond, PooledObject, PooledObjectFactory

    class BufferFactory(PooledObjectFactory):
        def createInstance(self) -> PooledObject:  # pondpond's name
            return PooledObject(_factory())

        def destroy(self, pooled_object: PooledObject) -> None:
            pass

        def reset(self, pooled_object: PooledObject, **kwargs: Any) -> PooledObject:
            return pooled_object

        def validate(self, pooled_object: PooledObject) -> bool:
            return True

    event_loop = asyncio.new_event_loop()
    pond = Pond(
        borrowed_timeout=3600,
        time_between_eviction_runs=300 if eviction else -1,
        loop=event_loop,
    )

    def close() -> None:
        if not eviction:
            event_loop.close()
            return

        # The eviction task sleeps in the loop's own thread: cancel it there and
        # let one more loop iteration finish it, so nothing is left pending.
        def shutdown() -> None:
            for task in asyncio.all_tasks(event_loop):
                task.cancel()
            event_loop.call_soon(event_loop.stop)

        event_loop.call_soon_threadsafe(shutdown)
        thread = getattr(pond, "_Pond__thread", None)
        if thread is not None:
            thread.join(timeout=5)
        if not event_loop.is_running():
            event_loop.close()

    closers.append(close)
    pond.register(BufferFactory(pooled_maxsize=64), name="buffers")
    borrow, recycle = pond.borrow, pond.recycle

    def loop(count: int) -> None:
        for _ in range(count):
            recycle(borrow(name="buffers"), name="buffers")

    return loop


def _syncpool_loop() -> Loop | None:
    if not peer_installed("syncpool-py", "syncpool_py"):
        return None
    from syncpool_py.pools.syncpool import SyncObjectPool

    pool = SyncObjectPool(max_len=64, obj=_factory)
    get, new, put = pool.get, pool.get_new_obj, pool.put
    put(new())

    def loop(count: int) -> None:
        for _ in range(count):
            obj = get()
            if obj is None:  # syncpool-py returns None when empty (no New fallback)
                obj = new()
            put(obj)

    return loop
