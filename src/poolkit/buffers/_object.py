"""``ObjectPool``: the ``sync.Pool`` of Python, bounded and with a leak guard.

Design and invariants
---------------------

Idle objects live in one ``collections.deque``. ``put`` appends on the right,
``get`` pops on the right (LIFO: the most recently used object is the one most
likely still in the CPU caches), and the left end holds the coldest object, so
every release policy works from the left: overflow (a ``deque(maxlen=...)``
drops its leftmost item when a full deque is appended to), aging and garbage
collection sweeps all ``popleft``.

Thread safety, and why it holds on the free-threaded build too:

* Every change to the idle deque is a single C call (``append``, ``pop``,
  ``popleft``, ``appendleft``). ``deque`` documents these as thread-safe; on the
  GIL build each runs without releasing the GIL, on the free-threaded build each
  runs under the deque's own per-object lock. An object appended once can
  therefore be popped once only: if users follow the contract (put back what
  they got, once), no object is ever handed to two holders. No Python-level
  lock is on the hot path: on CPython 3.11 a ``Lock`` around the deque costs
  170-410 ns per get+put against ~60 ns for the bare deque, and convoys under
  threads (a lock-based pool measured 1.3-3.3 us per get+put at 2-4 threads,
  where the deque stayed under 0.15 us).
* Peeks (``d[0]``) followed by a ``popleft`` are not atomic together; every
  sweep re-checks what it popped and gives back (``appendleft``) an item that
  turned out to be fresh. The worst a race can do is release one object early
  (counted as an overflow drop).
* The two hot counters (gets, puts) are closure cells, the others attributes
  of the pool's core; all are plain ``+=``: a read-modify-write that the
  free-threaded build (and, in theory, a GIL switch) may interleave, losing an
  increment. A lost increment skews :meth:`ObjectPool.stats` by one; no
  decision of the pool reads a counter. (A lock or an ``itertools.count`` per
  call would cost more than the whole hit path is allowed to.)
* The behaviour switches (aging, guards, debug, closed) are the two callables
  ``get``/``put`` call into, ``pop`` and ``append``, held in closure cells:
  the deque's own bound methods on the plain path, the core's slow paths
  otherwise. ``close()`` rebinds both (``rewire``); each rebinding is a single
  reference store, so a concurrent caller sees the old or the new one whole.
* ``gc_aging`` registers a callback in ``gc.callbacks`` that holds the pool's
  core through a weak reference only, and is removed by ``close()`` or when
  the pool is collected (``weakref.finalize``). The callback runs in whichever
  thread triggered the collection, in the middle of arbitrary code, possibly
  inside one of this pool's own calls; it only does the atomic deque
  operations above, so it is as safe as any other thread.

Cost of the hit path (get + put): two Python function calls, two counter
increments and the deque's C calls, when no guard, aging or debug option is
set. Any option adds one Python call per put (and per get for aging and debug).
"""

from __future__ import annotations

import contextlib
import gc
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from poolkit import _registry
from poolkit._registry import Named
from poolkit._stats import renamed
from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_optional_int,
    check_optional_seconds,
)
from poolkit.buffers._object_core import ObjectPoolCore
from poolkit.buffers._snapshot import BufferStats, snapshot

__all__ = ["DEFAULT_MAX_IDLE", "ObjectPool", "ObjectPoolStats"]

T = TypeVar("T")

# Idle objects kept by default. sync.Pool keeps one private object per P plus an
# unbounded shared chain; a Python process serves requests from a few threads
# at most, so 64 covers any realistic number of concurrent holders while still
# bounding what a burst can leave behind (64 x the largest object).
DEFAULT_MAX_IDLE = 64


