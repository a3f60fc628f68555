"""``ByteBuffer``: a growable byte buffer whose ``reset()`` keeps its memory.

Layout: an ``io.BytesIO`` (``_f``) whose *position* is the logical length.
``write`` is that object's own bound ``write`` method, stored on the instance:
``buf.write(data)`` is one C call with no Python frame, which is what lets a
pooled buffer keep up with a fresh ``BytesIO`` on small writes (a Python-level
``write`` costs 2-5x a C one). ``reset()`` only seeks back to 0: ``BytesIO``
keeps its storage then (``truncate`` would shrink it, and so would
``BytesIO.getvalue()``, which ``ByteBuffer`` never calls).

Invariants:

* ``len(buf) == _f.tell() <= `` the ``BytesIO``'s logical size ``<=`` its
  storage; bytes past ``tell()`` are garbage.
* The storage is a ``bytes`` object of ``capacity + 1`` bytes: ``BytesIO``
  grows to "new size + 1", so a buffer grown to ``n`` bytes reports a capacity
  of ``n``, as one made with ``capacity=n`` does. It is measured exactly with
  ``__sizeof__`` (see :func:`_storage_size`); ``_cap`` caches the measure and is
  still exact while the length has not passed it since (only writing past the
  storage, :meth:`ByteBuffer.grow` and :meth:`ByteBuffer.read_from` grow it,
  and the last two re-measure).
* ``_high`` is the largest length the buffer reached since it was last handed
  out, *except* for the current stretch: it is only updated when the length
  shrinks (``reset``, ``set``, ``truncate``), so writes pay nothing for it, and
  :attr:`ByteBuffer.high_water` is ``max(_high, len(buf))``.
* :meth:`ByteBuffer.view` returns a slice of ``_f.getbuffer()``; while one is
  alive ``BytesIO`` refuses every write (``BufferError``), so a view's bytes
  never change under it. After a view is handed out, ``write`` is switched to
  a Python function (:func:`_checked_write`, bound to a weak reference, so no
  reference cycle) that turns that error into a :class:`BufferExportedError`
  saying to release the view (a ``write`` fetched before the ``view()`` call
  raises io's plain ``BufferError``); it switches back once a write succeeds
  or a pool finds no view alive (``_viewed`` tells the pool to probe).
* Nothing hands out the storage itself except ``getvalue()`` in one case
  (``BytesIO.read`` returns it when the content fills it exactly); ``BytesIO``
  copies it before its next change, and :meth:`ByteBuffer._measure` before
  measuring, so the caller's ``bytes`` never changes.
* ``_lease`` holds one token while the buffer is out of a pool and none while
  it is idle in one. ``list.append``/``list.pop`` are single operations on one
  object (atomic under the GIL, and under the per-object locks of the
  free-threaded build), so a pool's put can test-and-clear it without a lock:
  of two racing puts of one buffer, exactly one pops the token.
"""

from __future__ import annotations

import builtins
import functools
import io
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from poolkit._errors import BufferExportedError, ReleaseError
from poolkit._validate import check_int, check_optional_int

if TYPE_CHECKING:  # collections.abc.Buffer exists at run time from 3.12 only
    from typing_extensions import Buffer

__all__ = ["BufferExportedError", "ByteBuffer"]

# First allocation of an empty buffer that has to grow: 64 B is bytebufferpool's
# smallest class ("2**6=64 is a CPU cache line size").
MIN_GROW = 64
_Bytes = builtins.bytes
# One-byte bytes objects for write_byte, made once.
_BYTE = tuple(_Bytes((i,)) for i in range(256))

# BytesIO.__sizeof__() is the object plus its storage's bytes object when that
# is not shared; an empty BytesIO shares the empty-bytes singleton, so its size
# is the object alone. bytes.__sizeof__() is a header (with the trailing NUL)
# plus the length.
_BYTESIO_ALONE = io.BytesIO().__sizeof__()
_BYTES_HEADER = b"".__sizeof__()


# BytesIO's methods as plain functions, for the hot paths: CPython 3.11 does
# not specialize a method lookup on a BytesIO (``f.tell``), so each one takes
# the generic path (~200 instructions); a module global and a call of the
# method descriptor are both specialized.
_tell = io.BytesIO.tell
_seek = io.BytesIO.seek
_read = io.BytesIO.read
_getbuffer = io.BytesIO.getbuffer


