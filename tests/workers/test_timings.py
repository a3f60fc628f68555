"""WorkerPool(timings=True): each task's queue wait and run time in stats()."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from poolkit import AsyncWorkerPool, WorkerPool
from poolkit.workers import MultiPool, WorkerPoolStats


def test_timings_are_off_by_default() -> None:
    with WorkerPool(1) as pool:
        pool.go(int)
        pool.wait()
        stats = pool.stats()
    assert (stats.queue_wait, stats.run_time) == (None, None)


def test_each_task_records_its_queue_wait_and_run_time() -> None:
    gate = threading.Event()
    with WorkerPool(1, timings=True) as pool:
        first = pool.submit(gate.wait, 30)
        second = pool.submit(int, "7")  # queued behind the first
        gate.set()
        pool.go(pow, 2, 3)
        pool.wait()
        stats = pool.stats()
    assert (first.result(), second.result()) == (True, 7)
    assert stats.queue_wait is not None
    assert stats.run_time is not None
    assert stats.queue_wait.count == stats.run_time.count == stats.completed == 3
    assert stats.queue_wait.max > 0  # the second one waited for the first
    data = stats.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["run_time"]["count"] == 3


def test_a_failed_task_is_timed_and_on_error_sees_the_task_itself() -> None:
    seen: list[object] = []

    def boom() -> None:
        raise ValueError("boom")

    with WorkerPool(1, timings=True, on_error=lambda exc, fn: seen.append(fn)) as pool:
        pool.go(boom)
        pool.wait()
        stats = pool.stats()
    assert seen == [boom]
    assert stats.run_time is not None
    assert (stats.failed, stats.run_time.count) == (1, 1)


def test_a_multipool_adds_its_sub_pools_timings() -> None:
    with MultiPool(2, 1, timings=True) as multi:
        for _ in range(4):
            multi.submit(int, "1").result()
        stats = multi.stats()
    assert stats.run_time is not None
    assert stats.run_time.count == 4


@pytest.mark.parametrize("bad", ["on", 1])
def test_timings_must_be_a_bool(bad: object) -> None:
    with pytest.raises(TypeError, match="timings"):
        WorkerPool(1, timings=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("eager", [False, True])
def test_an_async_pool_times_its_tasks_too(eager: bool) -> None:
    seen: list[object] = []

    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def boom() -> None:
        raise ValueError("boom")

    async def main() -> WorkerPoolStats:
        pool = AsyncWorkerPool(2, timings=True, eager=eager, on_error=lambda e, fn: seen.append(fn))
        async with pool:
            futures = [await pool.submit(work, i) for i in range(3)]
            assert [await f for f in futures] == [0, 1, 2]
            await pool.go(boom)
            await pool.wait()
            return pool.stats()

    stats = asyncio.run(main())
    assert seen == [boom]
    assert stats.queue_wait is not None
    assert stats.run_time is not None
    assert stats.run_time.count == stats.queue_wait.count == stats.completed == 4
