"""oxtoacart/bpool's three "leaky" pools, without their oversize leaks.

bpool keeps buffers in a buffered Go channel: a fixed *count*, ``Get`` never
blocks (a new buffer when empty), ``Put`` never blocks (the buffer is dropped
when full), FIFO order (the coldest buffer is reused next). The equivalents:

=========================  ===================================  =================================
bpool                      poolkit                              difference
=========================  ===================================  =================================
``NewBufferPool(size)``    :class:`BoundedBufferPool`           same; grown buffers are kept, as
                                                                in bpool (count-bounded only)
``NewBytePool(n, width)``  :class:`BytesPool`                   a ``bytearray`` whose length is
                                                                not ``width`` is refused, too
                                                                large as well as too small (bpool
                                                                keeps an oversize array resliced)
``NewSizedBufferPool``     :class:`SizedBufferPool`             the fresh ``alloc``-sized
(size, alloc)                                                   replacement for a grown buffer is
                                                                made only if the pool has room
=========================  ===================================  =================================

Concurrency: as :class:`~poolkit.ByteBufferPool`, the idle ``deque`` changes
only under a lock taken with ``acquire(blocking=False)``; a caller that finds it
held allocates (``get``) or drops (``put``) instead of waiting, so no call ever
blocks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from poolkit._errors import ReleaseError
from poolkit._validate import check_int
from poolkit.buffers._bytebuffer import ByteBuffer, _check_release

__all__ = ["BoundedBufferPool", "BoundedPoolStats", "BytesPool", "SizedBufferPool"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BoundedPoolStats:
    """A snapshot of a bpool-style pool.

    Attributes:
        pooled: buffers waiting in the pool (bpool's ``NumPooled()``).
        size: the most buffers it keeps.
        hits: ``get`` calls served from the pool.
        misses: ``get`` calls that allocated (pool empty or its lock busy).
        kept: ``put`` calls that filed the buffer.
        dropped: ``put`` calls that dropped it (pool full or lock busy).
        rejected: ``put`` calls refused for size (``BytesPool``: wrong width)
            or for a live ``view()`` (``ByteBuffer`` pools).
        replaced: grown buffers whose storage was replaced by a fresh
            ``alloc``-sized one (``SizedBufferPool``).

    ``pooled``, ``hits`` and ``kept`` change only under the pool's lock and are
    exact; the other counters are also bumped on paths that run without the
    lock (a busy lock, a refused buffer) and may miss an increment when
    threads race.
    """

    pooled: int
    size: int
    hits: int
    misses: int
    kept: int
    dropped: int
    rejected: int
    replaced: int


class _FifoPool(Generic[T]):
    """A fixed-count, non-blocking FIFO store shared by the three pools."""

    def __init__(self, size: int) -> None:
        self._size = check_int("size", size, minimum=0)
        self._lock = threading.Lock()
        self._idle: deque[T] = deque()
        self._hits = 0
        self._misses = 0
        self._kept = 0
        self._dropped = 0
        self._rejected = 0
        self._replaced = 0

    def _take(self) -> T | None:
        """The coldest idle item, or ``None`` (empty pool or busy lock)."""
        lock = self._lock
        if lock.acquire(False):
            if self._idle:
                item = self._idle.popleft()
                self._hits += 1
                lock.release()
                return item
            self._misses += 1
            lock.release()
        else:
            self._misses += 1  # approximate: outside the lock
        return None

    def _file(self, item: T) -> bool:
        """Append ``item`` unless the pool is full; whether it was kept."""
        lock = self._lock
        if not lock.acquire(False):
            self._dropped += 1  # approximate: outside the lock
            return False
        try:
            if len(self._idle) >= self._size:
                self._dropped += 1
                return False
            self._idle.append(item)
            self._kept += 1
            return True
        finally:
            lock.release()

    def _has_room(self) -> bool:
        return len(self._idle) < self._size

    @property
    def size(self) -> int:
        """The most buffers the pool keeps."""
        return self._size

    def num_pooled(self) -> int:
        """How many buffers are waiting in the pool (bpool's ``NumPooled``)."""
        return len(self._idle)

    def clear(self) -> int:
        """Release every idle buffer; return how many were released."""
        with self._lock:  # not a hot path: waiting here is fine
            count = len(self._idle)
            self._idle.clear()
        return count

    def stats(self) -> BoundedPoolStats:
        """A snapshot of the pool's counters."""
        with self._lock:
            return BoundedPoolStats(
                pooled=len(self._idle),
                size=self._size,
                hits=self._hits,
                misses=self._misses,
                kept=self._kept,
                dropped=self._dropped,
                rejected=self._rejected,
                replaced=self._replaced,
            )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} pooled={len(self._idle)}/{self._size} "
            f"hits={self._hits} misses={self._misses} dropped={self._dropped}>"
        )


