"""ByteBuffer: writes, capacity kept on reset, views, high-water, file and socket I/O."""

from __future__ import annotations

import array
import io
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poolkit import BufferExportedError, ByteBuffer, PoolError


def test_write_appends_and_returns_length() -> None:
    """write() appends and returns len(data), like io.BytesIO.write."""
    buf = ByteBuffer()
    assert buf.write(b"hello") == 5
    assert buf.write(bytearray(b" ")) == 1
    assert buf.write(memoryview(b"world")) == 5
    assert buf.getvalue() == b"hello world"
    assert len(buf) == 11


def test_write_large_bytes_goes_through_a_view() -> None:
    """Large writes (the memoryview path) store the same bytes as small ones."""
    data = bytes(range(256)) * 64  # 16 KiB
    buf = ByteBuffer(b"x")
    assert len(data) == buf.write(data)
    assert b"x" + data == buf.getvalue()


def test_write_accepts_any_buffer_format() -> None:
    """A non-byte buffer (array of ints) is written as its raw bytes."""
    arr = array.array("I", [1, 2, 3])
    buf = ByteBuffer()
    assert arr.itemsize * 3 == buf.write(arr)
    assert arr.tobytes() == buf.getvalue()


def test_write_str_is_refused() -> None:
    """Writing a str raises TypeError naming str (write() is io.BytesIO's own)."""
    buf = ByteBuffer()
    with pytest.raises(TypeError, match="str"):
        buf.write("text")  # type: ignore[arg-type]
    assert buf.getvalue() == b""


def test_write_str_after_a_view_says_to_encode() -> None:
    """While write() is the checking method (a view was handed out), a str gets a hint."""
    buf = ByteBuffer()
    buf.view().release()
    with pytest.raises(TypeError, match="encode"):
        buf.write("text")  # type: ignore[arg-type]


def test_write_non_buffer_raises_type_error() -> None:
    """Writing a non-bytes-like object raises TypeError."""
    with pytest.raises(TypeError):
        ByteBuffer().write(42)  # type: ignore[arg-type]


def test_writelines_write_byte_write_str() -> None:
    """writelines concatenates, write_byte appends one byte, write_str encodes."""
    buf = ByteBuffer()
    buf.writelines([b"a", b"bc", bytearray(b"d")])
    buf.write_byte(0x21)
    assert buf.write_str("é") == 2
    assert bytes(buf) == b"abcd!\xc3\xa9"


@pytest.mark.parametrize("bad", [-1, 256])
def test_write_byte_out_of_range_raises(bad: int) -> None:
    """write_byte refuses values outside range(256), naming the parameter."""
    with pytest.raises(ValueError, match="value"):
        ByteBuffer().write_byte(bad)


def test_write_byte_wrong_type_raises() -> None:
    """write_byte refuses non-int values."""
    with pytest.raises(TypeError, match="value"):
        ByteBuffer().write_byte(b"a")  # type: ignore[arg-type]


def test_write_str_wrong_type_raises() -> None:
    """write_str refuses bytes."""
    with pytest.raises(TypeError, match="text"):
        ByteBuffer().write_str(b"a")  # type: ignore[arg-type]


def test_reset_keeps_capacity_and_is_empty() -> None:
    """reset() empties the buffer but keeps every allocated byte."""
    buf = ByteBuffer()
    buf.write(b"x" * 10_000)
    capacity = buf.capacity
    buf.reset()
    assert len(buf) == 0
    assert buf.getvalue() == b""
    assert capacity == buf.capacity
    buf.write(b"y" * 10_000)
    assert capacity == buf.capacity  # no reallocation on refill


def test_set_replaces_content() -> None:
    """set() replaces the content (bytebufferpool's Set)."""
    buf = ByteBuffer(b"old content")
    buf.set(b"new")
    assert buf.getvalue() == b"new"


def test_growth_is_geometric() -> None:
    """Appending past the capacity grows it by a factor (amortised O(1) appends).

    write() grows as io.BytesIO does (by an eighth, or to the size a larger
    write needs); grow() and read_from() at least double it, as Go's append.
    """
    buf = ByteBuffer()
    capacities = set()
    for _ in range(10_000):
        buf.write(b"a")
        capacities.add(buf.capacity)
    assert len(buf) == 10_000 <= buf.capacity + 1
    assert len(capacities) < 100  # about log(10 000) / log(1.125)
    big = ByteBuffer(capacity=100)
    big.write(b"b" * 100)
    big.grow(1)
    assert big.capacity == 200
    empty = ByteBuffer()
    empty.grow(1)
    assert empty.capacity == 64
    assert big.getvalue() == b"b" * 100


