"""BufferLoan: the context manager behind :meth:`BufferPool.borrow`.

It inlines the hit paths of ``BufferPool._take`` and ``BufferPool._file``
because ``borrow`` is the hot API; the invariants it keeps are those stated in
``_buffer_pool.py`` (exact-size filing, one claim per idle buffer, no idle
buffer with a live export), and it falls back to the pool's own slow paths for
everything else.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from poolkit._errors import ReleaseError

if TYPE_CHECKING:
    from poolkit.buffers._buffer_pool import BufferPool

__all__ = ["BufferLoan"]


class BufferLoan:
    """The context manager :meth:`BufferPool.borrow` returns (single use).

    Entering takes the buffer and yields the ``memoryview``; leaving releases
    the view and returns the buffer.
    """

    __slots__ = ("_buf", "_index", "_n", "_pool", "_state", "_view")

    _buf: bytearray
    _index: int
    _view: memoryview

    def __init__(self, pool: BufferPool, n: int) -> None:
        self._pool = pool
        self._n = n
        self._state = 0  # 0: not entered, 1: holding, 2: done

    def __enter__(self) -> memoryview:
        """Take the buffer; return a view of exactly ``n`` bytes.

        Raises:
            RuntimeError: the loan was already entered.
        """
        if self._state:
            raise RuntimeError("a borrow() is single-use; call pool.borrow(n) again")
        pool = self._pool
        n = self._n
        if n <= pool._min:
            index = 0
        elif n > pool._max:
            index = -1
            pool._oversize += 1
        else:
            index = ((n - 1) // pool._min).bit_length()
        if index < 0:
            buf = bytearray(n)
        elif not pool._plain:
            buf = pool._take(index)  # zeroing or aging
        else:
            # The hit path of BufferPool._take, inlined: borrow is the hot API.
            try:
                buf = pool._idle[index].pop()
            except IndexError:
                buf = pool._take(index)  # allocates (or finds one returned meanwhile)
            else:
                pool._claims.pop(id(buf), None)
                pool._idle_bytes -= len(buf)
                pool._hits += 1
        view = memoryview(buf)
        if len(buf) != n:
            # The slice shares the full view's export; that one is freed here
            # by refcount, so releasing the slice frees the buffer's export.
            view = view[:n]
        self._buf = buf
        self._index = index
        self._view = view
        self._state = 1
        return view

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the view and return the buffer to the pool."""
        if self._state != 1:
            return
        self._state = 2
        buf = self._buf
        del self._buf
        pool = self._pool
        try:
            self._view.release()
        except BufferError:
            # Something re-exported the view itself (e.g. a numpy array over
            # it): the buffer stays in use, so it must not be pooled.
            pool._dropped_in_use += 1
            return
        index = self._index
        if index < 0:
            return
        key = id(buf)
        marker: list[None] = []
        if pool._claims.setdefault(key, marker) is not marker:
            pool._refused += 1
            raise ReleaseError(
                f"the borrowed {len(buf)}-byte buffer was already put back inside its "
                f"with block; leave the returning to the with block"
            )
        # The export probe of put(), inlined. A slice of the view that
        # outlives the block still holds an export: drop the buffer rather
        # than hand it to a second holder.
        try:
            buf.append(0)
        except BufferError:
            del pool._claims[key]
            pool._dropped_in_use += 1
            return
        buf.pop()
        size = len(buf)
        total = pool._idle_bytes + size
        if total <= pool._budget and pool._max_idle_per_class is None:
            # The common case of BufferPool._file, inlined.
            pool._idle_bytes = total
            pool._idle[index].append(buf)
            pool._returns += 1
        else:
            pool._file(buf, index, size, key)

    def __repr__(self) -> str:
        state = ("not entered", "holding", "returned")[self._state]
        return f"<BufferLoan {self._n} bytes, {state}>"