def _sizeof_storage(f: io.BytesIO) -> int:
    """Length of ``f``'s storage, or -1 while it is shared (see getvalue)."""
    return f.__sizeof__() - _BYTESIO_ALONE - _BYTES_HEADER


def _end_storage(f: io.BytesIO) -> int:
    """Stand-in where ``__sizeof__`` does not count the storage: its logical size."""
    pos = f.tell()
    end = f.seek(0, io.SEEK_END)
    f.seek(pos)
    return end


# Checked once: an interpreter whose BytesIO sizes differ falls back to the
# logical size, which undercounts the spare storage by at most an eighth.
_storage_size = _sizeof_storage if _sizeof_storage(io.BytesIO(_Bytes(101))) == 101 else _end_storage


def _checked_write(ref: weakref.ref[ByteBuffer], data: Buffer) -> int:
    """``ByteBuffer.write`` while a view may be alive: explains what io raises.

    Bound to a weak reference (``functools.partial``), so the buffer holding
    it is no reference cycle and is freed as soon as it is dropped.
    """
    buf = ref()
    if buf is None:  # pragma: no cover - a caller holding this holds the buffer
        raise ReferenceError("the ByteBuffer is gone")
    f = buf._f
    try:
        n = f.write(data)
    except BufferError:
        raise BufferExportedError(
            "can't write to the buffer while a view() of it is alive; call "
            "view.release() (or use 'with buf.view() as v:') first"
        ) from None
    except TypeError:
        if isinstance(data, str):
            raise TypeError("write() needs bytes-like data, got str; encode it first") from None
        raise
    # It wrote, so no view is alive now: back to the C method.
    buf.write = f.write
    return n


def _new_storage(capacity: int) -> io.BytesIO:
    """A BytesIO at position 0 owning ``capacity + 1`` zeroed bytes.

    ``BytesIO(b)`` adopts ``b`` itself; the temporary is its only other
    reference, so the storage is not shared once this returns.
    """
    return io.BytesIO(_Bytes(capacity + 1))


