"""Subpools (pond v2 ``NewSubpool``) and groups bound to a parent (``NewGroupContext``).

Threads and asyncio: a subpool's limit holds on the parent's workers, nested
limits all hold, stats follow pond's metrics, stopping a subpool leaves the
parent running, stopping the parent fails or runs every queued task (none is
left pending), under a thread hammer and a cancellation storm too.
"""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import Future

import pytest

from poolkit import (
    AsyncWorkerPool,
    CancelToken,
    PoolClosed,
    PoolDeadlock,
    ProcessPool,
    TaskCancelled,
    WorkerPool,
)
from poolkit.workers import Subpool
from poolkit.workers._thread_worker import current_pool
from tests.workers.conftest import eventually

PATIENCE = 30.0


class Gauge:
    """Counts tasks inside a section at once and remembers the most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


def test_a_subpool_runs_at_most_its_limit_on_the_parents_threads() -> None:
    with WorkerPool(4) as pool:
        sub = pool.subpool(2)
        gauge, gate = Gauge(), threading.Event()
        seen: list[object] = []

        def task() -> None:
            seen.append(current_pool())
            with gauge:
                gate.wait(PATIENCE)

        futures = [sub.submit(task) for _ in range(6)]
        eventually(lambda: sub.stats().running == 2, "two subpool tasks running")
        stats = sub.stats()
        assert (stats.running, stats.queued, stats.workers) == (2, 4, 2)
        gate.set()
        for fut in futures:
            fut.result(PATIENCE)
        assert gauge.most == 2
        assert set(seen) == {pool}  # on the parent's workers, no thread of its own
        stats = sub.stats()
        assert (stats.submitted, stats.completed, stats.succeeded, stats.queued) == (6, 6, 6, 0)


def test_nested_subpools_respect_every_limit_above() -> None:
    with WorkerPool(4) as pool:
        outer = pool.subpool(2)
        inner = outer.subpool(2)
        gauge, gate = Gauge(), threading.Event()

        def task() -> None:
            with gauge:
                gate.wait(PATIENCE)

        futures = [inner.submit(task) for _ in range(3)] + [outer.submit(task) for _ in range(3)]
        eventually(lambda: gauge.now == 2, "two tasks running")
        # The inner subpool's drain is one of the outer subpool's two tasks.
        assert outer.stats().workers == 2
        gate.set()
        for fut in futures:
            fut.result(PATIENCE)
        assert gauge.most == 2
        assert inner.stats().succeeded == 3
        # The outer subpool counts its own three tasks and each inner drain.
        assert outer.stats().succeeded >= 4


def test_subpool_stats_follow_pond_metrics_and_a_full_queue_drops() -> None:
    errors: list[BaseException] = []
    with WorkerPool(2, on_error=lambda exc, task: errors.append(exc)) as pool:
        sub = pool.subpool(1, queue_size=0)
        gate = threading.Event()
        running = sub.submit(gate.wait, PATIENCE)
        eventually(lambda: sub.stats().running == 1, "the first task running")
        assert sub.try_submit(print) is None  # no queue, no free slot
        gate.set()
        assert running.result(PATIENCE) is True
        bad = sub.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            bad.result(PATIENCE)
        sub.go(lambda: [][0])
        sub.wait(PATIENCE)
        stats = sub.stats()
        assert (stats.submitted, stats.succeeded, stats.failed, stats.completed) == (3, 1, 2, 3)
        assert (stats.overloads, stats.queued, stats.closed) == (1, 0, False)
        assert len(errors) == 1
        assert isinstance(errors[0], IndexError)


def test_stopping_a_subpool_leaves_the_parent_running() -> None:
    with WorkerPool(2) as pool:
        sub = pool.subpool(1)
        gate = threading.Event()
        first = sub.submit(gate.wait, PATIENCE)
        queued = [sub.submit(int) for _ in range(3)]
        eventually(lambda: sub.stats().running == 1, "the first task running")
        gate.set()
        sub.stop(cancel_pending=True)
        assert first.result(PATIENCE) is True
        assert all(f.cancelled() or f.result() == 0 for f in queued)
        with pytest.raises(PoolClosed, match="subpool is stopped"):
            sub.submit(int)
        assert not pool.closed
        assert pool.submit(int, "7").result(PATIENCE) == 7
        stats = sub.stats()
        assert stats.submitted == stats.completed + stats.cancelled


def test_stopping_the_parent_stops_the_subpool_and_leaves_no_future_pending() -> None:
    pool = WorkerPool(1)
    sub = pool.subpool(1)
    gate = threading.Event()
    first = sub.submit(gate.wait, PATIENCE)
    eventually(lambda: sub.stats().running == 1, "the first task running")
    other = pool.subpool(1)
    stranded = [other.submit(int) for _ in range(3)]  # its drain waits in the pool's queue
    queued = [sub.submit(int) for _ in range(3)]
    stopper = threading.Thread(target=pool.stop, kwargs={"cancel_pending": True})
    stopper.start()
    eventually(lambda: pool.closed, "the pool closed")
    gate.set()
    stopper.join(PATIENCE)
    assert first.result(PATIENCE) is True
    assert all(f.done() for f in queued + stranded)
    for fut in stranded:
        with pytest.raises(PoolClosed, match="parent pool"):
            fut.result()
    assert sub.closed
    assert other.closed
    with pytest.raises(PoolClosed, match="parent pool is stopped"):
        sub.submit(int)
    stats = other.stats()
    assert (stats.lost, stats.workers) == (3, 0)


def test_a_task_waiting_for_room_in_its_own_full_subpool_is_a_deadlock_error() -> None:
    with WorkerPool(2) as pool:
        sub = pool.subpool(1, queue_size=0)

        def nested() -> int:
            return sub.submit(int).result()  # no room: the only slot is this task's

        with pytest.raises(PoolDeadlock, match="own full queue"):
            sub.submit(nested).result(PATIENCE)
        assert sub.submit(int, "4").result(PATIENCE) == 4


def test_bad_arguments_name_the_parameter() -> None:
    with WorkerPool(2) as pool:
        with pytest.raises(ValueError, match="max_concurrency must be at most"):
            pool.subpool(3)
        with pytest.raises(ValueError, match="max_concurrency"):
            pool.subpool(0)
        with pytest.raises(ValueError, match="queue_size"):
            pool.subpool(1, queue_size=-1)
        with pytest.raises(TypeError, match="max_concurrency"):
            pool.subpool("2")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="at most the parent's limit"):
            pool.subpool(1).subpool(2)
        with pytest.raises(TypeError, match="parent must be a CancelToken or a task group"):
            pool.group(parent=object())  # type: ignore[arg-type]


def test_thread_hammer_on_nested_subpools_loses_nothing() -> None:
    with WorkerPool(4) as pool:
        outer = pool.subpool(3, queue_size=8)
        inner = outer.subpool(2, queue_size=4)
        gauge = Gauge()
        futures: list[Future[int]] = []
        lock = threading.Lock()

        def task(n: int) -> int:
            with gauge:
                if n % 7 == 0:
                    raise ValueError(n)
                return n

        def hammer(seed: int) -> None:
            rng = random.Random(seed)
            for n in range(150):
                sub: Subpool = rng.choice([outer, inner])
                fut = sub.submit(task, n)
                with lock:
                    futures.append(fut)

        threads = [threading.Thread(target=hammer, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PATIENCE)
        outer.wait(PATIENCE)
        inner.wait(PATIENCE)
        assert len(futures) == 900
        assert all(f.done() for f in futures)
        assert gauge.most <= 3
        for sub in (outer, inner):
            s = sub.stats()
            assert s.submitted == s.completed
        failed = sum(1 for f in futures if f.exception() is not None)
        assert failed == inner.stats().failed + outer.stats().failed


def test_cancellation_storm_settles_every_future_and_the_counts_add_up() -> None:
    pool = WorkerPool(3)
    subs = [pool.subpool(2), pool.subpool(1, queue_size=50)]
    futures: list[Future[bool]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                fut = rng.choice(subs).submit(threading.Event().wait, 0.0005)
            except PoolClosed:
                return
            with lock:
                futures.append(fut)

    def canceller(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            with lock:
                victims = rng.sample(futures, min(5, len(futures)))
            for fut in victims:
                fut.cancel()

    threads = [threading.Thread(target=submitter, args=(s,)) for s in range(3)]
    threads += [threading.Thread(target=canceller, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    eventually(lambda: len(futures) > 400, "a few hundred submissions")
    pool.stop(cancel_pending=True)  # in the middle of the storm
    stop.set()
    for t in threads:
        t.join(PATIENCE)
    for sub in subs:
        sub.wait(PATIENCE)
    assert all(f.done() for f in futures)
    for sub in subs:
        s = sub.stats()
        assert s.submitted == s.completed + s.cancelled + s.lost, s


# -- groups bound to a parent -------------------------------------------------


def test_cancelling_the_parent_token_cancels_the_group() -> None:
    with WorkerPool(1) as pool:
        token = CancelToken()
        gate = threading.Event()
        group = pool.group(parent=token)
        running = group.submit(gate.wait, PATIENCE)
        queued = group.submit(int)
        eventually(running.running, "the first task running")
        token.cancel(RuntimeError("shutdown"))
        assert group.token.cancelled
        assert queued.cancelled()
        gate.set()
        with pytest.raises(Exception):  # noqa: B017 - CancelledError of the queued member
            group.wait(PATIENCE)


def test_a_group_bound_to_a_cancelled_group_is_cancelled_at_once_and_nested_groups_follow() -> None:
    with WorkerPool(2) as pool:
        parent = pool.group()
        child = pool.group(parent=parent)
        grandchild = pool.group(parent=child)
        parent.cancel()
        assert child.token.cancelled
        assert grandchild.token.cancelled
        late = pool.group(parent=parent)
        assert late.token.cancelled
        fut = late.submit(int)
        assert fut.cancelled() or isinstance(fut.exception(PATIENCE), TaskCancelled)


def test_a_subpool_group_bound_to_a_token() -> None:
    with WorkerPool(2) as pool:
        sub = pool.subpool(1)
        token = CancelToken()
        with sub.group(parent=token) as group:
            futures = [group.submit(int, "3") for _ in range(2)]
        assert [f.result() for f in futures] == [3, 3]
        token.cancel()
        assert group.token.cancelled


def test_process_pool_group_follows_its_parent() -> None:
    with ProcessPool(1) as pool:
        token = CancelToken()
        group = pool.group(parent=token)
        token.cancel()
        assert group.token.cancelled


# -- asyncio --------------------------------------------------------------------


def test_async_subpool_limit_nesting_and_stats() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(4) as pool:
            outer = pool.subpool(2)
            inner = outer.subpool(2, queue_size=1)
            gauge, gate = Gauge(), asyncio.Event()

            async def task(n: int) -> int:
                with gauge:
                    await gate.wait()
                if n == 0:
                    raise ValueError(n)
                return n

            futures = [await inner.submit(task, n) for n in range(3)]
            futures += [await outer.submit(task, n) for n in range(3, 6)]
            assert await inner.try_submit(task, 9) is None  # both slots and the queue taken
            while gauge.now < 2:
                await asyncio.sleep(0.001)
            gate.set()
            results = await asyncio.gather(*futures, return_exceptions=True)
            assert isinstance(results[0], ValueError)
            assert results[1:] == [1, 2, 3, 4, 5]
            assert gauge.most == 2
            s = inner.stats()
            assert (s.submitted, s.succeeded, s.failed, s.overloads, s.queued) == (3, 2, 1, 1, 0)

    asyncio.run(main())


def test_async_parent_stop_and_cancellation_storm_leave_nothing_pending() -> None:
    async def main() -> None:
        pool = AsyncWorkerPool(2)
        subs = [pool.subpool(1), pool.subpool(2, queue_size=20)]
        rng = random.Random(5)
        futures: list[asyncio.Future[None]] = []
        for n in range(300):
            fut = await rng.choice(subs).submit(asyncio.sleep, 0.0001 * (n % 3))
            futures.append(fut)
            if n % 4 == 0:
                rng.choice(futures).cancel()
            if n == 150:
                await asyncio.sleep(0)
        await pool.stop(cancel_pending=True)
        for sub in subs:
            await sub.wait(PATIENCE)
        assert all(f.done() for f in futures)
        for sub in subs:
            s = sub.stats()
            assert s.submitted == s.completed + s.cancelled + s.lost, s
            assert sub.closed
        with pytest.raises(PoolClosed):
            await subs[0].submit(asyncio.sleep, 0)

    asyncio.run(main())


def test_async_group_follows_a_parent_cancelled_from_another_thread() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2) as pool:
            token = CancelToken()
            group = pool.group(parent=token)
            started = asyncio.Event()

            async def forever() -> None:
                started.set()
                await asyncio.sleep(PATIENCE)

            fut = await group.submit(forever)
            await started.wait()
            await asyncio.to_thread(token.cancel)
            with pytest.raises(asyncio.CancelledError):
                await fut
            assert group.token.cancelled

    asyncio.run(main())
