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
only under a :class:`~poolkit._tokenlock.TokenLock` taken without waiting;
a caller that finds it held allocates (``get``) or drops (``put``) instead of
waiting, so no call ever blocks. The hot paths take it with ``del token[0]``,
with no call (no point where a ``KeyboardInterrupt`` can land) between taking
it and the ``try`` whose ``finally`` gives it back.

``close()`` (or leaving ``with pool:``) releases the idle buffers and ends the
pool: ``get`` then raises :class:`~poolkit.PoolClosed`, and a late ``put``
drops its buffer (counted in ``dropped``). Under the lock it marks the pool
closed and sets the room ``put`` checks to 0, and ``put`` files only under the
lock, so nothing is kept after ``close()`` returns; with the store empty for
good, only the miss path of ``get`` needs to look at the mark.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from poolkit import _registry
from poolkit._errors import PoolClosed, ReleaseError
from poolkit._registry import NamedClosable
from poolkit._stats import renamed
from poolkit._tokenlock import TokenLock, held_briefly
from poolkit._validate import check_int
from poolkit.buffers._bytebuffer import ByteBuffer, _check_release
from poolkit.buffers._snapshot import BufferStats, snapshot

__all__ = ["BoundedBufferPool", "BoundedPoolStats", "BytesPool", "SizedBufferPool"]

T = TypeVar("T")
P = TypeVar("P", bound="_FifoPool[Any]")


@renamed(pooled="idle", size="max_idle", rejected="refused")
@dataclass(frozen=True, slots=True)
class BoundedPoolStats(BufferStats):
    """A snapshot of a bpool-style pool.

    Field names follow docs/stats.md; the old ones (``pooled``, ``size``,
    ``rejected``) warn for one release.

    Attributes:
        idle: buffers waiting in the pool (bpool's ``NumPooled()``).
        max_idle: the most buffers it keeps (the ``size`` argument).
        hits: ``get`` calls served from the pool.
        misses: ``get`` calls that allocated (pool empty or its lock busy).
        kept: ``put`` calls that filed the buffer.
        dropped: ``put`` calls that dropped it (pool full, lock busy, or
            pool closed).
        refused: ``put`` calls refused for size (``BytesPool``: wrong width)
            or for a live ``view()`` (``ByteBuffer`` pools).
        replaced: grown buffers whose storage was replaced by a fresh
            ``alloc``-sized one (``SizedBufferPool``).

    ``idle``, ``hits`` and ``kept`` change only under the pool's lock and are
    exact; the other counters are also bumped on paths that run without the
    lock (a busy lock, a refused buffer) and may miss an increment when
    threads race.
    """

    idle: int
    max_idle: int
    hits: int
    misses: int
    kept: int
    dropped: int
    refused: int
    replaced: int
    name: str = ""


