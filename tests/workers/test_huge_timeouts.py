"""Timeouts of any size work, ``math.inf`` means no limit, and a worker that
dies for any reason breaks its pool loudly instead of leaving it looking
healthy.

A timeout above ``threading.TIMEOUT_MAX`` handed to a lock, queue or join
raises ``OverflowError``; every wait of the thread and asyncio pools goes
through ``poolkit._waits`` and accepts it.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, PoolBroken, WorkerPool
from poolkit.workers import FuncPool, MultiPool
from poolkit.workers import _thread_worker as tw
from tests.workers.async_helpers import double, run, sleepy
from tests.workers.conftest import PROMPT, eventually, identity, pool_threads

HUGE = [1e300, 30 * 86400.0 * 1e6, math.inf]


def _same_int(x: int) -> int:
    return x


def release_when(condition: Callable[[], bool], gate: threading.Event) -> threading.Thread:
    """Open ``gate`` once ``condition()`` holds (a background helper, bounded)."""

    def run_it() -> None:
        eventually(condition, "the waiter started waiting")
        gate.set()

    thread = threading.Thread(target=run_it)
    thread.start()
    return thread


@pytest.mark.parametrize("idle_timeout", [1e300, 30 * 86400.0, math.inf])
def test_idle_timeout_of_any_size_keeps_the_worker(idle_timeout: float) -> None:
    """A worker idling with a huge idle_timeout lives on and takes the next task."""
    with WorkerPool(2, idle_timeout=idle_timeout, thread_name_prefix="idle-huge") as wp:
        assert wp.submit(identity, 1).result(PROMPT) == 1
        eventually(lambda: wp.stats().idle == 1, "the worker went idle")
        threads = pool_threads("idle-huge")
        assert len(threads) == 1
        assert wp.submit(identity, 2).result(PROMPT) == 2
        assert threads == pool_threads("idle-huge")
        assert not wp.stats().broken


@pytest.mark.parametrize("timeout", HUGE)
def test_pool_wait_with_a_huge_timeout(timeout: float) -> None:
    gate = threading.Event()
    with WorkerPool(2) as wp:
        wp.go(gate.wait, PROMPT)
        helper = release_when(lambda: wp._core.intake.waiters == 1, gate)
        wp.wait(timeout=timeout)
        helper.join(PROMPT)
        assert wp.stats().succeeded == 1


@pytest.mark.parametrize("timeout", HUGE)
def test_future_result_and_exception_with_a_huge_timeout(timeout: float) -> None:
    gate = threading.Event()
    with WorkerPool(2) as wp:
        fut = wp.submit(lambda: gate.wait(PROMPT) and "done")
        helper = release_when(lambda: wp.stats().running == 1, gate)
        assert fut.result(timeout) == "done"
        assert fut.exception(timeout) is None
        helper.join(PROMPT)


@pytest.mark.parametrize("timeout", HUGE)
def test_stop_with_a_huge_timeout(timeout: float) -> None:
    gate = threading.Event()
    wp = WorkerPool(2, thread_name_prefix="stop-huge")
    wp.go(gate.wait, PROMPT)
    helper = release_when(lambda: wp.closed, gate)
    wp.stop(timeout=timeout)
    helper.join(PROMPT)
    assert pool_threads("stop-huge") == []


@pytest.mark.parametrize("timeout", HUGE)
def test_map_funcpool_group_and_token_with_a_huge_timeout(timeout: float) -> None:
    with WorkerPool(2) as wp:
        assert list(wp.map(identity, range(3), timeout=timeout)) == [0, 1, 2]
        g = wp.group()
        g.submit(identity, 5)
        assert g.wait(timeout=timeout) == [5]
        assert [f.result() for f in g.as_completed(timeout=timeout)] == [5]
        g.cancel()
        assert g.token.wait(timeout)
        assert wp.submit_before(timeout, identity, 7).result(PROMPT) == 7
    with FuncPool(_same_int, 2) as fp:
        assert fp.process(3, timeout=timeout) == 3
        fp.wait(timeout)
        fp.stop(timeout=timeout)
    with MultiPool(2, 1) as mp:
        mp.go(identity, 1)
        mp.wait(timeout)
        mp.stop(timeout=timeout)


@pytest.mark.parametrize("timeout", HUGE)
def test_async_pool_waits_with_a_huge_timeout(timeout: float) -> None:
    async def main() -> None:
        ap = AsyncWorkerPool(2, idle_timeout=timeout, eager=False)
        gate = asyncio.Event()
        await ap.go(gate.wait)
        waiting = asyncio.ensure_future(ap.wait(timeout=timeout))
        await asyncio.sleep(0)
        gate.set()
        await waiting
        assert [r async for r in ap.map(double, range(2), timeout=timeout)] == [0, 2]
        g = ap.group()
        await g.submit(sleepy, 4)
        assert await g.wait(timeout=timeout) == [4]
        assert [f.result() async for f in g.as_completed(timeout=timeout)] == [4]
        fut = await ap.submit_before(timeout, sleepy, 5)
        assert await fut == 5
        assert ap.stats().idle > 0
        await ap.stop(timeout=timeout)
        assert not ap.stats().broken

    run(main())


def test_a_worker_thread_that_dies_breaks_the_pool_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued futures fail with PoolBroken chained from the cause; submit raises
    it; repr and stats say broken; no thread is left behind."""
    entered = threading.Event()
    release = threading.Event()
    fault = RuntimeError("worker fault")

    def dying_wait(worker: Any) -> None:
        entered.set()
        release.wait(PROMPT)
        raise fault

    monkeypatch.setattr(tw.Worker, "wait_for_task", dying_wait)
    wp = WorkerPool(1, thread_name_prefix="dies")
    assert wp.submit(identity, 1).result(PROMPT) == 1
    assert entered.wait(PROMPT)
    queued = wp.submit(identity, 2)
    release.set()
    exc = queued.exception(PROMPT)
    assert isinstance(exc, PoolBroken)
    assert exc.__cause__ is fault
    with pytest.raises(PoolBroken) as raised:
        wp.submit(identity, 3)
    assert raised.value.__cause__ is fault
    with pytest.raises(PoolBroken):
        wp.go(identity, 3)
    assert wp.stats().broken
    assert wp.stats().closed
    assert "broken" in repr(wp)
    wp.stop(timeout=PROMPT)
    assert pool_threads("dies") == []


def test_a_worker_task_that_dies_breaks_the_async_pool_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault = RuntimeError("worker fault")

    async def main() -> None:
        ap = AsyncWorkerPool(1, eager=False)
        queued = [await ap.submit(double, 2), await ap.submit(double, 3)]

        async def dying_next_item(worker: Any) -> bool:
            raise fault

        # The worker, not started yet, takes its slow path first and dies there.
        monkeypatch.setattr(ap._crew, "next_item", dying_next_item)
        monkeypatch.setattr(ap._core, "gate", True)
        for fut in queued:
            with pytest.raises(PoolBroken) as raised:
                await fut
            assert raised.value.__cause__ is fault
        with pytest.raises(PoolBroken) as raised:
            await ap.submit(double, 3)
        assert raised.value.__cause__ is fault
        assert ap.stats().broken
        assert "broken" in repr(ap)
        await ap.stop(timeout=PROMPT)

    run(main())