def test_grow_reserves_space() -> None:
    """grow(n) makes n more bytes fit without reallocating."""
    buf = ByteBuffer(b"ab")
    buf.grow(1000)
    assert buf.capacity >= 1002
    capacity = buf.capacity
    buf.write(b"c" * 1000)
    assert capacity == buf.capacity


def test_constructor_bad_capacity() -> None:
    """capacity must be a non-negative int, and the error names it."""
    with pytest.raises(ValueError, match="capacity"):
        ByteBuffer(capacity=-1)
    with pytest.raises(TypeError, match="capacity"):
        ByteBuffer(capacity=1.5)  # type: ignore[arg-type]


def test_constructor_bad_data() -> None:
    """Initial data must be bytes-like: a str or an int is refused with TypeError."""
    with pytest.raises(TypeError):
        ByteBuffer("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ByteBuffer(5)  # type: ignore[arg-type]


def test_constructor_initial_data_and_capacity() -> None:
    """Initial data is the content; capacity is at least its length."""
    buf = ByteBuffer(b"abc", capacity=10)
    assert (buf.getvalue(), buf.capacity) == (b"abc", 10)
    assert ByteBuffer(b"abc", capacity=1).capacity == 3


def test_truncate() -> None:
    """truncate(n) keeps the first n bytes; larger or negative sizes are refused."""
    buf = ByteBuffer(b"abcdef")
    buf.truncate(2)
    assert buf.getvalue() == b"ab"
    with pytest.raises(ValueError, match="size"):
        buf.truncate(3)
    with pytest.raises(ValueError, match="size"):
        buf.truncate(-1)


def test_high_water_survives_reset() -> None:
    """high_water is the largest length since creation, even after reset()."""
    buf = ByteBuffer()
    buf.write(b"x" * 3000)
    buf.reset()
    buf.write(b"y" * 10)
    assert buf.high_water == 3000
    buf.set(b"z" * 5000)
    assert buf.high_water == 5000


def test_view_is_zero_copy_and_sized() -> None:
    """view() exposes the content without copying: writes through it are seen."""
    buf = ByteBuffer(b"hello")
    with buf.view() as v:
        assert len(v) == 5
        v[0] = ord("j")
    assert buf.getvalue() == b"jello"


def test_growing_with_live_view_raises_clear_error() -> None:
    """A live view blocks growth; the error says to release the view."""
    buf = ByteBuffer(b"abc", capacity=3)
    v = buf.view()
    with pytest.raises(BufferExportedError, match=r"release\(\)"):
        buf.write(b"more")
    assert buf.getvalue() == b"abc"  # nothing half-written
    v.release()
    buf.write(b"more")
    assert buf.getvalue() == b"abcmore"


def test_buffer_exported_error_is_a_pool_error_and_buffer_error() -> None:
    """BufferExportedError derives from PoolError and BufferError."""
    assert issubclass(BufferExportedError, PoolError)
    assert issubclass(BufferExportedError, BufferError)


def test_getvalue_is_a_copy() -> None:
    """getvalue()/bytes() copy: later writes don't change them."""
    buf = ByteBuffer(b"a" * 5000)
    first = buf.getvalue()
    small = ByteBuffer(b"abc")
    small_copy = small.bytes()
    buf.set(b"b" * 5000)
    small.set(b"xyz")
    assert (first, small_copy) == (b"a" * 5000, b"abc")


def test_read_from_file_uses_readinto(tmp_path: Path) -> None:
    """read_from reads a whole real file, appending to existing content."""
    data = bytes(range(256)) * 1000  # 256000 bytes: many doublings
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    buf = ByteBuffer(b"head:")
    with path.open("rb") as f:
        assert len(data) == buf.read_from(f)
    assert b"head:" + data == buf.getvalue()


def test_read_from_unbuffered_file(tmp_path: Path) -> None:
    """read_from works on a raw (unbuffered) file too."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"q" * 70_000)
    buf = ByteBuffer()
    with path.open("rb", buffering=0) as f:
        assert buf.read_from(f) == 70_000
    assert buf.getvalue() == b"q" * 70_000


def test_read_from_limit(tmp_path: Path) -> None:
    """read_from(limit=n) stops after n bytes."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    buf = ByteBuffer()
    with path.open("rb") as f:
        assert buf.read_from(f, limit=4) == 4
    assert buf.getvalue() == b"0123"


def test_read_from_socketpair() -> None:
    """read_from reads a socket (recv_into) until the peer closes it."""
    left, right = socket.socketpair()
    payload = b"x" * 300_000

    def send() -> None:
        with left:
            left.sendall(payload)

    sender = threading.Thread(target=send)
    sender.start()
    buf = ByteBuffer()
    with right:
        assert len(payload) == buf.read_from(right)
    sender.join()
    assert payload == buf.getvalue()


def test_read_from_socket_makefile() -> None:
    """read_from reads a socket's file object (readinto)."""
    left, right = socket.socketpair()
    with left:
        left.sendall(b"abc" * 1000)
    buf = ByteBuffer()
    with right, right.makefile("rb") as f:
        assert buf.read_from(f) == 3000
    assert buf.getvalue() == b"abc" * 1000


def test_read_from_error_keeps_bytes_read() -> None:
    """A reader that fails mid-way raises; bytes read before stay in the buffer."""

    class Flaky:
        calls = 0

        def readinto(self, b: memoryview) -> int:
            self.calls += 1
            if self.calls > 1:
                raise OSError("connection reset")
            b[:3] = b"abc"
            return 3

    buf = ByteBuffer()
    with pytest.raises(OSError, match="reset"):
        buf.read_from(Flaky())
    assert buf.getvalue() == b"abc"


def test_read_from_bad_reader_and_limit() -> None:
    """read_from refuses an object without readinto/recv_into, and a negative limit."""
    with pytest.raises(TypeError, match="reader"):
        ByteBuffer().read_from(object())
    with pytest.raises(ValueError, match="limit"):
        ByteBuffer().read_from(io.BytesIO(b""), limit=-1)


def test_read_from_with_live_view_raises() -> None:
    """read_from must grow; a live view makes that a clear error."""
    buf = ByteBuffer(b"ab", capacity=2)
    v = buf.view()
    with pytest.raises(BufferExportedError):
        buf.read_from(io.BytesIO(b"cd"))
    v.release()


def test_write_to_file(tmp_path: Path) -> None:
    """write_to writes the whole content to a real file and returns its length."""
    data = b"z" * 100_000
    buf = ByteBuffer(data)
    path = tmp_path / "out.bin"
    with path.open("wb") as f:
        assert len(data) == buf.write_to(f)
    assert data == path.read_bytes()
    assert data == buf.getvalue()  # not consumed


def test_write_to_loops_on_short_writes() -> None:
    """write_to keeps writing when the writer accepts only part of the data."""

    class Trickle:
        def __init__(self) -> None:
            self.out = bytearray()

        def write(self, b: memoryview) -> int:
            self.out += b[:7]
            return min(7, len(b))

    trickle = Trickle()
    assert ByteBuffer(b"m" * 50).write_to(trickle) == 50
    assert bytes(trickle.out) == b"m" * 50


def test_write_to_refuses_a_stuck_writer() -> None:
    """A writer that accepts 0 bytes raises BlockingIOError instead of looping."""

    class Stuck:
        def write(self, b: memoryview) -> int:
            return 0

    with pytest.raises(BlockingIOError):
        ByteBuffer(b"x").write_to(Stuck())


def test_write_to_socket_uses_sendall() -> None:
    """write_to a socket sends everything with sendall."""
    left, right = socket.socketpair()
    with left, right:
        assert ByteBuffer(b"ping").write_to(left) == 4
        assert right.recv(16) == b"ping"


def test_write_to_bad_writer() -> None:
    """write_to refuses an object without write/sendall."""
    with pytest.raises(TypeError, match="writer"):
        ByteBuffer(b"x").write_to(object())


def test_repr_shows_length_and_capacity() -> None:
    """repr shows live length and capacity."""
    assert repr(ByteBuffer(b"abc", capacity=8)) == "<ByteBuffer len=3 capacity=8>"


def test_read_from_nonblocking_reader_without_data_returns_early() -> None:
    """A reader whose readinto returns None (no data now) ends read_from early."""

    class Dry:
        def readinto(self, b: memoryview) -> None:
            return None

    buf = ByteBuffer(b"kept")
    assert buf.read_from(Dry()) == 0
    assert buf.getvalue() == b"kept"


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(max_size=300)),
        st.tuples(st.just("write_big"), st.integers(min_value=8192, max_value=20000)),
        st.tuples(st.just("byte"), st.integers(min_value=0, max_value=255)),
        st.tuples(st.just("set"), st.binary(max_size=100)),
        st.tuples(st.just("reset"), st.none()),
        st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=400)),
        st.tuples(st.just("grow"), st.integers(min_value=0, max_value=5000)),
        st.tuples(st.just("view"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_matches_a_bytearray_model(ops: list[tuple[str, object]]) -> None:
    """Any sequence of operations leaves the content a plain bytearray would have.

    Also: capacity never shrinks, and high_water is the largest length seen.
    """
    buf = ByteBuffer()
    model = bytearray()
    high = 0
    capacity = 0
    for op, arg in ops:
        if op == "write":
            assert isinstance(arg, bytes)
            buf.write(arg)
            model += arg
        elif op == "write_big":
            assert isinstance(arg, int)
            data = bytes([arg % 251]) * arg
            buf.write(data)
            model += data
        elif op == "byte":
            assert isinstance(arg, int)
            buf.write_byte(arg)
            model.append(arg)
        elif op == "set":
            assert isinstance(arg, bytes)
            buf.set(arg)
            model[:] = arg
        elif op == "reset":
            buf.reset()
            model.clear()
        elif op == "truncate":
            assert isinstance(arg, int)
            size = min(arg, len(model))
            buf.truncate(size)
            del model[size:]
        elif op == "grow":
            assert isinstance(arg, int)
            buf.grow(arg)
            assert buf.capacity >= len(model) + arg
        else:
            with buf.view() as view:
                assert bytes(view) == bytes(model)
        high = max(high, len(model))
        assert buf.capacity >= capacity
        capacity = buf.capacity
    assert buf.getvalue() == bytes(model)
    assert len(buf) == len(model)
    assert buf.high_water == high


def test_write_within_capacity_with_live_view_raises() -> None:
    """Any write while a view is alive raises BufferExportedError; the view's bytes stay put."""
    buf = ByteBuffer(b"abc", capacity=100)
    view = buf.view()
    with pytest.raises(BufferExportedError, match=r"release\(\)"):
        buf.write(b"d")
    buf.reset()
    with pytest.raises(BufferExportedError):
        buf.write(b"xyz")
    assert bytes(view) == b"abc"
    view.release()
    assert buf.write(b"xyz") == 3
    assert buf.getvalue() == b"xyz"


def test_write_is_a_c_method_again_after_the_view_is_released() -> None:
    """After a view, write() checks for it; once a write succeeds it is io's C write again."""
    buf = ByteBuffer()
    fast = buf.write
    buf.view().release()
    assert buf.write is not fast
    buf.write(b"a")
    assert type(buf.write) is type(fast)
    assert buf.getvalue() == b"a"


def test_getvalue_of_an_exactly_full_buffer_stays_a_private_copy() -> None:
    """Filling the storage to its last byte and calling getvalue() shares nothing for long.

    io.BytesIO.read hands out its own storage when the content fills it
    exactly; later writes, views and capacity checks must not disturb it.
    """
    buf = ByteBuffer(capacity=100)
    buf.write(b"a" * 101)  # the storage holds capacity + 1 bytes
    first = buf.getvalue()
    assert buf.capacity >= 100
    buf.reset()
    buf.write(b"b" * 101)
    with buf.view() as view:
        view[0] = ord("c")
    assert first == b"a" * 101
    assert buf.getvalue() == b"c" + b"b" * 100


def test_capacity_is_exact_after_writes_grow_the_buffer() -> None:
    """capacity reports the storage a write grew to, and reset() keeps it."""
    buf = ByteBuffer()
    buf.write(b"x" * 5000)
    grown = buf.capacity
    assert grown >= 5000
    buf.reset()
    buf.write(b"y" * grown)
    assert grown == buf.capacity