@renamed(puts="returned", dropped_overflow="evicted", dropped_aged="expired")
@dataclass(frozen=True, slots=True)
class ObjectPoolStats(BufferStats):
    """A snapshot of an :class:`ObjectPool`'s counters.

    Every object that was put back ends in exactly one of: taken again by a
    ``get`` (a hit), still idle, or one of the ``dropped_*``/``cleared`` counts.
    Under concurrent use the snapshot is not atomic, so counts may be off by
    the number of calls in flight.

    Attributes:
        hits: gets served by an idle object.
        misses: gets that called the factory (including calls that raised).
        returned: objects given back with ``put`` (``None`` is refused and not
            counted); was ``puts``.
        idle: objects idle in the pool now.
        max_idle: the cap on idle objects (``None``: unbounded).
        dropped_by_accept: puts the ``accept`` guard refused.
        dropped_by_error: puts dropped because ``accept`` or ``reset`` raised.
        evicted: idle objects dropped (the coldest first) to stay within
            ``max_idle``; was ``dropped_overflow``.
        expired: idle objects released after ``max_idle_time`` seconds; was
            ``dropped_aged``.
        dropped_by_gc: idle objects released by ``gc_aging`` (unused across
            two full collections).
        dropped_closed: puts after ``close()``.
        cleared: idle objects released by ``clear()`` or ``close()``.
        refused: double puts caught by ``debug=True`` (``ReleaseError``).
        name: the pool's name (see :func:`poolkit.pools`).

    Field names follow docs/stats.md; the old ones warn for one release.
    """

    _derived = ("hit_ratio", "gets", "dropped")

    hits: int
    misses: int
    returned: int
    idle: int
    max_idle: int | None
    dropped_by_accept: int
    dropped_by_error: int
    evicted: int
    expired: int
    dropped_by_gc: int
    dropped_closed: int
    cleared: int
    refused: int
    name: str = ""

    @property
    def gets(self) -> int:
        """All gets: ``hits + misses``."""
        return self.hits + self.misses

    @property
    def dropped(self) -> int:
        """Objects the pool let go of, for any reason except ``clear()``."""
        return (
            self.dropped_by_accept
            + self.dropped_by_error
            + self.evicted
            + self.expired
            + self.dropped_by_gc
            + self.dropped_closed
        )


