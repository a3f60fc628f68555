"""Task groups and cancel tokens, stateful workers (with_worker), FuncPool and
MultiPool."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from typing import ClassVar

import pytest

from poolkit import CancelToken, PoolDeadlock, PoolTimeout, TaskCancelled, WorkerPool
from poolkit.workers import FuncPool, MultiPool, WorkerPoolStats
from tests.workers.conftest import PROMPT, eventually, identity, wait_then_return


def test_group_wait_returns_results_in_submission_order(pool: WorkerPool) -> None:
    gates = [threading.Event() for _ in range(3)]
    with pool.group() as g:
        for i, gate in enumerate(gates):
            g.submit(wait_then_return, gate, i)
        for gate in reversed(gates):
            gate.set()
        assert g.wait() == [0, 1, 2]


def test_group_wait_raises_the_first_failure(pool: WorkerPool) -> None:
    g = pool.group()
    g.submit(lambda: 1)
    g.submit(int, "bad")
    with pytest.raises(ValueError, match="invalid literal"):
        g.wait()


def test_group_cancel_on_error_cancels_unstarted_tasks_and_sets_the_token() -> None:
    """errgroup: the first failure cancels what has not started; running tasks see the token."""
    with WorkerPool(2) as wp:
        g = wp.group(cancel_on_error=True)
        saw_cancel, started = threading.Event(), threading.Event()

        def cooperative() -> None:
            started.set()
            g.token.wait(PROMPT)
            if g.token.cancelled:
                saw_cancel.set()
            g.token.raise_if_cancelled()

        running = g.submit(cooperative)
        # Its own signal, not stats().running (workers minus idle ones, which
        # counts a worker between two tasks as busy).
        assert started.wait(PROMPT), "cooperative task running"
        ran: list[int] = []
        failing = g.submit(lambda: 1 // 0)
        queued = [g.submit(ran.append, i) for i in range(5)]
        with pytest.raises(ZeroDivisionError):
            g.wait()
        assert saw_cancel.is_set()
        assert isinstance(g.token.reason, ZeroDivisionError)
        assert failing.exception() is not None
        assert all(f.cancelled() or isinstance(f.exception(), TaskCancelled) for f in queued)
        assert ran == []
        with pytest.raises(TaskCancelled):
            running.result()


def test_group_context_manager_cancels_on_body_error(pool: WorkerPool) -> None:
    release = threading.Event()
    for _ in range(4):
        pool.go(release.wait)
    g = pool.group()
    fut = g.submit(lambda: None)

    def body() -> None:
        with g:
            raise KeyError("body failed")

    with pytest.raises(KeyError):
        body()
    release.set()
    assert fut.cancelled()
    assert g.token.cancelled


def test_group_as_completed_streams_futures(pool: WorkerPool) -> None:
    g = pool.group()
    for i in range(10):
        g.submit(identity, i)
    assert list(range(10)) == sorted(f.result() for f in g.as_completed(timeout=PROMPT))
    assert len(g) == 10
    assert "10/10 done" in repr(g)


def test_group_wait_timeout_raises_pool_timeout(pool: WorkerPool) -> None:
    release = threading.Event()
    g = pool.group()
    g.submit(release.wait)
    with pytest.raises(PoolTimeout, match="group tasks still running"):
        g.wait(timeout=0.01)
    release.set()
    assert g.wait() == [True]


def test_group_wait_inside_own_pool_raises_deadlock(pool: WorkerPool) -> None:
    g = pool.group()
    with pytest.raises(PoolDeadlock, match="group of its own pool"):
        pool.submit(g.wait).result(PROMPT)


def test_group_cancel_makes_wait_raise_cancelled(pool: WorkerPool) -> None:
    release = threading.Event()
    for _ in range(4):
        pool.go(release.wait)
    g = pool.group()
    g.go(lambda: None)
    g.cancel()
    release.set()
    with pytest.raises(CancelledError):
        g.wait()


def test_group_bad_argument_names_the_parameter(pool: WorkerPool) -> None:
    with pytest.raises(TypeError, match="cancel_on_error"):
        pool.group(cancel_on_error="yes")  # type: ignore[arg-type]


def test_cancel_token_is_idempotent_and_keeps_the_first_reason() -> None:
    token = CancelToken()
    assert not token.wait(0)
    first = RuntimeError("first")
    token.cancel(first)
    token.cancel(RuntimeError("second"))
    assert token.reason is first
    assert token.wait(0)
    with pytest.raises(TaskCancelled, match="first"):
        token.raise_if_cancelled()


class Parser:
    """A per-worker object: built once per worker, closed when it exits."""

    made: ClassVar[list[Parser]] = []

    def __init__(self) -> None:
        self.closed = False
        self.uses = 0
        Parser.made.append(self)

    def close(self) -> None:
        self.closed = True


def test_with_worker_gives_each_worker_its_own_object_and_closes_it() -> None:
    Parser.made = []
    wp = WorkerPool.with_worker(Parser, max_workers=2, min_workers=2)

    def parse(parser: Parser, text: str) -> int:
        parser.uses += 1
        return len(text)

    # Stateful pools pass the worker's object first, which the typed
    # signature of submit() cannot express.
    futures = [wp.submit(parse, "x" * n) for n in (1, 2, 3)]  # type: ignore[call-arg]
    assert [f.result(PROMPT) for f in futures] == [1, 2, 3]
    wp.stop()
    assert len(Parser.made) == 2
    assert all(p.closed for p in Parser.made)
    assert sum(p.uses for p in Parser.made) == 3


def test_with_worker_closes_the_object_on_resize_down() -> None:
    Parser.made = []
    with WorkerPool.with_worker(Parser, max_workers=3, min_workers=3) as wp:
        wp.resize(max_workers=1, min_workers=1)
        eventually(lambda: sum(p.closed for p in Parser.made) == 2, "two objects closed")
        assert wp.stats().workers == 1


def test_with_worker_rejects_a_non_callable_factory() -> None:
    with pytest.raises(TypeError, match="factory"):
        WorkerPool.with_worker(42)  # type: ignore[arg-type]


def test_func_pool_invoke_and_process() -> None:
    """ants PoolWithFunc.Invoke / tunny Process: callers pass only the argument."""
    seen: list[int] = []
    lock = threading.Lock()

    def handle(x: int) -> int:
        with lock:
            seen.append(x)
        return x * 2

    fp: FuncPool[int, int] = FuncPool(handle, max_workers=2)
    with fp:
        for i in range(10):
            fp.invoke(i)
        fp.wait()
        assert fp.process(42) == 84
        assert fp.submit(3).result(PROMPT) == 6
        fp.resize(4)
        assert isinstance(fp.stats(), WorkerPoolStats)
        assert "FuncPool" in repr(fp)
    assert sorted([*range(10), 3, 42]) == sorted(seen)


def test_func_pool_process_timeout_raises_pool_timeout() -> None:
    release = threading.Event()

    def block(_: None) -> bool:
        return release.wait()

    fp: FuncPool[None, bool] = FuncPool(block, max_workers=1)
    with fp:
        with pytest.raises(PoolTimeout, match="no result within"):
            fp.process(None, timeout=0.01)
        release.set()


def test_func_pool_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError, match="fn"):
        FuncPool(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["round_robin", "least_tasks"])
def test_multi_pool_spreads_tasks_over_sub_pools(strategy: str) -> None:
    with MultiPool(3, 2, strategy=strategy) as mp:
        results = [mp.submit(identity, i) for i in range(30)]
        for _ in range(30):
            mp.go(lambda: None)
        mp.wait()
        assert list(range(30)) == [f.result(PROMPT) for f in results]
        assert mp.stats().succeeded == 60
        per_pool = [mp.stats_by_index(i).submitted for i in range(3)]
        assert sum(per_pool) == 60
        if strategy == "round_robin":
            assert per_pool == [20, 20, 20]
        assert strategy in repr(mp)


def test_multi_pool_round_robin_retries_overload_on_least_loaded() -> None:
    """As ants: a round-robin pick refused with PoolOverload goes to the least loaded pool."""
    release = threading.Event()
    mp = MultiPool(2, 1, queue_size=0, nonblocking=True)
    try:
        mp.go(release.wait)  # round robin -> pool 0, now full
        mp.go(lambda: None)  # -> pool 1
        mp.pools[1].wait()
        mp.go(lambda: None)  # -> pool 0 is full: retried on pool 1
        mp.pools[1].wait()
        assert [mp.stats_by_index(i).submitted for i in range(2)] == [1, 2]
    finally:
        release.set()
        mp.stop()


def test_multi_pool_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="size"):
        MultiPool(0, 1)
    with pytest.raises(ValueError, match="size_per_pool"):
        MultiPool(1, 0)
    with pytest.raises(ValueError, match="strategy"):
        MultiPool(1, 1, strategy="random")
    with MultiPool(1, 1) as mp, pytest.raises(IndexError, match="index"):
        mp.stats_by_index(3)