class BoundedBufferPool(_FifoPool[ByteBuffer]):
    """bpool's ``BufferPool``: at most ``size`` idle :class:`ByteBuffer`, FIFO.

    ``get`` returns the coldest idle buffer, or a new empty one; ``put`` empties
    the buffer and keeps it unless ``size`` are already idle. Like bpool, a
    buffer's capacity is not checked: a grown buffer stays grown. Use
    :class:`SizedBufferPool` (or :class:`~poolkit.ByteBufferPool`) when sizes vary.

    Args:
        size: the most idle buffers kept.

    Raises:
        ValueError: ``size`` is negative.
        TypeError: ``size`` is not an int.
    """

    # Capacity of a newly allocated buffer (bpool's BufferPool starts empty).
    _new_capacity = 0

    def get(self) -> ByteBuffer:
        """An empty buffer: the coldest idle one, or a new one. Never blocks."""
        buf = self._take()
        if buf is None:
            buf = ByteBuffer(capacity=self._new_capacity)
            buf._owner = self
        else:
            buf._lease.append(True)
        return buf

    def put(self, buf: ByteBuffer) -> None:
        """Give a buffer back (emptied; dropped when the pool is full). Never blocks.

        Raises:
            ReleaseError: ``buf`` is not from this pool, or already put back.
        """
        _check_release(buf, self, "pool")
        buf._len = buf._high = 0
        if buf._exported():
            self._rejected += 1
            return
        if self._fit(buf):
            self._file(buf)

    def _fit(self, buf: ByteBuffer) -> bool:
        """Prepare a returned, emptied buffer for filing; False drops it."""
        return True


class SizedBufferPool(BoundedBufferPool):
    """bpool's ``SizedBufferPool``: ``size`` idle buffers of ``alloc`` bytes, FIFO.

    New buffers are allocated with ``alloc`` bytes of capacity. A returned
    buffer that grew beyond ``alloc`` gets fresh ``alloc``-sized storage (its
    large one is released) — but only when the pool has room to keep it;
    bpool allocates the replacement even when it is about to drop it. Choose
    ``alloc`` near the 95th percentile of written sizes (bpool's advice), or use
    :class:`~poolkit.ByteBufferPool`, which measures it.

    Args:
        size: the most idle buffers kept.
        alloc: capacity of new buffers, and the largest capacity kept.

    Raises:
        ValueError: ``size`` or ``alloc`` is negative.
        TypeError: either is not an int.
    """

    def __init__(self, size: int, alloc: int) -> None:
        super().__init__(size)
        self._alloc = check_int("alloc", alloc, minimum=0)
        self._new_capacity = self._alloc

    @property
    def alloc(self) -> int:
        """Capacity of new buffers, and the largest capacity kept."""
        return self._alloc

    def _fit(self, buf: ByteBuffer) -> bool:
        """Give a buffer grown past ``alloc`` fresh ``alloc``-sized storage.

        The replacement is made only when the pool has room to keep it.
        """
        if len(buf._buf) <= self._alloc:
            return True
        if not self._has_room():  # checked again under the lock by _file
            self._dropped += 1
            return False
        buf._mv = None  # the storage view would keep the large array alive
        buf._buf = bytearray(self._alloc)
        self._replaced += 1
        return True


class BytesPool(_FifoPool[bytearray]):
    """bpool's ``BytePool``: ``size`` idle ``bytearray`` of exactly ``width`` bytes.

    ``get`` returns the coldest idle array or a new ``bytearray(width)``
    (contents are not cleared between users). ``put`` keeps an array only if its
    length is exactly ``width``: bpool refuses too-small arrays but keeps an
    oversize one resliced to ``width``, which pins its whole allocation; a
    ``bytearray`` cannot be resliced without that cost, so it is refused too.

    Args:
        size: the most idle arrays kept.
        width: the length of every array.

    Raises:
        ValueError: ``size`` negative or ``width`` < 1.
        TypeError: either is not an int.
    """

    def __init__(self, size: int, width: int) -> None:
        super().__init__(size)
        self._width = check_int("width", width, minimum=1)

    @property
    def width(self) -> int:
        """The length of every array (bpool's ``Width()``)."""
        return self._width

    def get(self) -> bytearray:
        """A ``bytearray`` of ``width`` bytes (contents unspecified). Never blocks."""
        item = self._take()
        return bytearray(self._width) if item is None else item

    def put(self, buf: bytearray) -> bool:
        """Give an array back; return whether it was kept. Never blocks.

        An array whose length is not ``width`` is not kept (counted in
        ``rejected``), nor one with a live ``memoryview`` export.

        Raises:
            ReleaseError: ``buf`` is not a ``bytearray``, or is already idle in
                this pool (returned twice).
        """
        if type(buf) is not bytearray:
            raise ReleaseError(f"buf must be a bytearray, got {type(buf).__name__}")
        if len(buf) != self._width:
            self._rejected += 1
            return False
        # A live export would let its holder see the next user's data. Resizing
        # is the only test for one, so shrink by a byte and put the same byte
        # back: an array the pool refuses must come back untouched.
        last = buf[-1]
        try:
            del buf[-1:]
        except BufferError:
            self._rejected += 1
            return False
        buf.append(last)
        lock = self._lock
        if not lock.acquire(False):
            self._dropped += 1
            return False
        try:
            # A double put would hand one array to two holders; the identity
            # scan is bounded by ``size`` and runs only on this slow-ish path.
            for idle in self._idle:
                if idle is buf:
                    raise ReleaseError(
                        "this bytearray is already back in the pool (returned twice); "
                        "put each array back exactly once"
                    )
            if len(self._idle) >= self._size:
                self._dropped += 1
                return False
            self._idle.append(buf)
            self._kept += 1
            return True
        finally:
            lock.release()
