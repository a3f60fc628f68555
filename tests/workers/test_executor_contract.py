"""WorkerPool honours the concurrent.futures.Executor contract (drop-in for
ThreadPoolExecutor): map with timeout and chunksize, shutdown(wait,
cancel_futures), submit after shutdown, no stale references, run_in_executor."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import itertools
import threading
import weakref
from collections.abc import Iterator

import pytest

from poolkit import PoolBroken, PoolClosed, PoolTimeout, WorkerPool
from tests.optional import require
from tests.workers.conftest import PROMPT, identity, pool_threads


def test_worker_pool_is_an_executor() -> None:
    assert issubclass(WorkerPool, cf.Executor)


def test_accepts_thread_pool_executor_constructor_arguments() -> None:
    """max_workers, thread_name_prefix, initializer, initargs, positionally too."""
    seen: list[str] = []
    with WorkerPool(2, "compat", seen.append, ("hello",)) as wp:
        name = wp.submit(lambda: threading.current_thread().name).result(PROMPT)
    assert name.startswith("compat_")
    assert seen == ["hello"]


def test_map_returns_results_in_order(pool: WorkerPool) -> None:
    assert [x * x for x in range(100)] == list(pool.map(lambda x: x * x, range(100)))


def test_map_with_several_iterables_stops_at_the_shortest(pool: WorkerPool) -> None:
    assert list(pool.map(lambda a, b: a + b, [1, 2, 3, 4], [4, 5, 6])) == [5, 7, 9]


@pytest.mark.parametrize("chunksize", [1, 3, 7, 1000])
def test_map_chunksize_gives_the_same_results(pool: WorkerPool, chunksize: int) -> None:
    assert list(range(1, 51)) == list(pool.map(lambda x: x + 1, range(50), chunksize=chunksize))


def test_map_timeout_counts_from_the_call(pool: WorkerPool) -> None:
    """Executor contract: TimeoutError if a result is not ready `timeout` s after map()."""
    release = threading.Event()
    results = pool.map(lambda _: release.wait(), range(2), timeout=0.01)
    with pytest.raises(cf.TimeoutError):
        next(results)
    release.set()


def test_map_timeout_error_is_also_pool_timeout(pool: WorkerPool) -> None:
    release = threading.Event()
    results = pool.map(lambda _: release.wait(), [1], timeout=0.0)
    with pytest.raises(PoolTimeout):
        list(results)
    release.set()


def test_map_raises_the_error_at_its_item(pool: WorkerPool) -> None:
    results = pool.map(lambda x: 1 // x, [1, 1, 0, 1])
    assert [next(results), next(results)] == [1, 1]
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_after_shutdown_raises_at_the_call() -> None:
    wp = WorkerPool(1)
    wp.shutdown()
    with pytest.raises(RuntimeError):
        wp.map(abs, [1])


def test_map_is_lazy_and_bounded_on_an_endless_input(pool: WorkerPool) -> None:
    """An endless generator works: only buffersize chunks are read ahead."""
    pulled = itertools.count()

    def endless() -> Iterator[int]:
        while True:
            yield next(pulled)

    results = pool.map(lambda x: x, endless(), buffersize=8)
    assert list(range(20)) == [next(results) for _ in range(20)]
    assert next(pulled) <= 20 + 8 + 1
    results.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("workers", "chunksize", "chunks"),
    [(4, 1, 256), (4, 3, 86), (4, 16, 16), (4, 100, 16), (8, 100, 32)],
)
def test_map_default_read_ahead_is_256_items_or_4_chunks_per_worker(
    workers: int, chunksize: int, chunks: int
) -> None:
    """The default buffersize: 4 chunks per worker, at least 16, and at least 256 items."""
    pulled = itertools.count()

    def endless() -> Iterator[int]:
        while True:
            yield next(pulled)

    with WorkerPool(workers) as wp:
        results = wp.map(identity, endless(), chunksize=chunksize)
        # The first chunks are read and queued before map() returns; no more
        # until a result is taken.
        assert next(pulled) == chunks * chunksize
        assert next(results) == 0
        results.close()  # type: ignore[attr-defined]


def test_map_default_read_ahead_stays_within_a_bounded_pools_queue() -> None:
    pulled = itertools.count()

    def endless() -> Iterator[int]:
        while True:
            yield next(pulled)

    with WorkerPool(4, queue_size=5) as wp:
        results = wp.map(identity, endless())
        assert next(pulled) == 5
        assert next(results) == 0
        results.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("queue_size", [0, 8, 100])
@pytest.mark.parametrize("ordered", [True, False])
def test_map_on_a_nonblocking_bounded_pool_is_not_refused_by_its_own_chunks(
    queue_size: int, ordered: bool
) -> None:
    """The map alone never fills the pool, however fast its results are taken."""
    with WorkerPool(4, queue_size=queue_size, nonblocking=True) as wp:
        assert sorted(wp.map(identity, range(2000), ordered=ordered)) == list(range(2000))
        assert wp.stats().overloads == 0


def test_map_run_by_a_task_of_its_own_bounded_pool_does_not_deadlock() -> None:
    """One worker busy with the task that maps, the other running its chunks."""
    with WorkerPool(2, queue_size=4) as wp:
        outer = wp.submit(lambda: sum(wp.map(identity, range(500))))
        assert outer.result(PROMPT) == sum(range(500))


def test_map_unordered_yields_every_result(pool: WorkerPool) -> None:
    assert list(range(100)) == sorted(pool.map(lambda x: x, range(100), ordered=False))


def test_map_bad_arguments_name_the_parameter(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(abs, [1], chunksize=0)
    with pytest.raises(ValueError, match="buffersize"):
        pool.map(abs, [1], buffersize=0)
    with pytest.raises(ValueError, match="timeout"):
        pool.map(abs, [1], timeout=-1)
    with pytest.raises(TypeError, match="iterable"):
        pool.map(abs)  # type: ignore[call-overload]


def test_map_progress_draws_and_returns_results(
    pool: WorkerPool, capsys: pytest.CaptureFixture[str]
) -> None:
    require("tqdm", "progress")  # "10/10" is tqdm's counter
    assert list(range(10)) == list(pool.map(lambda x: x, range(10), progress=True))
    assert "10/10" in capsys.readouterr().err


def test_shutdown_cancel_futures_cancels_pending_ones() -> None:
    release = threading.Event()
    wp = WorkerPool(1)
    running = wp.submit(release.wait)
    pending = [wp.submit(lambda: None) for _ in range(5)]
    wp.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in pending)
    release.set()
    wp.shutdown(wait=True)
    assert running.result(PROMPT) is True


def test_shutdown_without_wait_still_runs_queued_tasks() -> None:
    """Executor contract: shutdown(wait=False) lets queued tasks finish."""
    release = threading.Event()
    wp = WorkerPool(1, thread_name_prefix="bg-finish")
    wp.submit(release.wait)
    queued = [wp.submit(identity, i) for i in range(5)]
    wp.shutdown(wait=False)
    release.set()
    assert list(range(5)) == [f.result(PROMPT) for f in queued]
    wp.shutdown(wait=True)
    assert pool_threads("bg-finish") == []


def test_submit_after_shutdown_raises_runtime_error() -> None:
    wp = WorkerPool(1)
    wp.shutdown()
    with pytest.raises(RuntimeError):
        wp.submit(print)
    with pytest.raises(PoolClosed):
        wp.submit(print)


class Payload:
    value: object = None


def test_no_stale_reference_to_a_finished_tasks_callable_args_or_result() -> None:
    """The pool keeps nothing of a finished task once its Future is dropped."""
    with WorkerPool(2) as wp:
        arg, result, fn_owner = Payload(), Payload(), Payload()
        refs = [weakref.ref(arg), weakref.ref(result), weakref.ref(fn_owner)]
        fn_owner.value = result

        def task(a: Payload, owner: Payload = fn_owner) -> object:
            return owner.value

        fut = wp.submit(task, arg)
        assert fut.result(PROMPT) is result
        wp.go(task, arg)
        wp.wait()
        del arg, result, fn_owner, task, fut
        gc.collect()
        assert [r() for r in refs] == [None, None, None]


def test_no_stale_reference_after_a_failed_go_task() -> None:
    with WorkerPool(1, on_error=lambda exc, task: None) as wp:
        arg = Payload()
        ref = weakref.ref(arg)

        def fail(a: Payload) -> None:
            raise ValueError("no")

        wp.go(fail, arg)
        wp.wait()
        del arg
        gc.collect()
        assert ref() is None


def test_initializer_failure_breaks_the_pool_like_broken_thread_pool() -> None:
    def bad_init() -> None:
        raise OSError("no model file")

    wp = WorkerPool(1, initializer=bad_init)
    fut = wp.submit(lambda: 1)
    with pytest.raises(PoolBroken, match="initializer raised"):
        fut.result(PROMPT)
    with pytest.raises(cf.BrokenExecutor):
        wp.submit(lambda: 1)
    wp.shutdown()


def test_works_as_the_default_executor_of_run_in_executor() -> None:
    async def main(wp: WorkerPool) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(wp, sum, [1, 2, 3])

    with WorkerPool(2) as wp:
        assert asyncio.run(main(wp)) == 6


def test_futures_work_with_wait_and_as_completed(pool: WorkerPool) -> None:
    futures = [pool.submit(identity, i) for i in range(20)]
    done, not_done = cf.wait(futures, timeout=PROMPT)
    assert (len(done), len(not_done)) == (20, 0)
    assert list(range(20)) == sorted(f.result() for f in cf.as_completed(futures))


def test_cancel_a_pending_future_skips_the_task(pool: WorkerPool) -> None:
    release = threading.Event()
    for _ in range(4):
        pool.submit(release.wait)
    ran: list[int] = []
    fut = pool.submit(ran.append, 1)
    assert fut.cancel()
    release.set()
    pool.wait()
    assert ran == []
    assert pool.stats().cancelled == 1


def test_future_result_timeout_raises_timeout_error(pool: WorkerPool) -> None:
    release = threading.Event()
    fut = pool.submit(release.wait)
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.01)
    with pytest.raises(TimeoutError):
        fut.exception(timeout=0.01)
    release.set()
    assert fut.result(PROMPT) is True
    assert fut.exception() is None


@pytest.mark.parametrize("chunksize", [1, 3, 10, 11])
def test_map_over_a_list_yields_every_item_once_in_order(pool: WorkerPool, chunksize: int) -> None:
    """A list is cut into chunks by slicing it (the fast path): same results as any iterable."""
    items = list(range(10))
    assert [2 * x for x in items] == list(pool.map(lambda x: 2 * x, items, chunksize=chunksize))
    assert not list(pool.map(abs, [], chunksize=chunksize))


@pytest.mark.parametrize("chunksize", [1, 50])
def test_map_close_stops_it_mid_chunk(pool: WorkerPool, chunksize: int) -> None:
    results = pool.map(abs, range(1000), chunksize=chunksize)
    assert next(results) == 0
    results.close()  # type: ignore[attr-defined]
    assert not list(results)
