"""AsyncWorkerPool map and task groups, with cancellation at their await points."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from poolkit import (
    AsyncWorkerPool,
    PoolTimeout,
)
from tests.optional import require
from tests.workers.async_helpers import PROMPT, double, fail, run, sleepy


def test_map_is_ordered_lazy_and_raises_at_the_item() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(4) as ap:
            assert [r async for r in ap.map(sleepy, range(50))] == list(range(50))
            unordered = [r async for r in ap.map(sleepy, range(50), ordered=False)]
            assert sorted(unordered) == list(range(50))
            assert [r async for r in ap.map(lambda a, b: double(a + b), [1, 2], [3, 4])] == [8, 12]
            got: list[int] = []

            async def consume() -> None:
                async for r in ap.map(lambda x: fail(x) if x == 2 else double(x), range(5)):
                    got.append(r)

            with pytest.raises(ValueError, match="bad 2"):
                await consume()
            assert got == [0, 2]

    run(main())


def test_map_over_an_endless_async_iterable_reads_only_ahead_by_buffersize() -> None:
    pulled = [0]

    async def endless() -> AsyncIterator[int]:
        while True:
            pulled[0] += 1
            yield pulled[0]

    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            results = ap.map(double, endless(), buffersize=4)
            taken = [await results.__anext__() for _ in range(10)]
            assert taken == [2 * i for i in range(1, 11)]
            assert pulled[0] <= 10 + 4 + 1
            await results.aclose()  # type: ignore[attr-defined]

    run(main())


@pytest.mark.parametrize("queue_size", [0, 4])
def test_map_on_a_nonblocking_bounded_pool_is_not_refused_by_its_own_tasks(
    queue_size: int,
) -> None:
    """The default read-ahead is at most the queue: the map alone never fills the pool."""

    async def main() -> None:
        async with AsyncWorkerPool(4, queue_size=queue_size, nonblocking=True) as ap:
            assert [r async for r in ap.map(double, range(300))] == [2 * x for x in range(300)]
            unordered = [r async for r in ap.map(sleepy, range(300), ordered=False)]
            assert sorted(unordered) == list(range(300))
            assert ap.stats().overloads == 0

    run(main())


def test_map_run_by_a_task_of_its_own_bounded_pool_does_not_deadlock() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2, queue_size=2) as ap:

            async def outer() -> list[int]:
                return [r async for r in ap.map(double, range(100))]

            assert await (await ap.submit(outer)) == [2 * x for x in range(100)]

    run(main())


def test_cancelling_the_map_consumer_cancels_its_in_flight_items() -> None:
    """Cancellation at the await point of map: unstarted items never run, the
    running one gets CancelledError."""

    async def main() -> None:
        gate = asyncio.Event()
        started: list[int] = []

        async def slow(i: int) -> int:
            started.append(i)
            await gate.wait()
            return i

        async with AsyncWorkerPool(1) as ap:

            async def consume() -> list[int]:
                return [r async for r in ap.map(slow, range(10), buffersize=5)]

            consumer = asyncio.ensure_future(consume())
            while not started:
                await asyncio.sleep(0)
            consumer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await consumer
            gate.set()
            await ap.wait()
            assert started == [0]
            assert ap.stats().cancelled == 5

    run(main())


def test_map_timeout_and_bad_arguments() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def wait_gate(_: int) -> None:
            await gate.wait()

        async with AsyncWorkerPool(1) as ap:
            with pytest.raises(PoolTimeout, match="map result not ready"):
                async for _ in ap.map(wait_gate, [1], timeout=0.001):
                    pass
            gate.set()
            with pytest.raises(ValueError, match="buffersize"):
                ap.map(double, [1], buffersize=0)
            with pytest.raises(TypeError, match="iterable"):
                ap.map(double)  # type: ignore[call-overload]

    run(main())


def test_group_results_in_order_and_first_error_cancels_the_rest() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            async with ap.group() as g:
                for i in range(5):
                    await g.submit(sleepy, i)
            assert await g.wait() == list(range(5))

            gate = asyncio.Event()
            g2 = ap.group(cancel_on_error=True)

            async def cooperative() -> None:
                await gate.wait()
                g2.token.raise_if_cancelled()

            running = await g2.submit(cooperative)
            await g2.submit(fail, 9)
            queued = [await g2.submit(double, i) for i in range(3)]
            for _ in range(5):
                await asyncio.sleep(0)
            assert g2.token.cancelled
            gate.set()
            with pytest.raises(ValueError, match="bad 9"):
                await g2.wait()
            assert all(f.cancelled() for f in queued)
            # As asyncio.TaskGroup: the running member was cancelled at once,
            # at its await point, not left to poll the token.
            assert running.cancelled()
            assert "AsyncTaskGroup" in repr(g2)

    run(main())


def test_group_as_completed_and_cancelled_wait() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            g = ap.group()
            for i in range(4):
                await g.submit(sleepy, i)
            results = [f.result() async for f in g.as_completed(timeout=PROMPT)]
            assert sorted(results) == [0, 1, 2, 3]
            assert len(g) == 4

            gate = asyncio.Event()
            g2 = ap.group()
            await g2.submit(gate.wait)
            waiter = asyncio.ensure_future(g2.wait())
            await asyncio.sleep(0)
            waiter.cancel()  # cancellation at the await point of group.wait
            with pytest.raises(asyncio.CancelledError):
                await waiter
            gate.set()
            assert await g2.wait() == [True]

    run(main())


def test_group_body_error_cancels_pending_tasks() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        async with AsyncWorkerPool(1) as ap:
            await ap.go(gate.wait)
            g = ap.group()
            fut = await g.submit(double, 1)

            async def body() -> None:
                async with g:
                    raise KeyError("body")

            with pytest.raises(KeyError):
                await body()
            assert fut.cancelled()
            gate.set()

    run(main())


def test_cancel_on_error_cancels_running_coroutines_at_once() -> None:
    """As asyncio.TaskGroup: the first failure cancels running members at their
    await point; the group raises without waiting for the slow member."""

    async def main() -> None:
        never = asyncio.Event()  # the slow member would wait for ever
        slow_started = asyncio.Event()
        slow_cancelled = asyncio.Event()

        async def slow() -> None:
            slow_started.set()
            try:
                await never.wait()
            except asyncio.CancelledError:
                slow_cancelled.set()
                raise

        async def failing() -> None:
            await slow_started.wait()
            raise ValueError("boom")

        async with AsyncWorkerPool(4) as ap:
            g = ap.group(cancel_on_error=True)
            slow_fut = await g.submit(slow)
            await g.submit(failing)
            with pytest.raises(ValueError, match="boom"):
                await asyncio.wait_for(g.wait(), PROMPT)
            assert slow_cancelled.is_set()
            assert slow_fut.cancelled()
            assert not never.is_set()
            assert ap.stats().cancelled == 1

    run(main())


def test_body_error_cancels_running_members() -> None:
    async def main() -> None:
        never = asyncio.Event()
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await never.wait()

        async with AsyncWorkerPool(2) as ap:
            g = ap.group()
            futures = []

            async def body() -> None:
                async with g:
                    futures.append(await g.submit(slow))
                    await started.wait()
                    raise KeyError("body")

            with pytest.raises(KeyError):
                await body()
            assert futures[0].cancelled()

    run(main())


def test_map_progress_draws_a_tqdm_bar(capsys: pytest.CaptureFixture[str]) -> None:
    require("tqdm", "progress")  # "10/10" is tqdm's counter

    async def main() -> list[int]:
        async with AsyncWorkerPool(4) as ap:
            return [r async for r in ap.map(double, range(10), progress=True)]

    assert run(main()) == [2 * x for x in range(10)]
    assert "10/10" in capsys.readouterr().err


def test_map_progress_without_tqdm_draws_poolkit_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `from tqdm import tqdm` fails

    async def main() -> list[int]:
        async with AsyncWorkerPool(4) as ap:
            return [r async for r in ap.map(double, range(10), progress=True)]

    assert run(main()) == [2 * x for x in range(10)]
    err = capsys.readouterr().err
    assert "map" in err
    assert "100.0%" in err


def test_map_progress_without_tqdm_needs_a_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)

    async def numbers() -> AsyncIterator[int]:
        for x in range(3):
            yield x

    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            results = ap.map(double, numbers(), progress=True)
            with pytest.raises(RuntimeError, match="unknown length"):
                await anext(results)

    run(main())


def test_map_progress_must_be_a_bool() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            with pytest.raises(TypeError, match=r"^progress must be"):
                ap.map(double, [1], progress=1)  # type: ignore[call-overload]

    run(main())


def test_map_progress_stopped_early_cancels_the_tasks_in_flight(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require("tqdm", "progress")
    started: list[int] = []
    gate = asyncio.Event()

    async def slow(x: int) -> int:
        started.append(x)
        if x > 0:
            await gate.wait()  # never set: only cancellation ends these
        return x

    async def main() -> None:
        async with AsyncWorkerPool(4) as ap:
            results = ap.map(slow, range(8), progress=True, buffersize=4)
            assert await anext(results) == 0
            await results.aclose()  # type: ignore[attr-defined]
            await ap.wait(PROMPT)  # every task ended: the in-flight ones were cancelled
            assert ap.stats().cancelled >= 1

    run(main())
    capsys.readouterr()
