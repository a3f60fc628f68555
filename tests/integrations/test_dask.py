"""DaskPool on a real LocalCluster (2 worker processes on loopback)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from poolkit import PoolClosed, PoolTimeout
from poolkit.integrations.dask import DaskPool, DaskPoolStats
from poolkit.workers import WorkerPoolStats
from tests.integrations import dask_tasks
from tests.integrations.dask_cluster import LIMIT, distributed, local_cluster


@pytest.fixture(scope="module")
def client(dask_installed: None) -> Iterator[Any]:
    """One cluster for the module: starting one costs a second."""
    with local_cluster() as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture
def pool(client: Any) -> Iterator[DaskPool]:
    with DaskPool(client, max_in_flight=8) as dask_pool:
        yield dask_pool


class Counted:
    """An input generator that counts what was pulled from it."""

    def __init__(self, n: int | None) -> None:
        self.pulled = 0
        self.n = n

    def __iter__(self) -> Iterator[int]:
        for i in itertools.count() if self.n is None else range(self.n):
            self.pulled += 1
            yield i


def test_submit_returns_a_concurrent_future(pool: DaskPool) -> None:
    fut = pool.submit(dask_tasks.square, 7)
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(LIMIT) == 49


def test_submit_passes_every_keyword_to_the_function(pool: DaskPool) -> None:
    """``key=`` and ``workers=`` are Client.submit's own names: here they reach fn."""
    assert pool.submit(dask_tasks.takes_key, 1, key="k", workers=3).result(LIMIT) == "1:k:3"


def test_futures_work_with_concurrent_futures_and_asyncio(pool: DaskPool) -> None:
    futs = [pool.submit(dask_tasks.square, i) for i in range(10)]
    done = {f.result() for f in concurrent.futures.as_completed(futs, timeout=LIMIT)}
    assert done == {i * i for i in range(10)}

    async def main() -> int:
        value: int = await asyncio.wrap_future(pool.submit(dask_tasks.square, 3))
        return value

    assert asyncio.run(main()) == 9


def test_map_yields_results_in_input_order(pool: DaskPool) -> None:
    assert list(pool.map(dask_tasks.square, range(50))) == [i * i for i in range(50)]


def test_map_unordered_yields_every_result(pool: DaskPool) -> None:
    got = list(pool.map(dask_tasks.square, range(50), ordered=False))
    assert sorted(got) == [i * i for i in range(50)]


def test_map_of_a_million_item_generator_keeps_at_most_max_in_flight_out(
    client: Any,
) -> None:
    """Input is pulled as results come back: never more than max_in_flight ahead."""
    source = Counted(1_000_000)
    with DaskPool(client, max_in_flight=16) as bounded:
        results = bounded.map(dask_tasks.square, source)
        for i, value in enumerate(results):
            assert value == i * i
            assert source.pulled <= i + 1 + 16
            if i == 300:
                break
        results.close()  # stop early: what is still out is cancelled
        bounded.wait(LIMIT)
        stats = bounded.stats()
    assert stats.peak_in_flight <= 16
    assert source.pulled <= 301 + 16
    assert stats.in_flight == 0


def test_map_works_on_an_endless_generator(pool: DaskPool) -> None:
    squares = pool.map(dask_tasks.square, itertools.count())
    assert list(itertools.islice(squares, 40)) == [i * i for i in range(40)]
    squares.close()


def test_map_raises_the_failure_in_input_order_and_cancels_the_rest(pool: DaskPool) -> None:
    got: list[int] = []

    def consume() -> None:
        for value in pool.map(lambda x: dask_tasks.fail_on(x, 5), range(30)):
            got.append(value)

    with pytest.raises(ValueError, match="bad item 5"):
        consume()
    assert got == [0, 1, 2, 3, 4]
    pool.wait(LIMIT)
    stats = pool.stats()
    assert stats.submitted == stats.completed + stats.cancelled


def test_map_progress_callback_counts_results(pool: DaskPool) -> None:
    seen: list[int] = []
    assert sum(pool.map(dask_tasks.square, range(10), progress=seen.append)) == 285
    assert seen == list(range(1, 11))


def test_map_progress_true_draws_a_bar_and_yields_everything(pool: DaskPool) -> None:
    assert list(pool.map(dask_tasks.square, range(5), progress=True)) == [0, 1, 4, 9, 16]


def test_submit_waits_for_room_under_max_in_flight(client: Any) -> None:
    with DaskPool(client, max_in_flight=2) as small:
        futs = [small.submit(dask_tasks.slow_square, i, 0.05) for i in range(8)]
        assert [f.result(LIMIT) for f in futs] == [i * i for i in range(8)]
        assert small.stats().peak_in_flight == 2


def test_group_returns_results_in_submission_order(pool: DaskPool) -> None:
    with pool.group() as group:
        for i in range(5):
            group.submit(dask_tasks.square, i)
    assert group.wait(LIMIT) == [0, 1, 4, 9, 16]


def test_group_cancel_on_error_cancels_running_tasks_on_the_cluster(pool: DaskPool) -> None:
    group = pool.group(cancel_on_error=True)
    slow = group.submit(dask_tasks.slow_square, 2, 0.3)
    group.submit(dask_tasks.boom)
    with pytest.raises(ValueError, match="boom"):
        group.wait(LIMIT)
    assert slow.cancelled()
    assert group.token.cancelled


