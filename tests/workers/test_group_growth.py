"""Groups whose tasks add tasks: ``wait()`` waits for every member, including
those added while it waits, and no member's failure is ever dropped (a
submission that raised is a failure of the group)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, PoolClosed, ProcessPool, WorkerPool
from poolkit.workers import AsyncTaskGroup, TaskGroup
from tests.workers.async_helpers import run
from tests.workers.conftest import PROMPT, identity

# A synthetic site: page n links to pages 4n+1 .. 4n+4, 400 pages in all.
PAGES = 400
FANOUT = 4


def children(page: int) -> list[int]:
    return [c for c in range(FANOUT * page + 1, FANOUT * page + FANOUT + 1) if c < PAGES]


def test_thread_group_wait_waits_for_tasks_its_tasks_added() -> None:
    """A crawler: each page task submits its links to the group; wait returns after all 400."""
    crawled: list[int] = []
    lock = threading.Lock()
    with WorkerPool(4) as wp:
        g: TaskGroup[int] = wp.group()

        def crawl(page: int) -> int:
            with lock:
                crawled.append(page)
            for child in children(page):
                g.submit(crawl, child)
            return page

        g.submit(crawl, 0)
        results = g.wait(timeout=PROMPT)
        # Read before the pool stops: wait() alone must have covered all 400.
        done_at_return = sorted(crawled)
    assert list(range(PAGES)) == done_at_return
    assert PAGES == len(results) == len(g)
    assert list(range(PAGES)) == sorted(results)


def test_thread_group_records_a_submission_that_failed() -> None:
    """A member whose child could not be submitted (pool stopped) fails the group,
    even when the member swallowed the error."""
    release = threading.Event()
    with WorkerPool(2) as wp:
        g: TaskGroup[None] = wp.group()
        refused: list[BaseException] = []

        def parent() -> None:
            release.wait(PROMPT)
            try:
                g.submit(time.sleep, 0)
            except PoolClosed as exc:  # a careless task: swallow and carry on
                refused.append(exc)

        g.submit(parent)
        wp.stop(wait=False, cancel_pending=False)
        release.set()
        with pytest.raises(PoolClosed):
            g.wait(timeout=PROMPT)
    assert len(refused) == 1


def test_thread_group_context_exit_raises_a_dropped_submission() -> None:
    release = threading.Event()
    wp = WorkerPool(2)

    def parent(g: TaskGroup[None]) -> None:
        release.wait(PROMPT)
        with contextlib.suppress(PoolClosed):
            g.go(time.sleep, 0)

    def body() -> None:
        with wp.group() as g:
            g.go(parent, g)
            wp.stop(wait=False, cancel_pending=False)
            release.set()

    try:
        with pytest.raises(PoolClosed):
            body()
    finally:
        wp.stop(wait=True, timeout=PROMPT)


def test_async_group_wait_waits_for_tasks_its_tasks_added() -> None:
    async def main() -> tuple[list[int], list[int], int]:
        crawled: list[int] = []
        async with AsyncWorkerPool(8) as ap:
            g: AsyncTaskGroup[int] = ap.group()

            async def crawl(page: int) -> int:
                await asyncio.sleep(0)
                crawled.append(page)
                for child in children(page):
                    await g.submit(crawl, child)
                return page

            await g.submit(crawl, 0)
            results = await g.wait(timeout=PROMPT)
            done_at_return = sorted(crawled)
        return done_at_return, results, len(g)

    done_at_return, results, members = run(main())
    assert list(range(PAGES)) == done_at_return
    assert PAGES == len(results) == members
    assert list(range(PAGES)) == sorted(results)


def test_async_group_records_a_submission_that_failed() -> None:
    async def main() -> list[BaseException]:
        refused: list[BaseException] = []
        ap = AsyncWorkerPool(2)
        release = asyncio.Event()
        g: AsyncTaskGroup[None] = ap.group()

        async def parent() -> None:
            await release.wait()
            try:
                await g.submit(asyncio.sleep, 0)
            except PoolClosed as exc:
                refused.append(exc)

        await g.submit(parent)
        await ap.stop(wait=False, cancel_pending=False)
        release.set()
        with pytest.raises(PoolClosed):
            await g.wait(timeout=PROMPT)
        await ap.stop()
        return refused

    assert len(run(main())) == 1


def _process_page(page: int) -> int:
    return page


def test_process_group_wait_waits_for_tasks_added_while_it_waits() -> None:
    """Through the shared TaskGroup: members added from a done-callback during wait()."""
    with ProcessPool(2) as pp:
        g: TaskGroup[int] = pp.group()
        added = 0
        lock = threading.Lock()

        def add_children(fut: Future[int]) -> None:
            nonlocal added
            for child in children(fut.result()):
                if child < 40:
                    with lock:
                        added += 1
                    g.submit(_process_page, child).add_done_callback(add_children)

        g.submit(_process_page, 0).add_done_callback(add_children)
        results = g.wait(timeout=PROMPT * 3)
    assert list(range(40)) == sorted(results)
    assert added == 39


def _thread_round(seed: int) -> None:
    rng = random.Random(seed)
    ran: list[int] = []
    lock = threading.Lock()
    ids = iter(range(1_000_000))
    with WorkerPool(4) as wp:
        g: TaskGroup[int] = wp.group()

        def task(depth: int, me: int, fail: bool, kids: int) -> int:
            with lock:
                ran.append(me)
                plans = [(next(ids), rng.random() < 0.1, rng.randrange(4)) for _ in range(kids)]
            if depth < 4:
                for child, child_fails, grandkids in plans:
                    g.submit(task, depth + 1, child, child_fails, grandkids)
            if fail:
                raise ValueError(me)
            return me

        g.submit(task, 0, next(ids), False, 4)
        try:
            g.wait(timeout=PROMPT)
            failed = False
        except ValueError:
            failed = True
        members = list(g._futures)
        assert all(f.done() for f in members)
        outcomes = [f.exception() for f in members]
    assert len(members) == len(ran)
    assert failed == any(o is not None for o in outcomes)
    assert sorted(ran) == sorted(
        f.result() if o is None else int(str(o)) for f, o in zip(members, outcomes, strict=True)
    )


@pytest.mark.stress
def test_stress_thread_group_tasks_adding_tasks_with_random_failures() -> None:
    """Every member completed or reported: none lost, none left running by wait()."""
    deadline = time.monotonic() + 2.0
    seed = 0
    while time.monotonic() < deadline:
        seed += 1
        _thread_round(seed)
    assert seed > 1


@pytest.mark.stress
def test_stress_async_group_tasks_adding_tasks_with_random_failures() -> None:
    async def one_round(seed: int) -> None:
        rng = random.Random(seed)
        ran: list[int] = []
        ids = iter(range(1_000_000))
        async with AsyncWorkerPool(16) as ap:
            g: AsyncTaskGroup[int] = ap.group()

            async def task(depth: int, me: int, fail: bool) -> int:
                ran.append(me)
                await asyncio.sleep(0)
                if depth < 4:
                    for _ in range(rng.randrange(4)):
                        await g.submit(task, depth + 1, next(ids), rng.random() < 0.1)
                if fail:
                    raise ValueError(me)
                return me

            await g.submit(task, 0, next(ids), False)
            try:
                await g.wait(timeout=PROMPT)
                failed = False
            except ValueError:
                failed = True
            members: list[Any] = list(g._futures)
        assert all(f.done() for f in members)
        assert len(members) == len(ran)
        outcomes = [f.exception() for f in members]
        assert failed == any(o is not None for o in outcomes)

    deadline = time.monotonic() + 2.0
    seed = 0
    while time.monotonic() < deadline:
        seed += 1
        run(one_round(seed))


def test_a_done_callback_raising_a_base_exception_does_not_hang_group_or_pool_wait() -> None:
    """A user's done-callback that raises SystemExit: the Future's other callbacks
    (the group's bookkeeping among them) still run, so group.wait() returns and the
    pool's counts balance (wait() returns) instead of waiting for ever."""
    pool = WorkerPool(2)
    try:
        with pool.group() as group:
            fut = group.submit(identity, 1)
            fut.add_done_callback(lambda _f: None)
        # The group already waited on exit; now a member whose callback raises.
        group2 = pool.group()
        gate = threading.Event()
        member = group2.submit(gate.wait, PROMPT)

        def explode(_f: object) -> None:
            raise SystemExit("from a done-callback")

        member.add_done_callback(explode)
        gate.set()
        assert group2.wait(timeout=PROMPT) == [True]
        pool.wait(timeout=PROMPT)
    finally:
        pool.shutdown(wait=False)
