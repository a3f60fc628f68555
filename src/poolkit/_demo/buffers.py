"""Demo part ``buffers``: the two classic buffer-pool pitfalls, and poolkit avoiding them.

Leak (scaled from golang/go#23199): a few concurrent requests grow their pooled
buffers to tens of MiB, then a steady stream of 1 KiB requests follows. A naive
"reset and put back" pool keeps the grown buffers forever, because the small
requests keep cycling them; poolkit's :class:`~poolkit.ByteBufferPool`
calibrates to the sizes actually used and drops the giants. Each way runs in a
child process of its own so its resident memory (RSS) can be charted cleanly.

Waste: one mix of small and large requests served by a single-size pool (every
buffer as big as the largest request) and by :class:`~poolkit.BufferPool`'s size
classes; the table compares bytes handed out with bytes requested.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from poolkit._demo._measure import rss_bytes
from poolkit._demo._report import DemoContext, Section

__all__ = ["run"]

MIB = 1 << 20
KIB = 1 << 10
# Concurrent handlers in the leak workload: each holds one buffer at a time, so
# this many buffers cycle through the pool (golang/go#23199 used 10 goroutines).
LEAK_HANDLERS = 4
# Seed of the waste workload's request mix, so every run shows the same table.
WASTE_SEED = 23199


@dataclass(frozen=True)
class LeakPlan:
    """Sizes of the leak workload (smaller with ``--quick``)."""

    burst_bytes: int
    steady_requests: int
    sample_every: int

    @classmethod
    def for_mode(cls, quick: bool) -> LeakPlan:
        if quick:
            return cls(burst_bytes=8 * MIB, steady_requests=48_000, sample_every=2_000)
        return cls(burst_bytes=32 * MIB, steady_requests=120_000, sample_every=2_000)


class NaivePool:
    """The pattern golang/go#23199 warns about: reset the buffer, put it back, keep it."""

    def __init__(self) -> None:
        from poolkit import ByteBuffer

        self._factory = ByteBuffer
        self._idle: deque[ByteBuffer] = deque()

    def get(self) -> object:
        return self._idle.pop() if self._idle else self._factory()

    def put(self, buf: object) -> None:
        buf.reset()  # type: ignore[attr-defined]
        self._idle.append(buf)  # type: ignore[arg-type]

    def retained_bytes(self) -> int:
        return sum(b.capacity for b in self._idle)


class PoolkitPool:
    """poolkit's calibrating pool behind the same three calls."""

    def __init__(self) -> None:
        from poolkit import ByteBufferPool

        self._pool = ByteBufferPool()

    def get(self) -> object:
        return self._pool.get()

    def put(self, buf: object) -> None:
        self._pool.put(buf)  # type: ignore[arg-type]

    def retained_bytes(self) -> int:
        return int(self._pool.stats().idle_bytes)