def test_group_cancel_on_error_never_sends_queued_work(client: Any) -> None:
    """With one task out at a time, submissions after the failure never start."""
    with DaskPool(client, max_in_flight=1) as one:
        group = one.group(cancel_on_error=True)
        group.submit(dask_tasks.boom)
        later = [group.submit(dask_tasks.slow_square, i, 0.3) for i in range(10)]
        with pytest.raises(ValueError, match="boom"):
            group.wait(LIMIT)
        assert all(f.cancelled() for f in later)
        assert one.stats().submitted == 1  # only the failing task reached the cluster


def test_group_block_that_raises_cancels_the_group(pool: DaskPool) -> None:
    sent: list[concurrent.futures.Future[int]] = []

    def block() -> None:
        with pool.group() as group:
            sent.append(group.submit(dask_tasks.slow_square, 3, 0.3))
            raise KeyError("in the block")

    with pytest.raises(KeyError):
        block()
    assert sent[0].cancelled()


def test_wait_and_close(client: Any) -> None:
    dask_pool = DaskPool(client)
    futs = [dask_pool.submit(dask_tasks.slow_square, i, 0.05) for i in range(4)]
    dask_pool.wait(LIMIT)
    assert all(f.done() for f in futs)
    dask_pool.close()
    with pytest.raises(PoolClosed):
        dask_pool.submit(dask_tasks.square, 1)
    with pytest.raises(PoolClosed):
        dask_pool.map(dask_tasks.square, [1])
    dask_pool.close()  # twice is harmless
    assert client.status == "running"  # the client is the caller's


def test_close_with_timeout_cancels_what_is_still_out(client: Any) -> None:
    dask_pool = DaskPool(client)
    slow = dask_pool.submit(dask_tasks.slow_square, 1, 0.3)
    with pytest.raises(PoolTimeout):
        dask_pool.close(timeout=0.05)
    assert slow.cancelled()


def test_stats_use_the_worker_pool_vocabulary(client: Any) -> None:
    with DaskPool(client, max_in_flight=4) as dask_pool:
        list(dask_pool.map(dask_tasks.square, range(10)))
        failed = dask_pool.submit(dask_tasks.boom)
        with pytest.raises(ValueError, match="boom"):
            failed.result(LIMIT)
        stats = dask_pool.stats()
    assert isinstance(stats, WorkerPoolStats)
    assert isinstance(stats, DaskPoolStats)
    assert (stats.submitted, stats.succeeded, stats.failed) == (11, 10, 1)
    assert (stats.max_workers, stats.cluster_workers, stats.max_in_flight) == (4, 2, 4)
    assert "DaskPool" in repr(dask_pool)


BAD_CALLS: list[tuple[Any, type[Exception], str]] = [
    (lambda c: DaskPool("tcp://x"), TypeError, "client must be a distributed.Client"),
    (lambda c: DaskPool(c, max_in_flight=0), ValueError, "max_in_flight"),
    (lambda c: DaskPool(c, max_in_flight=1.5), TypeError, "max_in_flight"),  # type: ignore[arg-type]
    (lambda c: DaskPool(c).submit(42), TypeError, "fn must be callable"),  # type: ignore[arg-type]
    (lambda c: DaskPool(c).map(abs, [1], ordered=1), TypeError, "ordered"),  # type: ignore[arg-type]
    (lambda c: DaskPool(c).map(abs, [1], progress=3), TypeError, "progress"),  # type: ignore[arg-type]
    (lambda c: DaskPool(c).group(cancel_on_error="yes"), TypeError, "cancel_on_error"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "error", "words"), BAD_CALLS)
def test_bad_arguments_name_the_parameter(
    client: Any, call: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        call(client)


def test_a_worker_killed_mid_map_is_recovered_by_dask(dask_installed: None) -> None:
    """SIGKILL of a worker process mid-run: its tasks rerun elsewhere, nothing hangs."""
    import os
    import signal

    with local_cluster() as cluster, distributed.Client(cluster) as own:
        pids = set(own.run(dask_tasks.worker_pid).values())
        results: list[int] = []

        def consume() -> None:
            with DaskPool(own, max_in_flight=4) as dask_pool:
                for value in dask_pool.map(lambda x: dask_tasks.slow_square(x, 0.05), range(60)):
                    results.append(value)
                    if len(results) == 5:
                        os.kill(min(pids), signal.SIGKILL)

        thread = threading.Thread(target=consume)
        thread.start()
        thread.join(LIMIT)
        assert not thread.is_alive(), "map hung after a worker was killed"
    assert results == [i * i for i in range(60)]


def test_a_task_that_keeps_killing_workers_fails_clearly(dask_installed: None) -> None:
    """Past allowed-failures deaths, Dask gives up: the Future fails with KilledWorker."""
    import dask

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        local_cluster() as cluster,
        distributed.Client(cluster) as own,
        DaskPool(own) as dask_pool,
    ):
        fut = dask_pool.submit(dask_tasks.die)
        with pytest.raises(distributed.KilledWorker):
            fut.result(LIMIT)
        assert dask_pool.submit(dask_tasks.square, 4).result(LIMIT) == 16
