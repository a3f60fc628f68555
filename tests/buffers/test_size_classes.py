"""Size-class arithmetic of BufferPool: vitess bucketpool's classes, exact-size returns."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolkit import BufferPool, ReleaseError
from poolkit.buffers._size_classes import SizeClasses, class_sizes, human_size

# Bounds keep the class lists short while covering non-powers of two.
mins = st.integers(min_value=1, max_value=1 << 16)
spans = st.integers(min_value=0, max_value=1 << 24)


@st.composite
def size_classes(draw: st.DrawFn) -> SizeClasses:
    low = draw(mins)
    return SizeClasses(low, low + draw(spans))


@pytest.mark.parametrize(
    ("min_size", "max_size", "expected"),
    [
        (1024, 15000, (1024, 2048, 4096, 8192, 15000)),
        (3, 100, (3, 6, 12, 24, 48, 96, 100)),
        (1024, 2000, (1024, 2000)),
        (1024, 16384, (1024, 2048, 4096, 8192, 16384)),
        (2048, 2048, (2048,)),
    ],
)
def test_classes_match_vitess_bucketpool_examples(
    min_size: int, max_size: int, expected: tuple[int, ...]
) -> None:
    """Classes are min*2**k below max, then exactly max (vitess bucketpool.New)."""
    assert expected == class_sizes(min_size, max_size)
    assert expected == SizeClasses(min_size, max_size).sizes


def test_class_for_matches_vitess_get_examples() -> None:
    """Get(64)->1024, Get(5000)->8192, Get(16383)->16384, Get(16385) unpooled (vitess tests)."""
    classes = SizeClasses(1024, 16384)
    assert [classes.class_for(n) for n in (64, 5000, 16383, 16385)] == [1024, 8192, 16384, None]


@given(size_classes(), st.data())
def test_class_for_is_smallest_class_at_least_n(classes: SizeClasses, data: st.DataObject) -> None:
    """The class of n is the smallest class >= n; None above max_size."""
    n = data.draw(st.integers(min_value=0, max_value=classes.max_size + 1000))
    fitting = [s for s in classes.sizes if s >= n]
    expected = min(fitting) if fitting else None
    assert expected == classes.class_for(n)


@given(size_classes())
def test_every_class_lies_between_min_and_max_and_doubles(classes: SizeClasses) -> None:
    """Classes run from min_size to max_size, each below max twice the one before."""
    sizes = classes.sizes
    assert classes.min_size == sizes[0]
    assert classes.max_size == sizes[-1]
    assert all(classes.min_size <= s <= classes.max_size for s in sizes)
    assert all(b == 2 * a for a, b in itertools.pairwise(sizes[:-1]))
    assert all(a < b for a, b in itertools.pairwise(sizes))


@given(size_classes(), st.data())
def test_request_gets_less_than_twice_what_it_asked(
    classes: SizeClasses, data: st.DataObject
) -> None:
    """Size classes bound the waste: the class of n (n > min_size) is below 2 n."""
    if classes.max_size == classes.min_size:
        return  # a single class: no n above min_size to serve
    n = data.draw(st.integers(min_value=classes.min_size + 1, max_value=classes.max_size))
    size = classes.class_for(n)
    assert size is not None
    assert size < 2 * n


@given(size_classes(), st.integers(min_value=0, max_value=1 << 25))
def test_no_return_lands_in_a_wrong_class(classes: SizeClasses, size: int) -> None:
    """A returned length maps to a class only if it equals that class's size exactly."""
    index = classes.index_of_size(size)
    if index is None:
        assert size not in classes.sizes
        assert not classes.is_class_size(size)
    else:
        assert size == classes.sizes[index]
        assert classes.is_class_size(size)


def test_index_of_size_never_rounds_up() -> None:
    """The vitess hazard: a 1500-byte buffer must not be filed under the 2048 class."""
    classes = SizeClasses(1024, 16384)
    assert [classes.index_of_size(s) for s in (500, 1500, 16000)] == [None, None, None]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 10), ValueError, "min_size must be >= 1"),
        ((-5, 10), ValueError, "min_size must be >= 1"),
        ((10, 5), ValueError, "max_size must be >= min_size"),
        ((1.5, 10), TypeError, "min_size must be an int"),
        ((1, "10"), TypeError, "max_size must be an int"),
        ((True, 10), TypeError, "min_size must be an int"),
    ],
)
def test_bad_bounds_name_the_parameter(
    args: tuple[object, object], error: type[Exception], message: str
) -> None:
    """Bad min_size/max_size raise a clear error naming the parameter."""
    with pytest.raises(error, match=message):
        SizeClasses(*args)  # type: ignore[arg-type]


def test_class_for_rejects_bad_n() -> None:
    """class_for(n): negative or non-int n is an error naming n."""
    classes = SizeClasses(512, 4096)
    with pytest.raises(ValueError, match="n must be >= 0"):
        classes.class_for(-1)
    with pytest.raises(TypeError, match="n must be an int"):
        classes.class_for(2.0)  # type: ignore[arg-type]


def test_zero_maps_to_the_smallest_class() -> None:
    """n == 0 is served from the smallest class."""
    assert SizeClasses(512, 4096).class_for(0) == 512


def test_size_classes_is_a_sized_iterable() -> None:
    """len() and iteration expose the class sizes."""
    classes = SizeClasses(3, 100)
    assert len(classes) == 7
    assert list(classes) == [3, 6, 12, 24, 48, 96, 100]


@given(
    st.lists(st.integers(min_value=0, max_value=20_000), max_size=30),
    st.lists(st.integers(min_value=0, max_value=16_384), max_size=30),
)
def test_no_put_makes_a_later_get_too_small(puts: list[int], gets: list[int]) -> None:
    """Whatever lengths are put back, every later get(n) gets exactly the class of n."""
    pool = BufferPool(1024, 16384)
    for size in puts:
        with contextlib.suppress(ReleaseError):
            pool.put(bytearray(size))
    for n in gets:
        assert len(pool.get(n)) == pool.classes.class_for(n)


def test_describe_and_human_size_for_messages() -> None:
    """Error messages list few classes whole and elide many; sizes read in binary units."""
    assert SizeClasses(1024, 4096).describe() == "classes 1024, 2048, 4096"
    assert SizeClasses(512, 4 << 20).describe() == "14 classes 512, 1024, 2048, ... 4194304"
    assert [human_size(s) for s in (512, 4096, 15000, 4 << 20, 1 << 30)] == [
        "512 B",
        "4 KiB",
        "15000 B",
        "4 MiB",
        "1 GiB",
    ]