def _leak_samples(way: str, plan: LeakPlan) -> Iterator[tuple[int, int, int]]:
    """Run the leak workload one way; yield (requests served, retained, RSS)."""
    pool: NaivePool | PoolkitPool = NaivePool() if way == "naive" else PoolkitPool()
    chunk = b"x" * KIB
    # The burst: LEAK_HANDLERS requests at once, each growing its buffer.
    held = [pool.get() for _ in range(LEAK_HANDLERS)]
    big = b"\0" * MIB
    for buf in held:
        for _ in range(plan.burst_bytes // MIB):
            buf.write(big)  # type: ignore[attr-defined]
    for buf in held:
        pool.put(buf)
    del held, big
    served = LEAK_HANDLERS
    yield served, pool.retained_bytes(), rss_bytes()
    # The steady stream: the same handlers, now serving 1 KiB responses.
    while served < plan.steady_requests:
        batch = [pool.get() for _ in range(LEAK_HANDLERS)]
        for buf in batch:
            buf.write(chunk)  # type: ignore[attr-defined]
        for buf in batch:
            pool.put(buf)
        served += LEAK_HANDLERS
        if served % plan.sample_every == 0:
            yield served, pool.retained_bytes(), rss_bytes()


def _leak_child(way: str, quick: bool) -> None:
    """Child-process entry: print the leak samples as JSON lines."""
    for sample in _leak_samples(way, LeakPlan.for_mode(quick)):
        print(json.dumps(sample), flush=True)


def _run_leak_way(ctx: DemoContext, way: str, plan: LeakPlan) -> list[tuple[int, int, int]]:
    args = [sys.executable, "-m", "poolkit._demo.buffers", way, "--quick" if ctx.quick else ""]
    samples: list[tuple[int, int, int]] = []
    total = plan.steady_requests // plan.sample_every + 1
    with (
        ctx.progress(f"leak: {way} pool", total) as progress,
        subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            served, retained, rss = json.loads(line)
            samples.append((served, retained, rss))
            progress.advance()
    if child.returncode != 0 or not samples:
        raise RuntimeError(f"the {way} leak workload failed (exit code {child.returncode})")
    return samples


def _waste_requests(quick: bool) -> list[int]:
    """A request mix: mostly small, some medium, a few large."""
    rng = random.Random(WASTE_SEED)
    count = 2_000 if quick else 20_000
    sizes = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.90:
            sizes.append(rng.randint(200, 4 * KIB))
        elif roll < 0.99:
            sizes.append(rng.randint(4 * KIB, 64 * KIB))
        else:
            sizes.append(rng.randint(256 * KIB, MIB))
    return sizes


def _run_waste(ctx: DemoContext) -> tuple[int, int, int, int, int]:
    """Serve the mix both ways: (requested, naive handed out, poolkit handed out, idle...)."""
    from poolkit import BufferPool

    sizes = _waste_requests(ctx.quick)
    largest = max(sizes)
    requested = sum(sizes)
    # Naive: one size fits all, every buffer as large as the largest request.
    naive_out = largest * len(sizes)
    pool = BufferPool(min_size=512, max_size=MIB)
    handed_out = 0
    with ctx.progress("waste: size classes", len(sizes)) as progress:
        for n in sizes:
            with pool.borrow(n) as view:
                handed_out += len(view.obj)  # type: ignore[arg-type]
                view[:1] = b"\1"
            progress.advance()
    return requested, naive_out, handed_out, largest, int(pool.stats().idle_bytes)


def run(ctx: DemoContext) -> Section:
    """Run both pitfalls both ways and return the report section."""
    plan = LeakPlan.for_mode(ctx.quick)
    naive = _run_leak_way(ctx, "naive", plan)
    ours = _run_leak_way(ctx, "poolkit", plan)
    chart_retained = ctx.line_chart(
        "buffers-leak-retained.png",
        title=f"Leak: {LEAK_HANDLERS} x {plan.burst_bytes // MIB} MiB burst, then 1 KiB requests",
        xlabel="requests served",
        ylabel="bytes retained by the pool (MiB)",
        series={
            "naive reset-and-put-back pool": ([s[0] for s in naive], [s[1] / MIB for s in naive]),
            "poolkit.ByteBufferPool": ([s[0] for s in ours], [s[1] / MIB for s in ours]),
        },
    )
    chart_rss = ctx.line_chart(
        "buffers-leak-rss.png",
        title="Leak: process RSS over the same run",
        xlabel="requests served",
        ylabel="resident memory (MiB)",
        series={
            "naive reset-and-put-back pool": ([s[0] for s in naive], [s[2] / MIB for s in naive]),
            "poolkit.ByteBufferPool": ([s[0] for s in ours], [s[2] / MIB for s in ours]),
        },
    )
    requested, naive_out, pooled_out, largest, idle = _run_waste(ctx)
    chart_waste = ctx.bar_chart(
        "buffers-waste.png",
        title="Waste: bytes handed out for the same requests",
        ylabel="MiB",
        groups=["requested", "handed out"],
        series={
            "single-size pool": [requested / MIB, naive_out / MIB],
            "poolkit.BufferPool": [requested / MIB, pooled_out / MIB],
        },
    )

    def mib(n: float) -> str:
        return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / KIB:.1f} KiB"

    rows: list[list[object]] = [
        ["leak: retained after the stream", mib(naive[-1][1]), mib(ours[-1][1])],
        ["leak: RSS after the stream", mib(naive[-1][2]), mib(ours[-1][2])],
        ["waste: bytes requested", mib(requested), mib(requested)],
        ["waste: bytes handed out", mib(naive_out), mib(pooled_out)],
        [
            "waste: handed out / requested",
            f"{naive_out / requested:.1f}x",
            f"{pooled_out / requested:.2f}x",
        ],
    ]
    findings = [
        f"after the burst the naive pool keeps {mib(naive[-1][1])} for 1 KiB requests; "
        f"poolkit keeps {mib(ours[-1][1])}",
        f"size classes hand out {pooled_out / requested:.2f}x the bytes requested "
        f"(a single {largest // KIB} KiB size: {naive_out / requested:.0f}x); "
        f"the pool ends holding {mib(idle)} idle",
    ]
    return Section(
        title="Buffers: the leak and the waste",
        intro=(
            "A pool that resets buffers and puts them back keeps whatever size a burst grew them "
            "to (golang/go#23199); a pool with one buffer size hands out far more memory than "
            "small requests need. poolkit's ByteBufferPool calibrates to the sizes in use "
            "(bytebufferpool's 95th percentile, by high-water length) and BufferPool serves each "
            "request from the smallest size class that fits."
        ),
        headers=["", "naive", "poolkit"],
        rows=rows,
        findings=findings,
        charts=[
            (chart_retained, "Bytes the pool retains over time"),
            (chart_rss, "Process RSS over time (each way in its own process)"),
            (chart_waste, "Bytes handed out vs requested"),
        ],
    )


if __name__ == "__main__":
    _leak_child(sys.argv[1], "--quick" in sys.argv[2:])