class _FifoPool(NamedClosable, Generic[T]):
    """A fixed-count, non-blocking FIFO store shared by the three pools."""

    def __init__(self, size: int, *, name: str | None = None) -> None:
        self._name = _registry.name_for(self, name)
        self._size = check_int("size", size, minimum=0)
        # The most idle items the pool may keep now: size while open, 0 once
        # closed, so put's "full?" test also refuses everything after close().
        self._room = self._size
        self._lock = TokenLock()
        self._token = self._lock.token
        self._idle: deque[T] = deque()
        self._closed = False
        self._hits = self._misses = self._kept = self._dropped = 0
        self._rejected = self._replaced = 0
        # Subclasses' own fields are set before they call this: listed complete.
        _registry.add(self)

    def _take(self) -> T | None:
        """The coldest idle item, or ``None`` (empty pool or busy lock).

        Raises:
            PoolClosed: the pool was closed (it is empty for good then).
        """
        token = self._token
        try:
            del token[0]  # the lock, taken without waiting (see TokenLock)
        except IndexError:
            self._misses += 1  # approximate: outside the lock
        else:
            try:
                if self._idle:
                    item = self._idle.popleft()
                    self._hits += 1
                    return item
                self._misses += 1
            finally:
                token.append(True)
        if self._closed:
            raise PoolClosed(f"get() on a closed {type(self).__name__}; create a new pool")
        return None

    def _file(self, item: T, unique: bool) -> bool:
        """Append ``item`` unless the pool is full or closed; whether it was kept.

        Args:
            item: what is given back.
            unique: scan the idle items for ``item`` itself first. For pools
                whose items carry no lease of their own (``BytesPool``); the
                scan is bounded by ``size``.

        Raises:
            ReleaseError: ``unique`` and ``item`` is already idle (a double put
                would hand it to two holders).
        """
        token = self._token
        try:
            del token[0]  # the lock, taken without waiting (see TokenLock)
        except IndexError:
            self._dropped += 1  # approximate: outside the lock
            return False
        try:
            idle = self._idle
            if unique:
                for idle_item in idle:
                    if idle_item is item:
                        raise ReleaseError(
                            f"this {type(item).__name__} is already back in the pool "
                            "(returned twice); put each one back exactly once"
                        )
            if len(idle) >= self._room:
                self._dropped += 1
                return False
            idle.append(item)
            self._kept += 1
            return True
        finally:
            token.append(True)

    def _has_room(self) -> bool:
        return len(self._idle) < self._room

    @property
    def size(self) -> int:
        """The most buffers the pool keeps."""
        return self._size

    def num_pooled(self) -> int:
        """How many buffers are waiting in the pool (bpool's ``NumPooled``)."""
        return len(self._idle)

    def clear(self) -> int:
        """Release every idle buffer; return how many were released."""
        with held_briefly(self._lock):
            count = len(self._idle)
            self._idle.clear()
        return count

    def close(self) -> None:
        """Release the idle buffers and end the pool. Idempotent.

        Afterwards ``get`` raises :class:`~poolkit.PoolClosed` and ``put``
        drops what it is given (a late return is not an error).
        """
        # If the lock's holder is this thread, interrupted in a put (see
        # held_briefly), that put may still file its item: it stays idle.
        with held_briefly(self._lock):
            self._closed = True
            self._room = 0
            self._idle.clear()

    def __enter__(self: P) -> P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> BoundedPoolStats:
        """A snapshot of the pool's counters."""
        with held_briefly(self._lock):
            return snapshot(
                BoundedPoolStats,
                self,
                idle=len(self._idle),
                max_idle=self._size,
                refused=self._rejected,
                name=self._name,
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
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``BoundedBufferPool-1``); see :func:`poolkit.pools`.

    Raises:
        ValueError: ``size`` is negative.
        TypeError: ``size`` is not an int.
    """

    # Capacity of a newly allocated buffer (bpool's BufferPool starts empty).
    _new_capacity = 0

    def get(self) -> ByteBuffer:
        """An empty buffer: the coldest idle one, or a new one. Never blocks.

        Raises:
            PoolClosed: the pool was closed.
        """
        buf = self._take()
        if buf is None:
            buf = ByteBuffer._for_pool(self._new_capacity, self)
        else:
            buf._lease.append(True)
        return buf

    def put(self, buf: ByteBuffer) -> None:
        """Give a buffer back (emptied; dropped when the pool is full). Never blocks.

        Raises:
            ReleaseError: ``buf`` is not from this pool, or already put back.
        """
        _check_release(buf, self, "pool")
        buf._take_back()
        if buf._exported():
            self._rejected += 1
            return
        if self._fit(buf):
            self._file(buf, False)

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
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``SizedBufferPool-1``); see :func:`poolkit.pools`.

    Raises:
        ValueError: ``size`` or ``alloc`` is negative.
        TypeError: either is not an int.
    """

    def __init__(self, size: int, alloc: int, *, name: str | None = None) -> None:
        self._alloc = check_int("alloc", alloc, minimum=0)
        self._new_capacity = self._alloc
        super().__init__(size, name=name)

    @property
    def alloc(self) -> int:
        """Capacity of new buffers, and the largest capacity kept."""
        return self._alloc

    def _fit(self, buf: ByteBuffer) -> bool:
        """Give a buffer grown past ``alloc`` fresh ``alloc``-sized storage.

        The replacement is made only when the pool has room to keep it.
        """
        if buf._cap <= self._alloc:
            return True
        if not self._has_room():  # checked again under the lock by _file
            self._dropped += 1
            return False
        buf._replace_storage(self._alloc)
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
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``BytesPool-1``); see :func:`poolkit.pools`.

    Raises:
        ValueError: ``size`` negative or ``width`` < 1.
        TypeError: either is not an int.
    """

    def __init__(self, size: int, width: int, *, name: str | None = None) -> None:
        self._width = check_int("width", width, minimum=1)
        super().__init__(size, name=name)

    @property
    def width(self) -> int:
        """The length of every array (bpool's ``Width()``)."""
        return self._width

    def get(self) -> bytearray:
        """A ``bytearray`` of ``width`` bytes (contents unspecified). Never blocks.

        Raises:
            PoolClosed: the pool was closed.
        """
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
        try:
            last = buf.pop()
        except BufferError:
            self._rejected += 1
            return False
        buf.append(last)
        return self._file(buf, True)
