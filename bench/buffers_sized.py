"""BufferPool borrow+return against allocating a fresh buffer every time.

Subjects, per size: ``poolkit`` (``with pool.borrow(n)``), ``bytearray(n)``
(malloc + memset + free) and ``bytes(n)`` (calloc + free). Each size runs
twice: in this process (glibc's default, warm heap) and in a child with
``MALLOC_MMAP_THRESHOLD_=131072``, where every block of 128 KiB or more is
mmap'd and unmapped again, so a fresh large buffer pays a page fault per
4 KiB page: the regime a long-running server lives in once glibc trims its
heap, and the default above 32 MiB. The target is >= 100x faster than
``bytearray(1 << 20)`` there.

The waste scenario records bytes: a stream of mixed small and large requests
served by one single-size pool (every buffer as large as the largest request)
against BufferPool's size classes.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

from poolkit import BufferPool
from poolkit._bench import BenchContext

KIB = 1024
MIB = 1024 * KIB
# The sizes the buffer-pool benchmark is specified at; quick mode keeps one
# small, the 1 MiB target and the largest.
SIZES: tuple[tuple[str, int], ...] = (
    ("512 B", 512),
    ("4 KiB", 4 * KIB),
    ("64 KiB", 64 * KIB),
    ("1 MiB", MIB),
    ("16 MiB", 16 * MIB),
)
QUICK_SIZES = ("4 KiB", "1 MiB", "16 MiB")
# Wall time one timed run should take: long enough to swamp timer noise,
# short enough that a 16 MiB page-faulting subject keeps --quick in seconds.
RUN_SECONDS = 0.05
QUICK_RUN_SECONDS = 0.015
# glibc mmaps every allocation at or above this many bytes when it is set
# explicitly (and stops adapting it), as the anchors' measurements did.
MMAP_THRESHOLD = "131072"
MMAP_SUFFIX = " [mmap regime]"
# The waste scenario: 90 % small requests (64 B .. 4 KiB), 10 % large
# (64 KiB .. 1 MiB), a fixed seed so every run hands out the same stream.
WASTE_REQUESTS = 5000
WASTE_SEED = 2024


def run(ctx: BenchContext) -> None:
    """Borrow+return vs fresh buffers, both heap regimes, and the waste scenario."""
    _sized(ctx, suffix="")
    ctx.run_in_child("run_mmap", {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD})
    _waste(ctx)


def run_mmap(ctx: BenchContext) -> None:
    """Child entry: the same timings with every large block mmap'd (set by the parent)."""
    _sized(ctx, suffix=MMAP_SUFFIX)


def _sized(ctx: BenchContext, *, suffix: str) -> None:
    sizes = [(label, n) for label, n in SIZES if not ctx.quick or label in QUICK_SIZES]
    pool = BufferPool(512, 16 * MIB, max_idle_bytes=64 * MIB)
    zeroing = BufferPool(512, 16 * MIB, max_idle_bytes=64 * MIB, zero=True)
    target = QUICK_RUN_SECONDS if ctx.quick else RUN_SECONDS
    for label, n in sizes:
        subjects: dict[str, Callable[[int], object]] = {
            "poolkit": _borrow_loop(pool, n),
            "bytearray(n)": _alloc_loop(bytearray, n),
            "bytes(n)": _alloc_loop(bytes, n),
        }
        bench = f"BufferPool borrow+return {label}{suffix}"
        for subject, loop in subjects.items():
            ns = ctx.time_ns_per_op(loop, _number_for(loop, target))
            ctx.record(bench, subject, "ns_per_op", ns)
        if not ctx.quick:
            # zero=True against bytearray(n), the other way to get zeroed memory.
            bench = f"BufferPool zero=True borrow+return {label}{suffix}"
            for subject, loop in (
                ("poolkit", _borrow_loop(zeroing, n)),
                ("bytearray(n)", subjects["bytearray(n)"]),
            ):
                ns = ctx.time_ns_per_op(loop, _number_for(loop, target))
                ctx.record(bench, subject, "ns_per_op", ns)
    pool.clear()
    zeroing.clear()


def _borrow_loop(pool: BufferPool, n: int) -> Callable[[int], object]:
    borrow = pool.borrow

    def loop(count: int) -> None:
        for _ in range(count):
            with borrow(n):
                pass

    return loop


def _alloc_loop(kind: Callable[[int], object], n: int) -> Callable[[int], object]:
    def loop(count: int) -> None:
        for _ in range(count):
            kind(n)

    return loop


def _number_for(loop: Callable[[int], object], seconds: float) -> int:
    """Ops per timed run so that one run takes about ``seconds``."""
    probe = 5
    start = time.perf_counter()
    loop(probe)
    per_op = max((time.perf_counter() - start) / probe, 1e-8)
    return max(5, min(1_000_000, int(seconds / per_op)))


def waste_stream(count: int = WASTE_REQUESTS, seed: int = WASTE_SEED) -> list[int]:
    """The mixed request sizes of the waste scenario."""
    rng = random.Random(seed)
    return [
        rng.randrange(64, 4 * KIB) if rng.random() < 0.9 else rng.randrange(64 * KIB, MIB)
        for _ in range(count)
    ]


def _waste(ctx: BenchContext) -> None:
    sizes = waste_stream(WASTE_REQUESTS // 5 if ctx.quick else WASTE_REQUESTS)
    bench = "waste: bytes handed out for a mixed small/large stream"
    # The naive pool: one size, as large as the largest request.
    idle: deque[bytearray] = deque()
    naive_out = 0
    for _ in sizes:
        buf = idle.pop() if idle else bytearray(MIB)
        naive_out += len(buf)
        idle.append(buf)
    pool = BufferPool(512, MIB)
    pooled_out = 0
    for n in sizes:
        with pool.borrow(n) as view:
            backing = view.obj  # the pooled buffer: what the request really holds
            assert isinstance(backing, bytearray)
            pooled_out += len(backing)
    ctx.record(bench, "poolkit", "bytes", pooled_out)
    ctx.record(bench, "single-size pool", "bytes", naive_out)
    ctx.record(bench, "bytes requested (floor)", "bytes", sum(sizes))