class ByteBuffer:
    """A growable byte buffer whose :meth:`reset` keeps its capacity.

    The Python face of valyala/bytebufferpool's ``ByteBuffer``: file-like
    writes (``write``, ``writelines``), bytebufferpool's verbs (``write_byte``,
    ``set``, ``reset``, ``read_from``, ``write_to``), copies out
    (``getvalue()``, ``bytes()``, ``bytes(buf)``) and a zero-copy
    :meth:`view`.

    ``buf.write(data)`` appends any bytes-like ``data`` and returns
    ``len(data)`` in bytes, like ``io.BytesIO.write`` (it *is* a ``BytesIO``'s
    ``write``, for speed). It raises ``TypeError`` for data that is not
    bytes-like (a ``str``: encode it, or use :meth:`write_str`), and
    :class:`BufferExportedError` while a :meth:`view` is alive.

    Args:
        data: initial content (any bytes-like object).
        capacity: bytes to allocate up front (at least ``len(data)``).

    Raises:
        TypeError: ``data`` is not bytes-like, or ``capacity`` not an int.
        ValueError: ``capacity`` is negative.
    """

    __slots__ = (
        "__weakref__",
        "_cap",
        "_checked",
        "_f",
        "_high",
        "_idle_since",
        "_lease",
        "_owner",
        "_strikes",
        "_viewed",
        "write",
    )

    write: Callable[[Buffer], int]

    def __init__(self, data: Buffer = b"", *, capacity: int = 0) -> None:
        capacity = check_int("capacity", capacity, minimum=0)
        with memoryview(data) as src:
            size = src.nbytes
            cap = max(capacity, size)
            f = _new_storage(cap)
            if size:
                f.write(src)
        self._f = f
        self.write = f.write
        self._cap = cap
        self._checked: Callable[[Buffer], int] | None = None  # see _watch_views
        # Whether a view may have escaped to the caller since the buffer was
        # handed out (view(), read_from, write_to): only then does a pool pay
        # for the export probe on put, and is write the checking method.
        self._viewed = False
        self._idle_since = 0.0  # when a pool last filed it (for max_idle_time)
        self._high = 0
        self._strikes = 0
        self._owner: object = None
        # A buffer made by hand is "out" for good; a pool replaces this.
        self._lease: list[object] = [True]

    @classmethod
    def _for_pool(cls, capacity: int, owner: object) -> ByteBuffer:
        """A new empty buffer of ``capacity`` for ``owner`` (no argument checks)."""
        buf = cls.__new__(cls)
        f = buf._f = _new_storage(capacity)
        buf.write = f.write
        buf._cap = capacity
        buf._checked = None
        buf._viewed = False
        buf._idle_since = 0.0
        buf._high = buf._strikes = 0
        buf._owner = owner
        buf._lease = [True]
        return buf

    # -- size -----------------------------------------------------------------

    def __len__(self) -> int:
        """Number of bytes written (the logical length)."""
        return _tell(self._f)

    @property
    def capacity(self) -> int:
        """Bytes allocated: how much the buffer can hold before it grows."""
        return self._measure()

    @property
    def high_water(self) -> int:
        """Largest length reached since the buffer was handed out (or created).

        A pool classifies a returned buffer by this, not by its length at
        return, so ``reset()`` before ``put()`` does not make it look unused.
        """
        return max(self._high, self._f.tell())

    @property
    def strikes(self) -> int:
        """Underused returns in a row, as counted by a ``Utilization`` policy."""
        return self._strikes

    def _measure(self) -> int:
        """The exact capacity now; also refreshes ``_cap``."""
        size = _storage_size(self._f)
        if size < 0:
            # getvalue() handed out the storage itself (BytesIO.read does
            # when the content fills it exactly): take a private copy now, as
            # the next write would, so the size is ours to count.
            self._f.getbuffer().release()
            size = _storage_size(self._f)
        cap = self._cap = max(size - 1, 0)
        return cap

    def grow(self, n: int) -> None:
        """Make room for ``n`` more bytes without a further reallocation.

        Args:
            n: bytes that must fit after the current content.

        Raises:
            ValueError: ``n`` is negative.
            BufferExportedError: a :meth:`view` is still alive.
        """
        n = check_int("n", n, minimum=0)
        needed = self._f.tell() + n
        if needed > self._measure():
            self._grow_to(needed)

    def _grow_to(self, needed: int) -> None:
        """Grow the storage (and the logical size) to at least ``needed`` bytes.

        Doubling keeps appends through read_from amortised O(1), as Go's
        append does. Writing the last byte of the new size makes ``BytesIO``
        grow to exactly that plus one (its rule for a large step), and pads
        the gap with zeros; the position is then put back.
        """
        new_cap = max(needed, 2 * self._measure(), MIN_GROW)
        self._stretch(new_cap)
        self._measure()

    # -- writing ----------------------------------------------------------------

    def writelines(self, lines: Iterable[Buffer]) -> None:
        """Append every bytes-like item of ``lines`` (no separators added).

        Raises:
            TypeError: an item is not bytes-like.
            BufferExportedError: a :meth:`view` is alive.
        """
        for line in lines:
            self.write(line)

    def write_byte(self, value: int) -> None:
        """Append one byte.

        Raises:
            ValueError: ``value`` is not in ``range(256)``.
            BufferExportedError: a :meth:`view` is alive.
        """
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"value must be an int in range(256), got {type(value).__name__}")
        if not 0 <= value < 256:
            raise ValueError(f"value must be in range(256), got {value}")
        self.write(_BYTE[value])

    def write_str(self, text: str, encoding: str = "utf-8", errors: str = "strict") -> int:
        """Append ``text`` encoded; return the number of bytes written.

        Raises:
            TypeError: ``text`` is not a ``str``.
            UnicodeEncodeError: ``text`` cannot be encoded with ``encoding``.
            BufferExportedError: a :meth:`view` is alive.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.write(text.encode(encoding, errors))

    def set(self, data: Buffer) -> None:
        """Replace the content with ``data``, keeping the capacity.

        Raises:
            TypeError: ``data`` is not bytes-like.
            BufferExportedError: a :meth:`view` is alive.
        """
        self.reset()
        self.write(data)

    def reset(self) -> None:
        """Empty the buffer; its capacity is kept (O(1), nothing is freed)."""
        f = self._f
        n = _tell(f)
        if n > self._high:
            self._high = n
        _seek(f, 0)

    def truncate(self, size: int) -> None:
        """Cut the content to its first ``size`` bytes (the capacity is kept).

        Raises:
            ValueError: ``size`` is negative or larger than ``len(buf)``.
        """
        size = check_int("size", size, minimum=0)
        f = self._f
        n = f.tell()
        if size > n:
            raise ValueError(f"size must be <= len(buf) = {n}, got {size}")
        if n > self._high:
            self._high = n
        f.seek(size)

    # -- reading out --------------------------------------------------------------

    def getvalue(self) -> _Bytes:
        """A copy of the content as ``bytes`` (like ``io.BytesIO.getvalue``)."""
        # Read back from 0; read() leaves the position at the end again. (Not
        # BytesIO.getvalue: it would cut the storage down to the content.)
        f = self._f
        n = _tell(f)
        _seek(f, 0)
        return _read(f, n)

    def bytes(self) -> _Bytes:
        """A copy of the content as ``bytes`` (same as :meth:`getvalue`)."""
        return self.getvalue()

    def __bytes__(self) -> _Bytes:
        """``bytes(buf)``: a copy of the content."""
        return self.getvalue()

    def view(self) -> memoryview:
        """A zero-copy ``memoryview`` of the content.

        The view pins the buffer's memory: release it (``view.release()``, or
        ``with buf.view() as v:``) before writing again or putting the buffer
        back. Writing with a live view raises :class:`BufferExportedError`; a
        pool drops (does not reuse) a buffer returned with a live view, so a
        forgotten view never sees another holder's data.

        Returns:
            A writable memoryview of exactly ``len(buf)`` bytes.
        """
        # _watch_views(), inlined: view() is on the hot path of zero-copy use.
        self._viewed = True
        checked = self._checked
        if checked is None:
            checked = self._checked = functools.partial(_checked_write, weakref.ref(self))
        self.write = checked
        f = self._f
        return _getbuffer(f)[: _tell(f)]

    def _watch_views(self) -> None:
        """Mark that a view may escape; make ``write`` the checking one."""
        self._viewed = True
        checked = self._checked
        if checked is None:
            checked = self._checked = functools.partial(_checked_write, weakref.ref(self))
        self.write = checked

    # -- I/O ----------------------------------------------------------------------

    def read_from(self, reader: object, limit: int | None = None) -> int:
        """Append everything ``reader`` yields until end of file; return bytes read.

        Reads with ``reader.readinto`` (files, buffered readers,
        ``socket.makefile("rb")``) or ``reader.recv_into`` (sockets) straight
        into the spare capacity, doubling it when full: no intermediate copies.
        A non-blocking reader that has no data (``readinto`` returns ``None``)
        ends the call early.

        Args:
            reader: an object with ``readinto`` or ``recv_into``.
            limit: stop after this many bytes (``None``: read to end of file).

        Returns:
            The number of bytes appended by this call.

        Raises:
            TypeError: ``reader`` has neither ``readinto`` nor ``recv_into``.
            ValueError: ``limit`` is negative.
            BufferExportedError: the buffer must grow while a :meth:`view` is alive.
            OSError: whatever the reader raises (bytes read so far are kept).
        """
        limit = check_optional_int("limit", limit, minimum=0)
        read_into = getattr(reader, "readinto", None) or getattr(reader, "recv_into", None)
        if not callable(read_into):
            raise TypeError(
                f"reader must have a readinto() or recv_into() method, got {type(reader).__name__}"
            )
        total = 0
        self._watch_views()  # the reader could keep the slice it was given
        f = self._f
        while limit is None or total < limit:
            pos = f.tell()
            end = self._spare_end()
            if limit is not None:
                end = min(end, pos + limit - total)
            # Released before the next grow, or it would fail.
            with f.getbuffer() as whole, whole[pos:end] as spare:
                got = read_into(spare)
            if not got:  # 0: end of file; None: non-blocking reader has nothing now
                break
            f.seek(pos + got)
            total += got
        return total

    def _spare_end(self) -> int:
        """Make the spare capacity readable through getbuffer(); return its end.

        ``getbuffer()`` covers the ``BytesIO``'s logical size only, so that is
        first stretched to the capacity (doubled first if the buffer is full).
        """
        f = self._f
        pos = f.tell()
        cap = self._measure()
        if pos >= cap:
            self._grow_to(pos + 1)  # also stretches the logical size
            return self._cap
        if f.seek(0, io.SEEK_END) < cap:
            self._stretch(cap)
        f.seek(pos)
        return cap

    def _stretch(self, end: int) -> None:
        """Write the byte at ``end - 1`` (the gap is zero-filled); position unchanged.

        Raises:
            BufferExportedError: a view is alive (nothing changed).
        """
        f = self._f
        pos = f.tell()
        try:
            f.seek(end - 1)
            f.write(b"\0")
        except BufferError:
            raise BufferExportedError(
                f"can't grow the buffer to {end} bytes while a view() of it is alive; "
                "call view.release() (or use 'with buf.view() as v:') first"
            ) from None
        finally:
            f.seek(pos)

    def write_to(self, writer: object) -> int:
        """Write the whole content to ``writer``; return the bytes written.

        Uses ``writer.write`` (looping on short writes, as raw files may do) or
        ``writer.sendall`` (sockets). The content is not consumed.

        Args:
            writer: an object with ``write`` or ``sendall``.

        Returns:
            ``len(buf)``.

        Raises:
            TypeError: ``writer`` has neither ``write`` nor ``sendall``.
            OSError: whatever the writer raises.
            BlockingIOError: a non-blocking writer accepted nothing.
        """
        write = getattr(writer, "write", None)
        # view() marks the buffer: the writer could keep the slice it was given.
        with self.view() as content:
            size = len(content)
            if callable(write):
                done = 0
                while done < size:
                    wrote = write(content[done:])
                    if wrote is None:  # io's convention: "all of it" for buffered writers
                        wrote = size - done
                    if wrote <= 0:
                        raise BlockingIOError(f"writer accepted 0 of {size - done} bytes")
                    done += wrote
                return done
            sendall = getattr(writer, "sendall", None)
            if not callable(sendall):
                raise TypeError(
                    f"writer must have a write() or sendall() method, got {type(writer).__name__}"
                )
            sendall(content)
            return size

    def __repr__(self) -> str:
        state = "" if self._lease else " idle in pool"
        return f"<ByteBuffer len={len(self)} capacity={self.capacity}{state}>"

    # -- pool support ----------------------------------------------------------------

    def _take_back(self) -> int:
        """Empty the buffer for a pool; return its high-water length.

        Also brings ``_cap`` up to date when the buffer grew while it was out.
        """
        f = self._f
        used = f.tell()
        f.seek(0)
        if self._high > used:
            used = self._high
        self._high = 0
        if used > self._cap:
            self._measure()
        return used

    def _exported(self) -> bool:
        """Whether a view handed out since the last get is still alive.

        Only probes when one may have escaped: an empty write, which
        ``BytesIO`` refuses while any export exists. With none left, ``write``
        is the C method again.
        """
        if not self._viewed:
            return False
        f = self._f
        try:
            f.write(b"")
        except BufferError:
            return True
        self._viewed = False
        self.write = f.write
        return False

    def _replace_storage(self, capacity: int) -> None:
        """Swap the storage for a fresh empty one of ``capacity`` (no view alive)."""
        f = self._f = _new_storage(capacity)
        self.write = f.write
        self._cap = capacity
        self._viewed = False


def _check_release(buf: object, owner: object, what: str) -> ByteBuffer:
    """Validate a buffer given back to ``owner``; take its lease token.

    Raises:
        ReleaseError: not a ByteBuffer, not from ``owner``, or already returned.
    """
    if type(buf) is not ByteBuffer:
        raise ReleaseError(f"buf must be a ByteBuffer from this {what}, got {type(buf).__name__}")
    if buf._owner is not owner:
        origin = "was made by hand" if buf._owner is None else "belongs to another pool"
        raise ReleaseError(
            f"this ByteBuffer {origin}; put() only takes buffers that this {what}'s get() "
            "handed out"
        )
    try:
        buf._lease.pop()
    except IndexError:
        raise ReleaseError(
            f"this ByteBuffer is already back in the {what} (returned twice); "
            "put each buffer back exactly once, and stop using it after put()"
        ) from None
    return buf
