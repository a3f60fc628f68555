"""tunny's interruptible workers on FuncPool: ``Interrupt()`` on timeout or
cancellation, ``BlockUntilReady()`` before each job, a cancel token the job watches.

A thread cannot be killed: every test here gives the job a way to notice
(its worker's ``interrupt()``, or the job's token) and checks that the pool
uses it, so the worker is free again instead of busy until the job ends.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from poolkit import CancelToken, PoolTimeout, TaskCancelled
from poolkit.workers import AsyncFuncPool, FuncPool, current_token
from tests.workers.conftest import eventually

PATIENCE = 30.0


class Blocker:
    """A stateful worker whose job blocks until it is interrupted."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.started = threading.Event()
        self.readies = 0
        self.interrupts = 0
        self.closed = False

    def ready(self) -> None:
        self.readies += 1
        self.wake.clear()

    def process(self, arg: str) -> str:
        if arg != "block":
            return arg
        self.started.set()
        self.wake.wait(PATIENCE)
        return "woken"

    def interrupt(self) -> None:
        self.interrupts += 1
        self.wake.set()

    def close(self) -> None:
        self.closed = True


def blockers() -> tuple[FuncPool[Any, Any], list[Blocker]]:
    made: list[Blocker] = []

    def factory() -> Blocker:
        made.append(Blocker())
        return made[-1]

    return FuncPool.with_worker(factory, 1), made


def test_a_timeout_interrupts_the_worker_which_gets_ready_before_the_next_job() -> None:
    pool, made = blockers()
    with pool:
        with pytest.raises(PoolTimeout, match="no result within"):
            pool.process("block", timeout=0.05)
        # The worker is free again: its job returned once interrupted.
        eventually(lambda: pool.stats().running == 0, "the interrupted job to end")
        worker = made[0]
        assert worker.interrupts == 1
        assert pool.process("next", timeout=PATIENCE) == "next"
        assert worker.readies == 2  # before each job
    assert worker.closed  # tunny's Terminate when the worker exits


def test_a_cancel_token_makes_process_give_up_and_interrupts_the_worker() -> None:
    pool, made = blockers()
    with pool:
        token = CancelToken()
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                pool.process("block", cancel=token)
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        eventually(lambda: bool(made) and made[0].started.is_set(), "the job to start")
        token.cancel(RuntimeError("client went away"))
        caller.join(PATIENCE)
        assert len(outcome) == 1
        assert isinstance(outcome[0], TaskCancelled)
        assert made[0].interrupts == 1
        eventually(lambda: pool.stats().running == 0, "the interrupted job to end")


def test_a_stateless_job_watches_its_token() -> None:
    ended = threading.Event()

    def job(_: int) -> bool:
        token = current_token()
        assert token is not None
        token.wait(PATIENCE)
        ended.set()
        return token.cancelled

    with FuncPool(job, 1) as pool:
        with pytest.raises(PoolTimeout):
            pool.process(1, timeout=0.05)
        assert ended.wait(PATIENCE)
        eventually(lambda: pool.stats().running == 0, "the job to end")
    assert current_token() is None


def test_a_job_not_started_when_the_caller_gives_up_never_runs() -> None:
    calls: list[int] = []
    gate = threading.Event()

    with FuncPool(calls.append, 1) as pool:
        pool.pool.submit(gate.wait, PATIENCE)  # the only worker is busy
        with pytest.raises(PoolTimeout):
            pool.process(1, timeout=0.01)
        token = CancelToken()
        token.cancel()
        with pytest.raises(TaskCancelled):
            pool.process(2, cancel=token)
        gate.set()
        pool.wait(PATIENCE)
        assert calls == []
        assert pool.stats().cancelled == 2


def test_process_refuses_a_cancel_that_is_not_a_token() -> None:
    with FuncPool(int, 1) as pool:
        with pytest.raises(TypeError, match="cancel must be a CancelToken"):
            pool.process("1", cancel=threading.Event())  # type: ignore[arg-type]
        assert pool.process("1") == 1


# -- asyncio: AsyncFuncPool ------------------------------------------------------


class AsyncBlocker:
    """An asyncio worker whose job waits until it is interrupted."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.started = asyncio.Event()
        self.readies = 0
        self.interrupts = 0

    async def ready(self) -> None:
        self.readies += 1
        self.wake.clear()

    async def process(self, arg: str) -> str:
        if arg != "block":
            return arg
        self.started.set()
        await self.wake.wait()
        return "woken"

    async def interrupt(self) -> None:
        self.interrupts += 1
        self.wake.set()


def async_blockers() -> tuple[AsyncFuncPool[Any, Any], list[AsyncBlocker]]:
    made: list[AsyncBlocker] = []

    def factory() -> AsyncBlocker:
        made.append(AsyncBlocker())
        return made[-1]

    return AsyncFuncPool.with_worker(factory, 1), made


async def until(predicate: Any, what: str) -> None:
    for _ in range(int(PATIENCE / 0.002)):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never happened: {what}")


def test_async_timeout_interrupts_and_ready_is_awaited_before_the_next_job() -> None:
    async def main() -> None:
        pool, made = async_blockers()
        async with pool:
            with pytest.raises(PoolTimeout):
                await pool.process("block", timeout=0.05)
            await until(lambda: pool.stats().running == 0, "the interrupted job to end")
            assert made[0].interrupts == 1
            assert await pool.process("next") == "next"
            assert made[0].readies == 2

    asyncio.run(main())


def test_async_caller_cancellation_and_a_token_cancelled_elsewhere_interrupt_the_job() -> None:
    async def main() -> None:
        pool, made = async_blockers()
        async with pool:
            caller = asyncio.ensure_future(pool.process("block"))
            await until(lambda: bool(made) and made[0].started.is_set(), "the job to start")
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert made[0].interrupts == 1
            await until(lambda: pool.stats().running == 0, "the interrupted job to end")

            token = CancelToken()
            made[0].started.clear()
            call = asyncio.ensure_future(pool.process("block", cancel=token))
            await until(made[0].started.is_set, "the second job to start")
            await asyncio.to_thread(token.cancel)
            with pytest.raises(TaskCancelled):
                await call
            assert made[0].interrupts == 2

    asyncio.run(main())


def test_async_stateless_job_sees_its_token_cancelled() -> None:
    async def main() -> None:
        seen: list[CancelToken | None] = []

        async def job(_: int) -> None:
            seen.append(current_token())
            await asyncio.sleep(PATIENCE)

        async with AsyncFuncPool(job, 1) as pool:
            with pytest.raises(PoolTimeout):
                await pool.process(1, timeout=0.05)
            await until(lambda: pool.stats().running == 0, "the job to be cancelled")
        assert len(seen) == 1
        assert seen[0] is not None
        assert seen[0].cancelled

    asyncio.run(main())
