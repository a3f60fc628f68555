"""BufferPool: a size-class pool of ``bytearray`` buffers (vitess ``bucketpool``).

Invariants:

* Every idle buffer sits in the deque of the class whose size equals its
  length, exactly. A return is keyed by exact size; a length that is not a
  class size is refused, never rounded up to a larger class (the vitess
  round-up makes a later ``get`` too small: Thanos #6934, Tempo #1261).
* Every idle buffer has an entry in ``_claims`` (keyed by ``id``, holding
  the buffer), so its ``id`` cannot be reused while the entry exists; a
  second return of an idle buffer finds the entry and is refused. An entry
  outlives its buffer's stay only when a ``KeyboardInterrupt`` lands between
  a take's pop and its unclaim; that buffer then stays held, unused.
* No idle buffer has a live export (memoryview): a return is probed first.
* Idle bytes never exceed ``max_idle_bytes`` under the GIL. On the
  free-threaded build they can pass it only after two takes raced for the
  last idle buffer of a class, by that one buffer (see the byte counters
  below).
* With ``max_idle_time``, a buffer untouched for a whole interval is released
  at the next sweep (see ``BufferPool._age``).
* After ``close()`` no buffer is handed out: takes leave the plain hit path
  (``_plain`` goes False) for ``_prepare``, which raises ``PoolClosed``, and
  returns leave the inlined filing (``_fast_return``) for ``_file``, which
  drops them. Returns file only under the lock; ``close()`` sets those marks,
  waits for the lock and empties the store, so nothing is filed after
  ``close()`` returns. (The wait is bounded: a ``close()`` from a signal
  handler that interrupted a return on its own thread leaves that one
  buffer idle, never handed out.)

Thread safety, without relying on the GIL for anything the free-threaded
build drops: every shared structure is touched by single C-level calls that
are atomic on both builds (``deque.pop``/``append``/``popleft``,
``dict.setdefault``/``pop``; the free-threaded build locks each object inside
those calls). Claiming a return is one ``setdefault`` with a marker no other
caller has (a fresh list holding the buffer): the caller that gets its
own marker back owns the claim, so two threads returning the same buffer at
once cannot both file it.

The byte budget is kept by two counters whose difference is never below the
bytes idle buffers hold:

* ``_taken_bytes`` is added to by takes alone, without a lock, *before*
  their pop, and only when the class was seen non-empty: with no call
  between the test, the count and the pop, the GIL build never counts a pop
  that then fails. (On the free-threaded build a racing take can empty
  the class in between; the count is then taken back, and until then the
  difference is one buffer short, or until the next recount if that
  decrement is itself lost to a racing take. An increment lost that way only
  makes the difference larger.)
* ``_filed_bytes`` changes only under ``_lock``, a
  :class:`~poolkit._tokenlock.TokenLock`: a return adds its buffer's size
  after checking the difference against the budget, and files the buffer in
  the same section; the pool's own removals under the lock (eviction,
  aging) subtract theirs. ``clear`` pops without the lock and subtracts
  nothing, which leaves the difference too large until the next recount. A
  return that finds the lock held drops its buffer (counted in
  ``contended_puts``): it never waits.
* The over-budget slow path rebases ``_filed_bytes`` on a recount of the
  store plus ``_taken_bytes`` read *after* the count: a take that popped
  before the count had already added its bytes, and one that pops after it
  was counted idle, so the difference stays an upper bound.

So every filing sees at least the idle bytes, and idle bytes never exceed
the budget. (One counter updated outside a lock would lose
updates even under the GIL: a thread switch can fall between the read and
the write, at any call.)

Under the GIL a thread is switched out only at a call (when a C call
returns, when a Python function starts) or a loop's jump back, and a return
meets the lock held only when its holder was switched out inside its
section. The fast section is kept short for that: the lock is
taken with ``del token[0]`` (no call), and the one call inside is the
filing ``append``. Four threads hammering one pool dropped 0 to 20 of 200,000
returns this way (CPython 3.11 to 3.13). Takes stay out of the lock: with
their pop inside it, the same hammer dropped 5 to 20 % of the returns, as a
holder switched out at that call held the lock for a whole switch interval.

The statistics counters are plain increments: exact under the GIL, possibly a
few short under free-threaded contention.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from poolkit import _registry
from poolkit._errors import PoolClosed, ReleaseError
from poolkit._registry import NamedClosable
from poolkit._stats import renamed
from poolkit._tokenlock import TokenLock, held_briefly
from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_int,
    check_optional_int,
    check_optional_seconds,
)
from poolkit.buffers._buffer_loan import BufferLoan
from poolkit.buffers._size_classes import SizeClasses, human_size
from poolkit.buffers._snapshot import BufferStats, snapshot

__all__ = [
    "DEFAULT_MAX_IDLE_BYTES",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_SIZE",
    "BufferPool",
    "BufferPoolStats",
]

# Below ~512 B a fresh bytearray(n) (~76 ns) costs about what any pure-Python
# pool's round trip does (anchors: CPython 3.11 measurements), so smaller
# requests share the 512 B class rather than getting classes of their own.
DEFAULT_MIN_SIZE = 512
# 4 MiB: the product sketch's default. Reuse pays most from ~1 MiB up
# (12 µs saved on a warm heap, ~0.5 ms when pages come from fresh mmaps);
# larger requests are served fresh and never pooled.
DEFAULT_MAX_SIZE = 4 << 20
# 64 MiB of idle buffers across all classes (sixteen 4 MiB buffers): bounded
# by default, as every poolkit pool is; the product sketch's figure.
DEFAULT_MAX_IDLE_BYTES = 64 << 20


@renamed(returns="kept", aged="expired", idle_buffers="idle")
@dataclass(frozen=True, slots=True)
class BufferPoolStats(BufferStats):
    """A snapshot of a :class:`BufferPool`'s counters and idle memory.

    Field names follow docs/stats.md; the old ones (``returns``, ``aged``,
    ``idle_buffers``) warn for one release.

    Attributes:
        hits: requests served with an idle buffer.
        misses: requests within ``max_size`` that allocated a new buffer.
        oversize: requests above ``max_size``, served with a fresh unpooled buffer.
        kept: buffers taken back into the pool (was ``returns``).
        dropped_oversize: returned buffers above ``max_size``, dropped.
        dropped_budget: returned buffers dropped to stay within ``max_idle_bytes``.
        evicted: idle buffers of larger classes dropped to make room for a
            return within ``max_idle_bytes``.
        dropped_class_full: returned buffers dropped because their class
            already held ``max_idle_per_class``.
        expired: idle buffers released by ``max_idle_time`` (was ``aged``).
        dropped_in_use: borrowed buffers not taken back because a memoryview
            into them outlived the ``with`` block.
        refused: ``put`` calls refused with :class:`poolkit.ReleaseError`.
        idle: buffers idle in the pool now (was ``idle_buffers``).
        idle_bytes: bytes those buffers hold.
        max_idle_bytes: the byte budget for idle buffers (``None``: no limit).
        idle_by_class: ``(class size, idle buffers)`` per class, smallest first.
        dropped_closed: buffers given back after ``close()``, dropped.
        contended_puts: returned buffers dropped because another thread held
            the pool's lock at that moment (a return never waits).
        name: the pool's name (see :func:`poolkit.pools`).
    """

    hits: int
    misses: int
    oversize: int
    kept: int
    dropped_oversize: int
    dropped_budget: int
    evicted: int
    expired: int
    dropped_class_full: int
    dropped_in_use: int
    refused: int
    idle: int
    idle_bytes: int
    max_idle_bytes: int | None
    idle_by_class: tuple[tuple[int, int], ...]
    dropped_closed: int = 0
    contended_puts: int = 0
    name: str = ""


class BufferPool(NamedClosable):
    """A thread-safe, never-blocking pool of ``bytearray`` buffers in size classes.

    Classes are ``min_size * 2**k`` below ``max_size``, then ``max_size``
    (vitess ``bucketpool``); a request for ``n`` bytes gets the smallest class
    ``>= n``, or above ``max_size`` a fresh buffer that is never pooled.
    :meth:`borrow` is the everyday API; :meth:`get` / :meth:`put` the
    low-level pair. Returns are strict: a length that is not a class size, a
    buffer already idle, or one with live memoryviews is refused with
    :class:`poolkit.ReleaseError`; one above ``max_size`` is dropped. A
    foreign ``bytearray`` of exactly a class size is accepted, as a free list
    would: it fits its class, so it is safe.

    Args:
        min_size: the smallest class, in bytes (default 512).
        max_size: the largest class, in bytes (default 4 MiB).
        max_idle_bytes: budget for the bytes idle buffers may hold, across all
            classes (default 64 MiB); ``None`` means no limit. A return that
            would exceed it first evicts idle buffers of larger classes
            (coldest first); if that cannot make room, the returned buffer is
            dropped. The largest buffers cost the most to keep, and small hot
            classes are never starved by one burst of large ones.
        max_idle_per_class: cap on idle buffers per class (default ``None``:
            only the byte budget applies). A return to a full class is dropped.
        zero: hand out zero-filled buffers, as ``bytearray(n)`` would. Reused
            buffers are zeroed when taken from the pool (fresh ones already
            are); idle buffers keep their last contents.
        max_idle_time: release idle buffers left unused this many seconds
            (default ``None``: no aging). Checked lazily when buffers are
            taken, no thread: a buffer goes after 1 to 2 ``max_idle_time`` of
            idleness; a pool nobody calls keeps its buffers until
            :meth:`clear`.
        clock: monotonic seconds for aging (tests pass a fake clock).
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``BufferPool-1``); see :func:`poolkit.pools`.

    Raises:
        TypeError: a size is not an int, ``zero`` is not a bool, ``clock`` is
            not callable, or ``max_idle_time`` is not a number.
        ValueError: ``min_size <= 0``, ``max_size < min_size``, a negative
            budget or cap, or a ``max_idle_time`` that is not positive.
    """

    # Slots: borrow and return reach a dozen of these on every call, and an
    # instance dict of this many keys is not shared (CPython 3.11+ shares up
    # to 29), which makes each access and method call slower.
    __slots__ = (
        "__weakref__",
        "_aged",
        "_budget",
        "_claims",
        "_classes",
        "_clock",
        "_closed",
        "_contended_puts",
        "_dropped_budget",
        "_dropped_class_full",
        "_dropped_closed",
        "_dropped_in_use",
        "_dropped_oversize",
        "_evicted",
        "_fast_return",
        "_filed_bytes",
        "_hits",
        "_idle",
        "_index_by_size",
        "_lock",
        "_low",
        "_max",
        "_max_idle_bytes",
        "_max_idle_per_class",
        "_max_idle_time",
        "_min",
        "_misses",
        "_name",
        "_next_sweep",
        "_oversize",
        "_plain",
        "_refused",
        "_returns",
        "_sizes",
        "_taken_bytes",
        "_token",
        "_zero",
        "_zero_templates",
    )

    def __init__(
        self,
        min_size: int = DEFAULT_MIN_SIZE,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        max_idle_bytes: int | None = DEFAULT_MAX_IDLE_BYTES,
        max_idle_per_class: int | None = None,
        zero: bool = False,
        max_idle_time: float | None = None,
        clock: Clock = time.monotonic,
        name: str | None = None,
    ) -> None:
        self._name = _registry.name_for(self, name)
        classes = SizeClasses(min_size, max_size)
        budget = check_optional_int("max_idle_bytes", max_idle_bytes, minimum=0)
        per_class = check_optional_int("max_idle_per_class", max_idle_per_class, minimum=0)
        check_bool("zero", zero)
        self._classes = classes
        self._min = classes.min_size
        self._max = classes.max_size
        self._sizes = classes.sizes
        self._index_by_size = {size: i for i, size in enumerate(classes.sizes)}
        self._max_idle_bytes = budget
        # An int the hot path can compare with; None ("no limit") never trips it.
        self._budget = budget if budget is not None else 1 << 62
        self._max_idle_per_class = per_class
        self._zero = zero
        self._max_idle_time = check_optional_seconds(
            "max_idle_time", max_idle_time, allow_zero=False
        )
        self._clock: Clock = check_callable("clock", clock)
        # Takes with nothing to do past the pop: borrow() inlines them, and
        # _take skips _prepare. Zeroing, aging and close() turn it off.
        self._plain = not zero and max_idle_time is None
        # Returns filed inline by _take_back; a class cap and close() need _file.
        self._fast_return = per_class is None
        self._closed = False
        # Aging state: per class, the fewest idle buffers seen since the last
        # sweep (the "low watermark"), and when the next sweep is due.
        self._low = [0] * len(classes.sizes)
        self._next_sweep = (
            clock() + self._max_idle_time if self._max_idle_time is not None else math.inf
        )
        self._zero_templates: list[bytearray | memoryview] = classes.zero_sources() if zero else []
        self._idle: list[deque[bytearray]] = [deque() for _ in classes.sizes]
        self._claims: dict[int, list[bytearray]] = {}
        # Their difference bounds the idle bytes from above (see the module notes).
        self._filed_bytes = self._taken_bytes = 0
        # Guards _filed_bytes with the filing of returns; the return path
        # inlines its non-blocking acquire and its release on the token.
        self._lock = TokenLock()
        self._token = self._lock.token
        self._hits = self._misses = self._oversize = self._returns = self._aged = 0
        self._dropped_oversize = self._dropped_budget = self._dropped_class_full = 0
        self._dropped_in_use = self._dropped_closed = self._evicted = self._refused = 0
        self._contended_puts = 0
        _registry.add(self)

    # -- public API ----------------------------------------------------------

    @property
    def classes(self) -> SizeClasses:
        """The pool's size classes (``classes.sizes``, ``classes.class_for(n)``)."""
        return self._classes

    @property
    def max_idle_bytes(self) -> int | None:
        """The byte budget for idle buffers (``None``: no limit)."""
        return self._max_idle_bytes

    def borrow(self, n: int) -> BufferLoan:
        """Borrow a buffer for ``n`` bytes, as a context manager.

        ``with pool.borrow(n) as view:`` yields a ``memoryview`` of exactly
        ``n`` bytes over a buffer of the smallest class ``>= n`` (a fresh one
        above ``max_size``). When the block ends the view is released (any use
        afterwards raises ``ValueError: operation forbidden on released
        memoryview object``) and the buffer goes back to the pool. If a view
        derived from it (a slice) is still alive then, the buffer is dropped
        instead of pooled, so it can never be handed to a second holder.

        Args:
            n: bytes wanted (``>= 0``; 0 gives an empty view).

        Returns:
            A single-use context manager; entering it raises
            :class:`~poolkit.PoolClosed` once the pool is closed.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
        """
        if n.__class__ is not int or n < 0:
            n = check_int("n", n, minimum=0)
        return BufferLoan(self, n)

    def get(self, n: int) -> bytearray:
        """Take a buffer that holds at least ``n`` bytes.

        Returns the pooled ``bytearray`` itself, of the class size
        (``len(buf) >= n``; exactly ``n`` above ``max_size``), so
        ``sock.recv_into(buf, n)`` fills it in place and ``put(buf)`` returns
        the same object. Use ``memoryview(buf)[:n]`` for an exact-length view,
        and release it before :meth:`put`. Contents are the previous user's
        unless the pool was made with ``zero=True``.

        Args:
            n: bytes wanted (``>= 0``).

        Returns:
            A ``bytearray`` of the smallest class ``>= n``.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
            PoolClosed: the pool was closed.
        """
        if n.__class__ is not int or n < 0:
            n = check_int("n", n, minimum=0)
        if n <= self._min:
            return self._take(0)
        if n > self._max:
            return self._fresh(n)
        return self._take(((n - 1) // self._min).bit_length())

    def put(self, buf: bytearray) -> None:
        """Give back a buffer from :meth:`get`.

        Args:
            buf: the ``bytearray``, unresized, with no live memoryviews.

        Raises:
            TypeError: ``buf`` is not a ``bytearray``.
            ReleaseError: its length is not a class size; it is already idle
                in the pool (returned twice); or memoryviews into it are
                still alive. The buffer is left with the caller.
        """
        if buf.__class__ is not bytearray and not isinstance(buf, bytearray):
            raise TypeError(_wrong_type(buf))
        size = len(buf)
        index = self._index_by_size.get(size)
        if index is None:
            if size > self._max:
                self._dropped_oversize += 1
                return
            self._refused += 1
            raise ReleaseError(
                f"cannot take back a buffer of {size} bytes: not a class size of this "
                f"pool ({self._classes.describe()}); put back only buffers from "
                f"get(), without resizing them"
            )
        self._take_back(buf, index, None)

    def clear(self) -> int:
        """Drop every idle buffer.

        Returns:
            The bytes the dropped buffers held.
        """
        freed = 0
        claims = self._claims
        # No lock, and nothing counted: a removal only leaves the counters'
        # difference above the idle bytes, and the next return that finds it
        # over the budget recounts (see the module notes).
        for size, idle in zip(self._sizes, self._idle, strict=True):
            while True:
                try:
                    buf = idle.popleft()
                except IndexError:
                    break
                claims.pop(id(buf), None)
                freed += size
        self._low = [0] * len(self._sizes)
        return freed

    def stats(self) -> BufferPoolStats:
        """A snapshot of the counters and of the idle buffers per class.

        ``idle_bytes`` is counted from the class deques, so it is exact even
        if a racing update was lost (see the module notes).
        """
        counts = [len(idle) for idle in self._idle]
        return snapshot(
            BufferPoolStats,
            self,
            idle=sum(counts),
            kept=self._returns,
            expired=self._aged,
            name=self._name,
            idle_bytes=sum(c * s for c, s in zip(counts, self._sizes, strict=True)),
            idle_by_class=tuple(zip(self._sizes, counts, strict=True)),
        )

    def close(self) -> None:
        """Drop the idle buffers and end the pool. Idempotent.

        Afterwards :meth:`get` and :meth:`borrow` raise
        :class:`~poolkit.PoolClosed`, and a buffer given back (by :meth:`put`
        or at the end of a ``with pool.borrow()`` block) is dropped, counted
        in ``dropped_closed``: a late return is not an error.
        """
        self._closed = True
        self._plain = False
        self._fast_return = False
        # A return filing right now (a few operations under the lock) may
        # still file after the marks; waiting for the lock lets clear() take
        # its buffer too. If the holder is this very thread (see
        # held_briefly), that one buffer stays idle, never handed out.
        with held_briefly(self._lock):
            self.clear()

    def __enter__(self) -> BufferPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the pool when the ``with`` block ends."""
        self.close()

    def __repr__(self) -> str:
        counts = [len(idle) for idle in self._idle]
        idle_bytes = sum(c * s for c, s in zip(counts, self._sizes, strict=True))
        budget = "no limit" if self._max_idle_bytes is None else human_size(self._budget)
        span = f"{human_size(self._min)}..{human_size(self._max)}"
        closed = " closed" if self._closed else ""
        return (
            f"<BufferPool{closed} {len(self._sizes)} classes {span}"
            f" | idle {sum(counts)} buffers, {human_size(idle_bytes)} of {budget}"
            f" | hits {self._hits}, misses {self._misses}, oversize {self._oversize}"
            f", dropped {self._dropped_budget + self._dropped_class_full}"
            f", released {self._evicted + self._aged}>"
        )

    # -- internals -----------------------------------------------------------

    def _take(self, index: int) -> bytearray:
        """Pop an idle buffer of class ``index``, or allocate one."""
        idle = self._idle[index]
        if not idle:
            return self._allocate(index)
        # Counted taken before the pop, with no call between the test, the
        # count and the pop (see the module notes).
        size = self._sizes[index]
        self._taken_bytes += size
        try:
            buf = idle.pop()
        except IndexError:  # emptied since the test: free-threaded builds only
            self._taken_bytes -= size
            return self._allocate(index)
        self._claims.pop(id(buf), None)
        self._hits += 1
        if not self._plain:
            self._prepare(buf, index, len(idle))
        return buf

    def _prepare(self, buf: bytearray, index: int, left: int) -> None:
        """What a take does past the pop when the pool is not plain: aging, zeroing.

        Raises:
            PoolClosed: the pool was closed (``buf`` was filed by a return
                racing with ``close()``; it is dropped).
        """
        if self._closed:
            raise self._closed_error()
        if self._max_idle_time is not None:
            self._age(index, left)
        if self._zero:
            template = self._zero_templates[index]
            if template.__class__ is bytearray:
                buf[:] = template  # same length: one memcpy, no temporary
            else:
                with memoryview(buf) as target:
                    target[:] = template

    def _allocate(self, index: int) -> bytearray:
        """A new buffer of class ``index``, for a take that found no idle one.

        Raises:
            PoolClosed: the pool was closed.
        """
        if self._closed:
            raise self._closed_error()
        self._misses += 1
        if self._max_idle_time is not None:
            self._age(index, 0)
        size = self._sizes[index]
        # One spare byte of capacity, so the export probe's append on
        # return fits without a realloc (a plain bytearray(size) would be
        # over-allocated by ~12 % on its first probe).
        buf = bytearray(size + 1)
        del buf[size:]
        return buf

    def _fresh(self, n: int) -> bytearray:
        """An unpooled buffer for a request above ``max_size``."""
        if self._closed:
            raise self._closed_error()
        self._oversize += 1
        return bytearray(n)

    def _closed_error(self) -> PoolClosed:
        return PoolClosed("a buffer from a closed BufferPool; create a new pool")

    def _age(self, index: int, left: int) -> None:
        """Aging, on every take: track the low watermark; sweep when due.

        Takes pop from the right of a class deque and returns append there, so
        while a class never held fewer than ``low`` idle buffers, its ``low``
        leftmost buffers were not touched. A sweep every ``max_idle_time``
        releases exactly those: each was idle for a whole interval. A racing
        update of ``_low`` can only make one sweep release less.
        """
        if left < self._low[index]:
            self._low[index] = left
        # The clock (user code when injected) is read before the lock is
        # taken: nothing runs user code while holding it.
        now = self._clock()
        if now < self._next_sweep:
            return
        token = self._token
        try:
            del token[0]  # the lock, taken without waiting (see TokenLock)
        except IndexError:
            return
        try:
            interval = self._max_idle_time
            if now < self._next_sweep or interval is None:
                return  # another thread swept first
            self._next_sweep = now + interval
            for i, (size, idle) in enumerate(zip(self._sizes, self._idle, strict=True)):
                for _ in range(min(self._low[i], len(idle))):
                    try:
                        victim = idle.popleft()
                    except IndexError:
                        break
                    self._claims.pop(id(victim), None)
                    self._filed_bytes -= size
                    self._aged += 1
                self._low[i] = len(idle)
        finally:
            token.append(True)

    def _take_back(self, buf: bytearray, index: int, loan_view: memoryview | None) -> None:
        """Claim, probe and file a returned buffer of class ``index``.

        The one return path of :meth:`put` (``loan_view`` None) and of a
        loan's ``with`` block (``loan_view``: the loan's view, released). A
        buffer already idle is refused either way. A buffer with a live export
        (memoryview) is refused from :meth:`put`, where the caller still holds
        it; after a loan it is dropped instead: the with block is over, and a
        view sliced from the loan outlived it.

        Raises:
            ReleaseError: returned twice; or, from ``put``, views still alive.
        """
        size = len(buf)
        key = id(buf)
        # The claim marker must be this caller's alone (a fresh list), and it
        # holds the buffer: a claim left behind by a take cut short between
        # its pop and its unclaim (a KeyboardInterrupt there) keeps its
        # buffer alive, so that buffer's id is never reused by another one,
        # which the stale claim would refuse as "returned twice".
        marker = [buf]
        try:
            if self._claims.setdefault(key, marker) is not marker:
                self._refused += 1
                if loan_view is not None:
                    raise ReleaseError(
                        f"the borrowed {size}-byte buffer was already put back inside its "
                        f"with block; leave the returning to the with block"
                    )
                raise ReleaseError(
                    f"this {size}-byte buffer is already idle in the pool (returned twice); "
                    f"put each buffer from get() back once"
                )
            # The export probe: resizing a bytearray with a live export
            # (memoryview) raises BufferError. Growing by one byte and
            # shrinking back is the cheapest resize (~40 ns; the spare byte
            # from _take means no realloc) and leaves the contents as they
            # were. Same-size assignments and extend(b"") skip the check, so
            # they cannot serve as the probe.
            try:
                buf.append(0)
            except BufferError:
                del self._claims[key]
                if loan_view is not None:
                    self._dropped_in_use += 1
                    return
                self._refused += 1
                raise ReleaseError(
                    f"cannot take back a {size}-byte buffer while memoryviews into it are "
                    f"alive; call view.release() (or use them in a with block) before put()"
                ) from None
            buf.pop()
        except BaseException:
            # Refused, or an asynchronous exception (KeyboardInterrupt) landing
            # anywhere up to here: the buffer stays with the caller as it
            # came, and no claim of this call's is left behind (a stale claim
            # would refuse the next buffer given this id).
            if len(buf) > size:
                del buf[size:]
            if self._claims.get(key) is marker:
                del self._claims[key]
            raise
        token = self._token
        try:
            # The lock, taken without waiting, and without a call: no thread
            # switch can fall between taking it and the section (module notes).
            del token[0]
        except IndexError:
            del self._claims[key]
            self._contended_puts += 1
            return
        try:
            filed = self._filed_bytes + size
            if self._fast_return and filed - self._taken_bytes <= self._budget:
                # The common case of _file, inlined: every return takes this path.
                self._filed_bytes = filed
                self._idle[index].append(buf)
                self._returns += 1
            else:
                self._file(buf, index, size, key)
        except BaseException:
            # An asynchronous exception (KeyboardInterrupt) in the slow path
            # may land before the buffer is filed: then forget its claim. A
            # scan, on this path only.
            if not any(idle_buf is buf for idle_buf in self._idle[index]):
                self._claims.pop(key, None)
            raise
        finally:
            token.append(True)

    def _file(self, buf: bytearray, index: int, size: int, key: int) -> None:
        """File a claimed, probed buffer in its class, within the limits (lock held)."""
        if self._closed:
            del self._claims[key]
            self._dropped_closed += 1
            return
        idle = self._idle[index]
        per_class = self._max_idle_per_class
        if per_class is not None and len(idle) >= per_class:
            del self._claims[key]
            self._dropped_class_full += 1
            return
        filed = self._filed_bytes + size
        if filed - self._taken_bytes <= self._budget:
            self._filed_bytes = filed
        elif not self._make_room(index, size):
            del self._claims[key]
            self._dropped_budget += 1
            return
        idle.append(buf)
        self._returns += 1

    def _make_room(self, index: int, size: int) -> bool:
        """Slow path of a return over budget: recount, evict larger, reserve ``size``.

        Runs under the lock. Returns whether ``size`` bytes were reserved in
        the counter.
        """
        if size > self._budget:
            return False
        idle_bytes = self._recount()
        # Evict from the largest class down, never from this class or a
        # smaller one: dropping the returned buffer instead costs the same
        # or fewer bytes, and small hot buffers must not be starved by a
        # burst of large cold ones.
        larger = len(self._sizes) - 1
        while idle_bytes + size > self._budget and larger > index:
            try:
                victim = self._idle[larger].popleft()  # the coldest
            except IndexError:
                larger -= 1
                continue
            self._claims.pop(id(victim), None)
            idle_bytes -= self._sizes[larger]
            self._filed_bytes -= self._sizes[larger]
            self._evicted += 1
            # The evicted buffer was one of the untouched leftmost ones.
            self._low[larger] = max(0, self._low[larger] - 1)
        if idle_bytes + size > self._budget:
            return False
        self._filed_bytes += size
        return True

    def _recount(self) -> int:
        """Under the lock: count the idle bytes, rebase ``_filed_bytes`` on them.

        Returns the count (an upper bound while takes pop: see the module notes).
        """
        idle_bytes = sum(
            len(idle) * size for idle, size in zip(self._idle, self._sizes, strict=True)
        )
        # Read after the count, never before: see the module notes.
        self._filed_bytes = idle_bytes + self._taken_bytes
        return idle_bytes


def _wrong_type(buf: object) -> str:
    kind = type(buf).__name__
    if isinstance(buf, memoryview):
        hint = "a view from borrow() goes back by leaving its with block"
    elif isinstance(buf, bytes):
        hint = "bytes are immutable and never come from the pool"
    else:
        hint = "put back the bytearray that get() returned"
    return f"buf must be a bytearray from get(), got {kind}; {hint}"
