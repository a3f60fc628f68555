"""Size-class arithmetic for :class:`poolkit.BufferPool` (vitess ``bucketpool``).

Classes are ``min_size * 2**k`` while below ``max_size``, then one final class
of exactly ``max_size`` (vitess ``bucketpool.New``): ``(1024, 15000)`` gives
``1024, 2048, 4096, 8192, 15000`` and ``(3, 100)`` gives
``3, 6, 12, 24, 48, 96, 100``. ``min_size`` need not be a power of two.

A request of ``n`` bytes is served from the smallest class ``>= n``, so the
bytes handed out are less than twice the bytes asked for (the last class may
be closer). The lookup uses integer arithmetic only: the index of the class
for ``n`` is the bit length of ``(n - 1) // min_size``, because class ``k``
holds ``min_size * 2**k`` and ``n <= min_size * 2**k`` exactly when
``ceil(n / min_size) - 1 < 2**k``. No float ``log2`` (vitess's 2018 code used
one; float rounding near powers of two is the kind of error that files a
buffer one class off).

Returns are keyed by *exact* size (:meth:`SizeClasses.index_of_size`): a
buffer whose length is not a class size has no class. vitess instead files a
returned slice under the class its capacity rounds up to, so a 1500-byte slice
lands in the 2048 class and a later ``Get(2000)`` panics on ``buf[:2000]``
(the bug class Thanos #6934/#7206 and Tempo #1261 hit); exact-size keying
makes that impossible by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from poolkit._validate import check_int

__all__ = ["ZERO_TEMPLATE_MAX", "SizeClasses", "class_sizes", "human_size"]

# Classes up to 64 KiB get their own zero-filled bytearray template:
# ``buf[:] = template`` (same length) is one memcpy, 87 ns at 4 KiB against
# 233 ns through a memoryview target (a ``bytes`` source would be copied into a
# temporary first). Above it both cost the same (40 µs at 1 MiB), so larger
# classes share slices of one calloc'd ``bytes`` template, whose untouched
# pages add no resident memory. The per-class templates cost at most 2 x 64 KiB.
ZERO_TEMPLATE_MAX = 64 << 10


def class_sizes(min_size: int, max_size: int) -> tuple[int, ...]:
    """The class sizes for ``min_size`` and ``max_size``, smallest first.

    Args:
        min_size: the smallest class, in bytes (> 0).
        max_size: the largest class, in bytes (>= ``min_size``).

    Returns:
        ``min_size * 2**k`` for every ``k`` with that value below ``max_size``,
        then ``max_size``.

    Raises:
        TypeError: a size is not an int.
        ValueError: ``min_size <= 0`` or ``max_size < min_size``.
    """
    low = check_int("min_size", min_size, minimum=1)
    high = check_int("max_size", max_size, minimum=1)
    if high < low:
        raise ValueError(
            f"max_size must be >= min_size, got min_size={low} and max_size={high}; "
            f"raise max_size or lower min_size"
        )
    sizes: list[int] = []
    size = low
    while size < high:
        sizes.append(size)
        size <<= 1
    sizes.append(high)
    return tuple(sizes)


@dataclass(frozen=True)
class SizeClasses:
    """The size classes of one pool, with O(1) lookups both ways.

    Args:
        min_size: the smallest class, in bytes (> 0).
        max_size: the largest class, in bytes (>= ``min_size``).

    Raises:
        TypeError: a size is not an int.
        ValueError: ``min_size <= 0`` or ``max_size < min_size``.
    """

    min_size: int
    max_size: int
    sizes: tuple[int, ...] = field(init=False)
    _index_by_size: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sizes = class_sizes(self.min_size, self.max_size)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "_index_by_size", {s: i for i, s in enumerate(sizes)})

    def index_for(self, n: int) -> int | None:
        """Index of the smallest class ``>= n`` (``None`` above ``max_size``).

        ``n <= min_size`` (including 0) maps to class 0.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
        """
        n = check_int("n", n, minimum=0)
        if n <= self.min_size:
            return 0
        if n > self.max_size:
            return None
        return ((n - 1) // self.min_size).bit_length()

    def class_for(self, n: int) -> int | None:
        """The smallest class size ``>= n`` (``None`` above ``max_size``).

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
        """
        index = self.index_for(n)
        return None if index is None else self.sizes[index]

    def index_of_size(self, size: int) -> int | None:
        """Index of the class whose size is exactly ``size``, else ``None``.

        This is the lookup a return uses: never rounds up.
        """
        return self._index_by_size.get(size)

    def is_class_size(self, size: int) -> bool:
        """Whether ``size`` is exactly one of the class sizes."""
        return size in self._index_by_size

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sizes)

    def describe(self) -> str:
        """The class sizes for an error message, elided when there are many."""
        sizes = self.sizes
        if len(sizes) <= 6:
            return "classes " + ", ".join(str(s) for s in sizes)
        return f"{len(sizes)} classes {sizes[0]}, {sizes[1]}, {sizes[2]}, ... {sizes[-1]}"

    def zero_sources(self) -> list[bytearray | memoryview]:
        """A zero-filled copy source per class, as long as the class.

        A ``bytearray`` up to :data:`ZERO_TEMPLATE_MAX` (assign it with
        ``buf[:] = source``), a ``memoryview`` slice of one shared ``bytes``
        above (assign it through a memoryview of the target).
        """
        shared = memoryview(bytes(self.max_size))
        return [bytearray(s) if s <= ZERO_TEMPLATE_MAX else shared[:s] for s in self.sizes]


def human_size(size: int) -> str:
    """``size`` in the largest binary unit that divides it (``4 KiB``, ``15000 B``)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"
