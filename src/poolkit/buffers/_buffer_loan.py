"""BufferLoan: the context manager behind :meth:`BufferPool.borrow`.

It inlines the hit path of ``BufferPool._take`` because ``borrow`` is the hot
API, and returns through ``BufferPool._take_back``, the return path ``put``
takes too; the invariants it keeps are those stated in ``_buffer_pool.py``
(exact-size filing, one claim per idle buffer, no idle buffer with a live
export).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poolkit.buffers._buffer_pool import BufferPool

__all__ = ["BufferLoan"]

# A loan's _index is its state as well: a class index (>= 0) or _OVERSIZE
# while it holds a buffer, else one of the two markers below. One slot instead
# of two saves a store on each of __init__, __enter__ and __exit__.
_OVERSIZE = -1
_RETURNED = -2
_NOT_ENTERED = -3
# What a returned loan holds instead of its buffer, so that a loan kept by
# its caller does not keep a buffer the pool dropped alive. (A store; a slot
# del costs ~30 ns more.)
_NO_BUFFER = bytearray()


class BufferLoan:
    """The context manager :meth:`BufferPool.borrow` returns (single use).

    Entering takes the buffer and yields the ``memoryview``; leaving releases
    the view and returns the buffer.
    """

    __slots__ = ("_buf", "_index", "_n", "_pool", "_view")

    _buf: bytearray
    _index: int
    _view: memoryview

    def __init__(self, pool: BufferPool, n: int) -> None:
        self._pool = pool
        self._n = n
        self._index = _NOT_ENTERED

    def __enter__(self) -> memoryview:
        """Take the buffer; return a view of exactly ``n`` bytes.

        Raises:
            RuntimeError: the loan was already entered.
            PoolClosed: the pool was closed.
        """
        if self._index != _NOT_ENTERED:
            raise RuntimeError("a borrow() is single-use; call pool.borrow(n) again")
        pool = self._pool
        n = self._n
        if n <= pool._min:
            index = 0
        elif n > pool._max:
            index = _OVERSIZE
        else:
            index = ((n - 1) // pool._min).bit_length()
        if index < 0:
            buf = pool._fresh(n)
        elif not pool._plain:
            buf = pool._take(index)  # zeroing, aging or closed
        else:
            # The hit path of BufferPool._take, inlined: borrow is the hot API.
            idle = pool._idle[index]
            if idle:
                # Counted before the pop, no call in between: see _buffer_pool.
                pool._taken_bytes += pool._sizes[index]
                try:
                    buf = idle.pop()
                except IndexError:  # emptied since the test: free-threaded only
                    pool._taken_bytes -= pool._sizes[index]
                    buf = pool._allocate(index)
                else:
                    pool._claims.pop(id(buf), None)
                    pool._hits += 1
            else:
                buf = pool._allocate(index)
        view = memoryview(buf)
        if len(buf) != n:
            # The slice shares the full view's export; that one is freed here
            # by refcount, so releasing the slice frees the buffer's export.
            view = view[:n]
        self._buf = buf
        self._index = index
        self._view = view
        return view

    # Three named parameters, not *exc_info: packing a tuple costs ~15 ns per
    # with block, and this one is on the hot path.
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        """Release the view and return the buffer to the pool."""
        index = self._index
        if index < _OVERSIZE:
            return  # not entered, or already returned
        self._index = _RETURNED
        buf = self._buf
        self._buf = _NO_BUFFER
        pool = self._pool
        view = self._view
        try:
            view.release()
        except BufferError:
            # Something re-exported the view itself (e.g. a numpy array over
            # it): the buffer stays in use, so it must not be pooled.
            pool._dropped_in_use += 1
            return
        if index >= 0:
            pool._take_back(buf, index, view)

    def __repr__(self) -> str:
        index = self._index
        state = {_NOT_ENTERED: "not entered", _RETURNED: "returned"}.get(index, "holding")
        return f"<BufferLoan {self._n} bytes, {state}>"
