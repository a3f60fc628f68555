"""BufferPool's byte budget when threads interleave inside its calls.

Each test runs one pool call at every point where another could be switched
out (see ``tests/interleave.py``), then does what a busy program does next: returns
of the largest class until the pool refuses one. No larger class can be
evicted for them, so a byte counter left below the idle bytes would let idle
bytes past the budget for good; the tests assert they never pass it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from poolkit import BufferPool
from tests.interleave import interleaved, switch_points

KIB = 1024
SIZES = (512, 1024, 2048, 4096)
LARGEST = SIZES[-1]
BUDGET = 4 * LARGEST

Step = Callable[[BufferPool], object]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(*, aging: bool = False) -> BufferPool:
    """A pool holding two idle buffers of the largest class (half its budget)."""
    clock = FakeClock()
    pool = BufferPool(
        SIZES[0],
        LARGEST,
        max_idle_bytes=BUDGET,
        max_idle_time=1.0 if aging else None,
        clock=clock,
    )
    first, second = pool.get(LARGEST), pool.get(LARGEST)
    pool.put(first)
    pool.put(second)
    if aging:
        clock.now = 5.0  # a sweep is due at the next take
    return pool


def _fill(pool: BufferPool) -> None:
    """Returns of the largest class, until the pool refuses one for the budget."""
    refused = pool.stats().dropped_budget
    for _ in range(BUDGET // LARGEST + 2):
        pool.put(bytearray(LARGEST))
    assert pool.stats().dropped_budget > refused


def _put_largest(pool: BufferPool) -> None:
    pool.put(bytearray(LARGEST))


def _get_largest(pool: BufferPool) -> None:
    pool.get(LARGEST)


def _get_smallest(pool: BufferPool) -> None:
    """A take from an empty class: a miss."""
    pool.get(SIZES[0])


def _borrow_largest(pool: BufferPool) -> None:
    with pool.borrow(LARGEST):
        pass


def _put_over_budget(pool: BufferPool) -> None:
    """A return the budget has no room for: the slow path, which recounts."""
    for _ in range(3):
        pool.put(bytearray(LARGEST))


def _put_smallest(pool: BufferPool) -> None:
    pool.put(bytearray(SIZES[0]))


def _clear(pool: BufferPool) -> None:
    pool.clear()


CASES: dict[str, tuple[Step, Step, bool]] = {
    # (the call switched out, the call that runs meanwhile, aging)
    "a return inside a get": (_get_largest, _put_largest, False),
    "a return inside a get that misses": (_get_smallest, _put_largest, False),
    "a return inside a borrow": (_borrow_largest, _put_largest, False),
    "a get inside a return": (_put_largest, _get_largest, False),
    "a return inside a return": (_put_largest, _put_largest, False),
    "a return inside an over-budget return": (_put_over_budget, _put_largest, False),
    "a small return inside an over-budget return": (_put_over_budget, _put_smallest, False),
    "a return inside a get that sweeps": (_get_largest, _put_largest, True),
    "a get inside an over-budget return": (_put_over_budget, _get_largest, False),
    "an over-budget return inside a get": (_get_largest, _put_over_budget, False),
    "an over-budget return inside a borrow": (_borrow_largest, _put_over_budget, False),
    "a return inside clear": (_clear, _put_largest, False),
    "a get inside clear": (_clear, _get_largest, False),
}


def _points(name: str) -> Iterator[int]:
    step, _other, aging = CASES[name]
    yield from range(1, switch_points(step, _pool(aging=aging)) + 1)


@pytest.mark.parametrize("name", list(CASES))
def test_no_interleaving_lets_idle_bytes_past_the_budget(name: str) -> None:
    """At every switch point of a pool call, another call landing there keeps the budget exact."""
    step, other, aging = CASES[name]
    points = list(_points(name))
    assert len(points) >= 3  # the hook sees the pool's calls at all
    for at in points:
        pool = _pool(aging=aging)
        interleaved(step, other, at, pool)
        _fill(pool)
        stats = pool.stats()
        assert stats.idle_bytes <= BUDGET, (name, at, stats)
        # The pool still serves: every idle buffer comes out, each once.
        taken = [pool.get(LARGEST) for _ in range(stats.idle_by_class[-1][1])]
        assert len({id(buf) for buf in taken}) == len(taken)
        assert pool.stats().idle_by_class[-1][1] == 0


def test_a_return_while_another_thread_holds_the_lock_is_dropped_not_filed() -> None:
    """A return never waits: with the lock held it drops its buffer, counted in contended_puts."""
    pool = _pool()
    with pool._lock:  # another thread inside the pool
        pool.put(bytearray(LARGEST))
        assert pool.get(LARGEST) is not None  # a take still pops, without waiting
    stats = pool.stats()
    assert stats.contended_puts == 1
    assert stats.idle == 1
    # The take above left the counter high, never low: the budget still holds.
    _fill(pool)
    assert pool.stats().idle_bytes == BUDGET


def test_clear_gives_the_whole_budget_back() -> None:
    """After clear(), returns fill the budget again: no idle byte it dropped stays counted."""
    pool = _pool()
    _fill(pool)
    assert pool.stats().idle_bytes == BUDGET
    assert pool.clear() == BUDGET
    _fill(pool)
    assert pool.stats().idle_bytes == BUDGET