class ObjectPool(Named, Generic[T]):
    """A bounded, thread-safe free list of reusable objects: Go's ``sync.Pool``.

    ``get()`` returns an idle object, or a new one from ``factory`` when none is
    idle; ``put(obj)`` gives it back. The pool never blocks and never waits, so
    it is usable from asyncio code as it is. Unlike ``sync.Pool`` it is bounded
    (``max_idle``), has a leak guard (``accept``), can age idle objects out
    (``max_idle_time``, ``gc_aging``) and keeps statistics.

    Order on ``put(obj)``: ``accept(obj)`` first, on the object exactly as the
    holder left it, so a guard measuring its size sees the size it grew to;
    then ``reset(obj)``, only for objects the pool keeps. A ``reset`` that
    shrinks the object (``list.clear``, ``bytearray.clear`` free their storage)
    would otherwise make every grown object look small to the guard.

    If ``accept`` or ``reset`` raises, the object is dropped (its state is
    unknown), counted in ``dropped_by_error``, and the error propagates to the
    caller of ``put``: a broken reset is a bug to see, not to hide.

    ``get`` and ``put`` are per-pool functions stored on the instance rather
    than methods: a closure call with its counters in cells is ~30 ns cheaper
    per get+put than a method call updating attributes, which is what keeps
    the hit path within 2x of a bare ``deque`` (see ``bench/buffers_object.py``).

    Example::

        pool = ObjectPool(list, reset=list.clear, accept=lambda o: len(o) <= 10_000)
        with pool.borrow() as items:
            items.extend(range(100))

    Attributes:
        get: ``get() -> T``: take an idle object (the most recently put), or
            make one with ``factory`` when none is idle. Raises
            :class:`PoolClosed` after ``close()``, and whatever ``factory``
            raised (the call still counts as a miss).
        put: ``put(obj) -> None``: give an object back. It may be dropped
            instead (refused by ``accept``, or after ``close()``). Putting an
            object that did not come from this pool is allowed (pre-filling).
            Raises ``TypeError`` for ``None`` (Go ignores a nil Put; here it
            is almost always a bug), :class:`ReleaseError` for a double put
            when ``debug=True``, and whatever ``accept``/``reset`` raised.

    Args:
        factory: makes a new object when none is idle; must not return ``None``.
        reset: called on an object the pool keeps, before it goes idle.
        accept: the leak guard, ``accept(obj) -> bool``; an object it refuses
            is dropped. :func:`poolkit.accept_by_capacity` turns a retention
            policy (:class:`poolkit.MaxCapacity` ...) into one.
        max_idle: most idle objects kept (default 64); a put into a full pool
            drops the coldest (least recently put) idle object. ``None`` means
            unbounded: a burst of puts then stays in memory for good (the
            golang/go#23199 leak), so pass it only with aging or a guard.
        max_idle_time: seconds an object may stay idle; older ones are released
            lazily, on the next ``get`` or ``put`` (or :meth:`trim`), with no
            background thread. ``None`` (default): no time limit.
        gc_aging: Go's victim cache: release an object that stayed idle across
            two full (generation 2) garbage collections, at the start of the
            second one, even if the pool is not used any more.
        clock: monotonic time in seconds (tests pass a fake clock).
        debug: detect every double put (:class:`ReleaseError`) by tracking the
            identities of idle objects, at ~0.3 µs per get+put. Without it a
            double put goes unnoticed, and the object may later be handed to
            two holders.
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``ObjectPool-1``); see :func:`poolkit.pools`.

    Raises:
        TypeError: ``factory``, ``reset``, ``accept`` or ``clock`` is not
            callable, or an option has the wrong type.
        ValueError: ``max_idle`` < 0, ``max_idle_time`` negative or not finite.
    """

    __slots__ = ("__weakref__", "_core", "_counts", "_finalizer", "_name", "_rewire", "get", "put")

    get: Callable[[], T]
    put: Callable[[T], None]

    def __init__(
        self,
        factory: Callable[[], T],
        *,
        reset: Callable[[T], object] | None = None,
        accept: Callable[[T], object] | None = None,
        max_idle: int | None = DEFAULT_MAX_IDLE,
        max_idle_time: float | None = None,
        gc_aging: bool = False,
        clock: Clock = time.monotonic,
        debug: bool = False,
        name: str | None = None,
    ) -> None:
        self._name = _registry.name_for(self, name)
        core: ObjectPoolCore[T] = ObjectPoolCore(
            factory=check_callable("factory", factory),
            reset=check_callable("reset", reset, optional=True),
            accept=check_callable("accept", accept, optional=True),
            max_idle=check_optional_int("max_idle", max_idle, minimum=0),
            max_idle_time=check_optional_seconds("max_idle_time", max_idle_time),
            gc_aging=check_bool("gc_aging", gc_aging),
            clock=check_callable("clock", clock),
            debug=check_bool("debug", debug),
        )
        self._core = core
        self.get, self.put, self._rewire, self._counts = _hot_path(
            core.hot_pop(), core.hot_append(), core.miss
        )
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if core.gc_aging:
            hook = _GcHook(core)
            gc.callbacks.append(hook)
            self._finalizer = weakref.finalize(self, _unregister, hook)
        _registry.add(self)

    def borrow(self) -> _Borrow[T]:
        """A context manager that gets an object and puts it back on exit.

        The object is put back even when the ``with`` body raised, so
        ``reset`` (and ``accept``) must cope with an object left half-used;
        when an object cannot be trusted after an error, use :attr:`get` and
        :attr:`put` directly and do not put it back.

        Example::

            with pool.borrow() as buf:
                buf.extend(data)
        """
        return _Borrow(self)

    def trim(self) -> int:
        """Release idle objects older than ``max_idle_time`` now.

        ``get`` and ``put`` do this lazily; call ``trim`` from a timer when a
        pool may sit unused for long.

        Returns:
            How many objects were released (0 without ``max_idle_time``).
        """
        return self._core.trim()

    def clear(self) -> int:
        """Release every idle object.

        Returns:
            How many objects were released.
        """
        return self._core.clear()

    def close(self) -> None:
        """Release every idle object and stop pooling. Idempotent.

        After ``close()``, ``get`` raises :class:`PoolClosed` and ``put`` drops
        the object (a holder returning an object late is not an error). A put
        racing with ``close()`` may leave one object in the closed pool until
        the pool itself is garbage-collected.
        """
        core = self._core
        core.closed = True
        self._rewire(core.pop_closed, core.put_closed)
        if self._finalizer is not None:
            self._finalizer()  # unregister the gc hook now
        core.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._core.closed

    def __enter__(self) -> ObjectPool[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Idle objects now."""
        return len(self._core.idle)

    def stats(self) -> ObjectPoolStats:
        """A snapshot of the counters (see :class:`ObjectPoolStats`)."""
        core = self._core
        gets, puts = self._counts()
        idle = len(core.idle)
        misses = core.misses
        hits = max(0, gets - misses - core.closed_gets)
        refused_puts = (
            core.dropped_by_accept + core.dropped_by_error + core.dropped_closed + core.refused
        )
        left = hits + idle + core.dropped_aged + core.dropped_by_gc + core.cleared
        # Overflow drops happen inside deque.append (maxlen), unseen; they are
        # what remains of the objects that went idle once every other way out
        # is counted.
        overflow = max(0, puts - refused_puts - left)
        return snapshot(
            ObjectPoolStats,
            core,
            "",
            hits=hits,
            misses=misses,
            returned=puts,
            idle=idle,
            evicted=overflow,
            expired=core.dropped_aged,
            name=self._name,
        )

    def __repr__(self) -> str:
        s = self.stats()
        core = self._core
        state = "closed" if core.closed else "open"
        cap = "unbounded" if core.max_idle is None else str(core.max_idle)
        name = getattr(core.factory, "__qualname__", None) or repr(core.factory)
        return (
            f"<ObjectPool {name} {state} [idle {s.idle}/{cap} | "
            f"hits {s.hits}, misses {s.misses} | dropped {s.dropped}]>"
        )


def _hot_path(
    pop: Callable[[], T], append: Callable[[T], None], miss: Callable[[], T]
) -> tuple[
    Callable[[], T],
    Callable[[T], None],
    Callable[[Callable[[], T], Callable[[T], None]], None],
    Callable[[], tuple[int, int]],
]:
    """Build a pool's ``get`` and ``put`` around ``pop`` and ``append``.

    Also returns ``rewire(pop, append)``, which swaps the two for every holder
    of ``get``/``put`` at once (``close()`` uses it), and ``counts()``, which
    reads the two hot counters. Nothing here refers to the pool object, so the
    pool is freed by reference counting, not left to the cycle collector.
    """
    gets = 0
    puts = 0

    def get() -> T:
        """Take an idle object, or make a new one when none is idle."""
        nonlocal gets
        gets += 1
        try:
            return pop()
        except IndexError:
            return miss()

    def put(obj: T) -> None:
        """Give an object back to the pool."""
        nonlocal puts
        if obj is None:
            raise TypeError("put(None): the pool holds objects, None is not one; check the caller")
        puts += 1
        append(obj)

    def rewire(new_pop: Callable[[], T], new_append: Callable[[T], None]) -> None:
        nonlocal pop, append
        pop, append = new_pop, new_append

    def counts() -> tuple[int, int]:
        return gets, puts

    return get, put, rewire, counts


class _Borrow(Generic[T]):
    """``with pool.borrow() as obj``: a class, not ``@contextmanager`` (~3x cheaper)."""

    __slots__ = ("_obj", "_pool")

    def __init__(self, pool: ObjectPool[T]) -> None:
        self._pool = pool

    def __enter__(self) -> T:
        obj = self._pool.get()
        self._obj = obj
        return obj

    # Three named parameters, not *exc_info: packing a tuple costs ~15 ns per
    # with block, and this one is on the hot path.
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        obj = self._obj
        del self._obj
        self._pool.put(obj)


class _GcHook:
    """A ``gc.callbacks`` entry that holds its pool's core weakly."""

    __slots__ = ("_core",)

    def __init__(self, core: ObjectPoolCore[Any]) -> None:
        self._core = weakref.ref(core)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # "start": release before the collection, so cyclic garbage inside a
        # released object is reclaimed by this very collection.
        if phase != "start" or info.get("generation") != 2:
            return
        core = self._core()
        if core is not None:
            core.on_full_collection()


def _unregister(hook: _GcHook) -> None:
    # The hook may already be gone (a test or the user cleared gc.callbacks).
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(hook)
