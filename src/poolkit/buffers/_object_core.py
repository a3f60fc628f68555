"""The state and slow paths behind :class:`poolkit.ObjectPool`.

``ObjectPool`` (``_object.py``) builds ``get``/``put`` around two callables;
this module's :class:`ObjectPoolCore` supplies them: the idle deque's own bound methods
when no option is set, or its slow paths for guards, aging and debug, and for
a closed pool. It also holds every counter except the two hot ones, and
never refers to the ``ObjectPool`` object, so no reference cycle forms. The
thread-safety argument is in ``_object.py``'s module docstring.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from poolkit._errors import PoolClosed, ReleaseError
from poolkit._validate import Clock

__all__ = ["GC_AGING_COLLECTIONS", "ObjectPoolCore"]

T = TypeVar("T")

# Go's victim cache: an object idle across this many full collections is freed.
GC_AGING_COLLECTIONS = 2


@dataclass(eq=False, repr=False, slots=True, weakref_slot=True, kw_only=True)
class ObjectPoolCore(Generic[T]):
    """An ObjectPool's idle objects, options, slow paths and slow counters.

    The options are the constructor's keywords (checked by ``ObjectPool``);
    the counters start at 0 and the idle store is derived from the options.
    """

    factory: Callable[[], T]
    reset: Callable[[T], object] | None
    accept: Callable[[T], object] | None
    max_idle: int | None
    max_idle_time: float | None
    gc_aging: bool
    clock: Clock
    debug: bool
    # Idle items are the objects themselves, or (obj, stamp, epoch) when
    # aging is on. In debug mode the deque is unbounded and trimmed by hand,
    # so that every object leaving it also leaves the identity set.
    stamped: bool = field(init=False)
    idle: deque[Any] = field(init=False)
    idle_ids: set[int] = field(init=False, default_factory=set)
    epoch: int = field(init=False, default=0)
    closed: bool = field(init=False, default=False)
    misses: int = field(init=False, default=0)
    closed_gets: int = field(init=False, default=0)
    refused: int = field(init=False, default=0)
    dropped_by_accept: int = field(init=False, default=0)
    dropped_by_error: int = field(init=False, default=0)
    dropped_aged: int = field(init=False, default=0)
    dropped_by_gc: int = field(init=False, default=0)
    dropped_closed: int = field(init=False, default=0)
    cleared: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.stamped = self.max_idle_time is not None or self.gc_aging
        self.idle = deque(maxlen=None if self.debug else self.max_idle)

    def hot_pop(self) -> Callable[[], T]:
        """What ``get`` pops with: the deque's own ``pop`` when nothing else is needed."""
        if self.stamped or self.debug:
            return self.pop_slow
        return self.idle.pop

    def hot_append(self) -> Callable[[T], None]:
        """What ``put`` appends with: the deque's own ``append`` when nothing else is needed."""
        if self.stamped or self.debug or self.accept is not None or self.reset is not None:
            return self.put_slow
        return self.idle.append

    def miss(self) -> T:
        self.misses += 1
        obj = self.factory()
        if obj is None:
            raise TypeError(
                f"factory {self.factory!r} returned None; it must return the object to pool"
            )
        return obj

    def pop_slow(self) -> T:
        """Pop with aging and/or debug tracking. Raises IndexError when empty."""
        item = self.idle.pop()
        if not self.stamped:
            self.idle_ids.discard(id(item))
            plain: T = item
            return plain
        obj: T = item[0]
        if self.debug:
            self.idle_ids.discard(id(obj))
        limit = self.max_idle_time
        if limit is not None:
            now = self.clock()
            if now - item[1] > limit:
                # The freshest idle object is stale, so every idle one is.
                self.dropped_aged += 1 + self.release_aged(now)
                del obj, item
                return self.miss()
            self.release_if_stale(now, limit)
        return obj

    def put_slow(self, obj: T) -> None:
        """Put with the guards, aging stamps and/or debug tracking."""
        if self.debug and id(obj) in self.idle_ids:
            self.refused += 1
            raise ReleaseError(
                f"double put: {type(obj).__name__} object at {id(obj):#x} is already idle in "
                "this pool; put each object back once"
            )
        accept = self.accept
        if accept is not None:
            try:
                keep = accept(obj)
            except BaseException:
                self.dropped_by_error += 1
                raise
            if not keep:
                self.dropped_by_accept += 1
                return
        reset = self.reset
        if reset is not None:
            try:
                reset(obj)
            except BaseException:
                self.dropped_by_error += 1
                raise
        item: Any = obj
        idle = self.idle
        if self.stamped:
            now = 0.0
            limit = self.max_idle_time
            if limit is not None:
                now = self.clock()
                self.release_if_stale(now, limit)
            item = (obj, now, self.epoch)
        if not self.debug:
            idle.append(item)
            return
        self.idle_ids.add(id(obj))
        idle.append(item)
        # Bound by hand (the debug deque has no maxlen) so that each object
        # leaving the deque also leaves the identity set. Concurrent putters
        # may overshoot max_idle by one each until the next put trims.
        limit = self.max_idle
        if limit is not None:
            while len(idle) > limit:
                try:
                    old = idle.popleft()
                except IndexError:
                    break
                self.forget(old)

    def pop_closed(self) -> T:
        self.closed_gets += 1
        raise PoolClosed("get() on a closed ObjectPool; create a new pool")

    def put_closed(self, obj: T) -> None:
        self.dropped_closed += 1

    def forget(self, item: Any) -> None:
        """Debug bookkeeping for an item that left the idle deque."""
        if self.debug:
            self.idle_ids.discard(id(item[0] if self.stamped else item))

    def release_left(self, stale: Callable[[Any], bool]) -> int:
        """Pop stale items from the cold (left) end; return how many."""
        idle = self.idle
        released = 0
        while idle:
            try:
                if not stale(idle[0]):
                    break
                item = idle.popleft()
            except IndexError:  # emptied by another thread since the check
                break
            if not stale(item):
                # Another thread took the stale item between the peek and the
                # pop, and this one is fresh: give it back.
                idle.appendleft(item)
                break
            self.forget(item)
            released += 1
        return released

    def release_if_stale(self, now: float, limit: float) -> None:
        """Peek at the coldest idle item; sweep only when it is stale (rare)."""
        idle = self.idle
        if idle:
            try:
                stale = now - idle[0][1] > limit
            except IndexError:  # emptied by another thread since the check
                return
            if stale:
                self.dropped_aged += self.release_aged(now)

    def release_aged(self, now: float) -> int:
        limit = self.max_idle_time
        if limit is None:
            return 0
        return self.release_left(lambda item: now - item[1] > limit)

    def on_full_collection(self) -> None:
        """The victim-cache step, run at the start of each gen-2 collection."""
        # Only the GC callback writes epoch, and collections do not overlap.
        self.epoch = epoch = self.epoch + 1
        horizon = epoch - GC_AGING_COLLECTIONS
        self.dropped_by_gc += self.release_left(lambda item: item[2] <= horizon)

    def trim(self) -> int:
        if self.max_idle_time is None:
            return 0
        released = self.release_aged(self.clock())
        self.dropped_aged += released
        return released

    def clear(self) -> int:
        idle = self.idle
        released = 0
        while True:
            try:
                item = idle.popleft()
            except IndexError:
                break
            self.forget(item)
            released += 1
        self.cleared += released
        return released
