"""map() yields a result, then drops it: while the consumer waits for the
next result, the ones it already took are not kept alive by the map
(ThreadPoolExecutor.map keeps none, bpo-27144).

Each test takes results up to a gated item, dropping its own references; a
checker thread, once the consumer is about to wait for the gated item,
collects garbage and records which taken results are still alive, then
opens the gate.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, ProcessPool, WorkerPool
from tests.workers.async_helpers import run
from tests.workers.conftest import PROMPT


class Box:
    """A weakref-able result."""

    def __init__(self, i: int) -> None:
        self.i = i


class Probe:
    """The gate and the record: which results were alive while the consumer waited."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Box]] = []
        self.asked = threading.Event()
        self.release = threading.Event()
        self.alive: list[int] | None = None
        self.on_release: Callable[[], object] | None = None

    def check_then_release(self) -> None:
        if self.asked.wait(PROMPT):
            gc.collect()
            self.alive = [i for i, ref in enumerate(self.refs) if ref() is not None]
        self.release.set()
        if self.on_release is not None:
            self.on_release()

    def take_until(self, results: Iterator[Box], gate_at: int) -> Box:
        for i in range(gate_at):
            box = next(results)
            assert i == box.i
            self.refs.append(weakref.ref(box))
            del box
        checker = threading.Thread(target=self.check_then_release)
        checker.start()
        self.asked.set()
        try:
            return next(results)  # waits for the gated item
        finally:
            checker.join(PROMPT)


@pytest.mark.parametrize(
    ("chunksize", "gate_at", "ordered", "progress"),
    [
        (1, 1, True, False),
        (1, 3, False, False),
        (4, 4, True, False),  # a whole chunk taken, then waiting for the next chunk
        (4, 8, False, False),
        (1, 2, True, True),
    ],
)
def test_thread_map_drops_results_it_yielded(
    chunksize: int, gate_at: int, ordered: bool, progress: bool
) -> None:
    probe = Probe()

    def make(i: int) -> Box:
        if i == gate_at:
            probe.release.wait(PROMPT)
        return Box(i)

    with WorkerPool(2) as wp:
        results = wp.map(
            make, range(12), chunksize=chunksize, ordered=ordered, progress=progress, buffersize=1
        )
        got = probe.take_until(results, gate_at)
        assert gate_at == got.i
        assert probe.alive == []
        del got
        assert list(range(gate_at + 1, 12)) == [b.i for b in results]


def test_async_map_drops_results_it_yielded() -> None:
    probe = Probe()

    async def make(i: int) -> Box:
        if i == 2:
            while not probe.release.is_set():
                await asyncio.sleep(0.001)
        return Box(i)

    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            results = ap.map(make, range(6), buffersize=1)
            for i in range(2):
                box = await results.__anext__()
                assert i == box.i
                probe.refs.append(weakref.ref(box))
                del box
            checker = threading.Thread(target=probe.check_then_release)
            checker.start()
            probe.asked.set()
            got = await results.__anext__()
            checker.join(PROMPT)
            assert got.i == 2
            assert probe.alive == []
            assert [b.i async for b in results] == [3, 4, 5]

    run(main())


def make_when_file(i: int, gate_at: int, gate: str) -> Box:
    """A process task: item ``gate_at`` waits (bounded) for the file ``gate``."""
    if i == gate_at:
        deadline = time.monotonic() + PROMPT
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    return Box(i)


@pytest.mark.parametrize(("chunksize", "gate_at"), [(1, 1), (4, 4)])
def test_process_map_drops_results_it_yielded(tmp_path: Path, chunksize: int, gate_at: int) -> None:
    probe = Probe()
    gate = tmp_path / "gate"
    with ProcessPool(2) as pp:
        results = pp.map(
            make_when_file,
            range(12),
            [gate_at] * 12,
            [str(gate)] * 12,
            chunksize=chunksize,
            buffersize=1,
        )
        probe.on_release = gate.touch
        got: Any = probe.take_until(results, gate_at)
        assert gate_at == got.i
        assert probe.alive == []
        del got
        assert list(range(gate_at + 1, 12)) == [b.i for b in results]
