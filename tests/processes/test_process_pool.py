"""ProcessPool basics: results, errors, map, groups, admission, stats, asyncio."""

from __future__ import annotations

import asyncio
import pickle
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from poolkit import PoolClosed, PoolDeadlock, PoolOverload, PoolTimeout, ProcessPool
from poolkit.processes import ProcessPoolStats, RemoteTraceback
from tests.optional import require
from tests.processes import tasks
from tests.processes.conftest import PROMPT, alive, eventually


def test_submit_returns_the_result_computed_in_another_process(ppool: ProcessPool) -> None:
    import os

    assert ppool.submit(tasks.add, 2, 3).result(PROMPT) == 5
    assert os.getpid() != ppool.submit(tasks.pid).result(PROMPT)


def test_keyword_arguments_reach_the_function(ppool: ProcessPool) -> None:
    assert ppool.submit(tasks.add, a=3, b=4).result(PROMPT) == 7


def test_exception_carries_the_remote_traceback(ppool: ProcessPool) -> None:
    fut = ppool.submit(tasks.fail, "boom")
    with pytest.raises(ValueError, match="boom") as info:
        fut.result(PROMPT)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in fail" in cause.text


def test_go_failures_reach_on_error_with_the_function() -> None:
    seen: list[tuple[str, Any]] = []
    done = threading.Event()

    def on_error(exc: BaseException, fn: Any) -> None:
        seen.append((str(exc), fn))
        done.set()

    with ProcessPool(1, on_error=on_error) as pool:
        pool.go(tasks.fail, "lost")
        assert done.wait(PROMPT)
    assert [("lost", tasks.fail)] == seen


def test_lambda_is_pickled_with_cloudpickle(ppool: ProcessPool) -> None:
    require("cloudpickle", "cloudpickle")
    assert ppool.submit(lambda x: x + 1, 10).result(PROMPT) == 11


def test_unpicklable_argument_is_a_clear_error_and_the_pool_goes_on(ppool: ProcessPool) -> None:
    with pytest.raises(pickle.PicklingError, match="couldn't pickle the task"):
        ppool.submit(tasks.identity, threading.Lock())
    assert ppool.submit(tasks.identity, 1).result(PROMPT) == 1


def test_unpicklable_argument_error_names_the_function(ppool: ProcessPool) -> None:
    with pytest.raises(pickle.PicklingError, match="the task <function identity"):
        ppool.submit(tasks.identity, threading.Lock())


def test_a_module_function_travels_as_its_kept_reference(
    ppool: ProcessPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept bytes are pickle's own, and are dropped once the name leads elsewhere."""
    import random

    from poolkit.processes._wire import function_blob

    blob = function_blob(tasks.square)
    assert blob == pickle.dumps(tasks.square, pickle.HIGHEST_PROTOCOL)
    assert function_blob(tasks.square) is blob
    assert function_blob(abs) == pickle.dumps(abs, pickle.HIGHEST_PROTOCOL)
    assert ppool.submit(tasks.square, 3).result(PROMPT) == 9
    assert ppool.submit(abs, -3).result(PROMPT) == 3
    # Not by name alone: a builtin bound to an object, a bound method, a lambda.
    assert function_blob(random.random) is None
    assert function_blob([].append) is None
    assert function_blob(lambda: None) is None
    # A rebound name: the old function is no longer what the name means, so
    # it is pickled with the task as before (pickle refuses it by name).
    monkeypatch.setattr(tasks, "square", tasks.identity)
    original = function_blob.__globals__["_BLOBS"]
    assert any(fn.__name__ == "square" for fn in original)
    old_square = next(fn for fn in original if fn.__name__ == "square")
    assert function_blob(old_square) is None
    assert old_square not in original


def test_a_worker_keeps_a_function_only_while_its_name_leads_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's side (in this process): what it runs is what unpickling gives."""
    from poolkit.processes import _child

    monkeypatch.setattr(_child, "_FUNCTIONS", {})
    square = pickle.dumps(tasks.square, pickle.HIGHEST_PROTOCOL)
    assert _child._load_function(square) is tasks.square
    assert {square: tasks.square} == _child._FUNCTIONS
    assert _child._load_function(square) is tasks.square
    # The name rebound: the reference now means the other function, which is
    # not kept under it (its own name is another); rebound back, the original.
    original = tasks.square
    monkeypatch.setattr(tasks, "square", tasks.identity)
    assert _child._load_function(square) is tasks.identity
    assert {square: original} == _child._FUNCTIONS
    monkeypatch.setattr(tasks, "square", original)
    assert _child._load_function(square) is tasks.square
    # By value (a partial pickles its function and arguments): never kept.
    import functools

    partial = pickle.dumps(functools.partial(tasks.add, 1), pickle.HIGHEST_PROTOCOL)
    assert _child._load_function(partial)(2) == 3
    assert partial not in _child._FUNCTIONS


def test_unpicklable_result_fails_the_future_and_the_pool_goes_on(ppool: ProcessPool) -> None:
    with pytest.raises(pickle.PicklingError, match="result"):
        ppool.submit(tasks.return_lock).result(PROMPT)
    assert ppool.submit(tasks.identity, 2).result(PROMPT) == 2


def test_exception_that_cannot_be_rebuilt_is_described(ppool: ProcessPool) -> None:
    with pytest.raises(pickle.PicklingError, match="NeedsTwoArgs"):
        ppool.submit(tasks.raise_unpicklable).result(PROMPT)
    assert ppool.submit(tasks.identity, 3).result(PROMPT) == 3


@pytest.mark.parametrize("chunksize", [1, 3, 50])
def test_map_returns_results_in_order(ppool: ProcessPool, chunksize: int) -> None:
    assert [x * x for x in range(40)] == list(
        ppool.map(tasks.square, range(40), chunksize=chunksize)
    )


def test_map_unordered_returns_every_result(ppool: ProcessPool) -> None:
    assert list(range(30)) == sorted(ppool.map(tasks.identity, range(30), ordered=False))


def test_map_takes_several_iterables(ppool: ProcessPool) -> None:
    assert list(ppool.map(tasks.add, range(3), range(3))) == [0, 2, 4]


def test_map_is_lazy_on_an_endless_input(ppool: ProcessPool) -> None:
    import itertools

    results = ppool.map(tasks.square, itertools.count(), chunksize=4, buffersize=2)
    assert list(itertools.islice(results, 5)) == [0, 1, 4, 9, 16]


def test_map_default_buffersize_bounds_an_endless_input(ppool: ProcessPool) -> None:
    """The default keeps two full pipelines per worker in flight, no more."""
    import itertools

    from poolkit.processes._map import process_buffersize

    taken = itertools.count()
    endless = (next(taken) for _ in itertools.count())
    results = ppool.map(tasks.square, endless, chunksize=3)
    assert list(itertools.islice(results, 4)) == [0, 1, 4, 9]
    limit = process_buffersize(ppool.max_workers)
    assert limit == 2 * 16 * 2
    # At most `limit` chunks were read, plus the refills of the two taken chunks.
    assert next(taken) <= (limit + 2) * 3


@pytest.mark.parametrize("queue_size", [0, 3])
def test_map_on_a_nonblocking_bounded_pool_is_not_refused_by_its_own_chunks(
    queue_size: int,
) -> None:
    """The default read-ahead is at most the queue: the map alone never fills the pool."""
    with ProcessPool(2, queue_size=queue_size, nonblocking=True) as pool:
        assert list(pool.map(tasks.square, range(300))) == [x * x for x in range(300)]
        unordered = pool.map(tasks.square, range(300), chunksize=7, ordered=False)
        assert sorted(unordered) == [x * x for x in range(300)]
        assert pool.stats().overloads == 0


def test_map_raises_the_error_at_its_item(ppool: ProcessPool) -> None:
    results = ppool.map(tasks.fail_on, range(10), [5] * 10, chunksize=3)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="bad item 5"):
        next(results)


def test_group_waits_and_returns_results_in_submission_order(ppool: ProcessPool) -> None:
    with ppool.group() as group:
        for i in range(5):
            group.submit(tasks.square, i)
    assert group.wait() == [0, 1, 4, 9, 16]


def test_group_raises_its_first_failure(ppool: ProcessPool) -> None:
    group = ppool.group()
    group.submit(tasks.identity, 1)
    group.submit(tasks.fail, "group broke")
    with pytest.raises(ValueError, match="group broke"):
        group.wait(PROMPT)


def test_wait_returns_when_every_task_is_done(ppool: ProcessPool) -> None:
    futures = [ppool.submit(tasks.sleep_then, 0.01, i) for i in range(6)]
    ppool.wait(PROMPT)
    assert all(f.done() for f in futures)


def test_wait_times_out_with_pool_timeout(ppool: ProcessPool, tmp_path: Any) -> None:
    gate = str(tmp_path / "gate")
    ppool.submit(tasks.wait_for_file, gate)
    with pytest.raises(PoolTimeout, match="unfinished"):
        ppool.wait(0.05)
    open(gate, "w").close()
    ppool.wait(PROMPT)


def test_try_submit_returns_none_when_the_bounded_pool_is_full(tmp_path: Any) -> None:
    gate = str(tmp_path / "gate")
    with ProcessPool(1, queue_size=0) as pool:
        first = pool.submit(tasks.wait_for_file, gate, "first")
        assert pool.try_submit(tasks.identity, 1) is None
        open(gate, "w").close()
        assert first.result(PROMPT) == "first"
        assert pool.stats().overloads == 1


def test_nonblocking_full_pool_raises_overload(tmp_path: Any) -> None:
    gate = str(tmp_path / "gate")
    with ProcessPool(1, queue_size=1, nonblocking=True) as pool:
        pool.submit(tasks.wait_for_file, gate)
        pool.submit(tasks.identity, 1)
        with pytest.raises(PoolOverload, match="queue_size"):
            pool.submit(tasks.identity, 2)
        open(gate, "w").close()


def test_blocked_submit_proceeds_when_room_frees(tmp_path: Any) -> None:
    gate = str(tmp_path / "gate")
    with ProcessPool(1, queue_size=0) as pool:
        pool.submit(tasks.wait_for_file, gate)
        got: list[Future[Any]] = []
        t = threading.Thread(target=lambda: got.append(pool.submit(tasks.identity, "late")))
        t.start()
        open(gate, "w").close()
        t.join(PROMPT)
        assert got[0].result(PROMPT) == "late"


def test_stats_add_up_after_a_mixed_run(ppool: ProcessPool) -> None:
    ok = [ppool.submit(tasks.identity, i) for i in range(4)]
    bad = ppool.submit(tasks.fail, "x")
    for f in ok:
        f.result(PROMPT)
    with pytest.raises(ValueError, match="x"):
        bad.result(PROMPT)
    ppool.wait(PROMPT)
    stats = ppool.stats()
    assert isinstance(stats, ProcessPoolStats)
    assert (stats.submitted, stats.succeeded, stats.failed, stats.completed) == (5, 4, 1, 5)
    assert stats.submitted == stats.completed + stats.cancelled


def test_repr_shows_live_state(ppool: ProcessPool) -> None:
    ppool.submit(tasks.identity, 1).result(PROMPT)
    text = repr(ppool)
    assert "ProcessPool 'test-pool' open" in text
    assert "1 ok" in text


def test_submit_after_stop_raises_pool_closed() -> None:
    pool = ProcessPool(1)
    pool.stop()
    with pytest.raises(PoolClosed, match="stopped"):
        pool.submit(tasks.identity, 1)


def test_stop_runs_queued_tasks_first() -> None:
    pool = ProcessPool(1)
    futures = [pool.submit(tasks.identity, i) for i in range(5)]
    pool.stop()
    assert list(range(5)) == [f.result(0) for f in futures]


def test_close_runs_queued_tasks_then_leaves_no_worker_and_is_idempotent() -> None:
    """close() is the shutdown verb: what leaving a ``with`` block without an error does."""
    pool = ProcessPool(1)
    worker = pool.submit(tasks.pid)
    futures = [pool.submit(tasks.identity, i) for i in range(5)]
    pool.close()
    assert list(range(5)) == [f.result(0) for f in futures]
    assert (pool.closed, pool.pids()) == (True, [])
    assert not alive(worker.result(0))
    pool.close()
    with pytest.raises(PoolClosed, match="stopped"):
        pool.submit(tasks.identity, 1)


def test_close_with_a_deadline_kills_what_still_runs(tmp_path: Any) -> None:
    started = tmp_path / "started"
    pool = ProcessPool(1)
    running = pool.submit(tasks.touch_then_sleep, str(started))
    eventually(started.exists, "the task started")
    with pytest.raises(PoolTimeout, match=r"did not stop within 0\.2 s"):
        pool.close(timeout=0.2)
    assert running.cancelled()
    assert pool.pids() == []


def test_stop_without_wait_cancels_queued_tasks(tmp_path: Any) -> None:
    gate, started = str(tmp_path / "gate"), tmp_path / "started"
    pool = ProcessPool(1)
    running = pool.submit(tasks.started_then_wait, str(started), gate, "ran")
    eventually(started.exists, "the first task started")
    queued = [pool.submit(tasks.identity, i) for i in range(3)]
    pool.stop(wait=False)
    assert all(f.cancelled() for f in queued)
    open(gate, "w").close()
    assert running.result(PROMPT) == "ran"
    pool.stop()


def test_asubmit_awaits_the_result() -> None:
    async def main(pool: ProcessPool) -> int:
        return await pool.asubmit(tasks.add, 20, 22)

    with ProcessPool(1) as pool:
        assert asyncio.run(main(pool)) == 42


def test_run_in_executor_works() -> None:
    async def main(pool: ProcessPool) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, tasks.square, 9)

    with ProcessPool(1) as pool:
        assert asyncio.run(main(pool)) == 81


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_every_start_method_runs_tasks(method: str) -> None:
    with ProcessPool(1, method) as pool:
        assert pool.submit(tasks.square, 3).result(PROMPT) == 9


def test_initializer_runs_once_per_worker(tmp_path: Any) -> None:
    marks = tmp_path / "marks"
    with ProcessPool(1, "fork", tasks.init_mark, (str(marks),)) as pool:
        pid = pool.submit(tasks.pid).result(PROMPT)
        pool.submit(tasks.pid).result(PROMPT)
    assert [str(pid)] == marks.read_text().split()


def test_finalizer_runs_when_a_worker_exits(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("POOLKIT_TEST_DIR", str(tmp_path))
    with ProcessPool(1, "fork", finalizer=tasks.finalize_mark) as pool:
        pid = pool.submit(tasks.pid).result(PROMPT)
    assert (tmp_path / f"final-{pid}").exists()


BAD_ARGUMENTS = [
    ({"max_workers": 0}, ValueError, "max_workers"),
    ({"max_workers": "2"}, TypeError, "max_workers"),
    ({"min_workers": 3, "max_workers": 2}, ValueError, "min_workers"),
    ({"mp_context": "threads"}, ValueError, "mp_context"),
    ({"mp_context": 3}, TypeError, "mp_context"),
    ({"initializer": 5}, TypeError, "initializer"),
    ({"initargs": [1]}, TypeError, "initargs"),
    ({"finalizer": "x"}, TypeError, "finalizer"),
    ({"max_tasks_per_child": 0}, ValueError, "max_tasks_per_child"),
    ({"max_memory_per_child": -1}, ValueError, "max_memory_per_child"),
    ({"cancel_running": 1}, TypeError, "cancel_running"),
    ({"idle_timeout": -1}, ValueError, "idle_timeout"),
    ({"queue_size": -1}, ValueError, "queue_size"),
    (
        {"initializer": lambda: threading.Lock(), "initargs": (threading.Lock(),)},
        Exception,
        "pickle",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "name"), BAD_ARGUMENTS)
def test_bad_constructor_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        ProcessPool(**kwargs)


def test_bad_call_arguments_name_the_parameter(ppool: ProcessPool) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ppool.options(timeout=0)
    with pytest.raises(TypeError, match="fn"):
        ppool.submit(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunksize"):
        ppool.map(tasks.identity, [1], chunksize=0)
    with pytest.raises(ValueError, match="timeout"):
        ppool.wait(-1)
    with pytest.raises(ValueError, match="max_workers"):
        ppool.resize(0)


def test_shutdown_with_cancel_futures_cancels_queued_tasks(tmp_path: Any) -> None:
    gate, started = str(tmp_path / "gate"), tmp_path / "started"
    pool = ProcessPool(1)
    running = pool.submit(tasks.started_then_wait, str(started), gate, "ran")
    eventually(started.exists, "the first task started")
    queued = pool.submit(tasks.identity, 1)
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    open(gate, "w").close()
    pool.shutdown(wait=True)
    assert running.result(0) == "ran"


def test_min_workers_start_at_once_and_idle_surplus_workers_exit() -> None:
    with ProcessPool(3, min_workers=1, idle_timeout=0.05) as pool:
        eventually(lambda: len(pool.pids()) == 1, "the minimum worker starts")
        futures = [pool.submit(tasks.sleep_then, 0.2, i) for i in range(3)]
        eventually(lambda: pool.stats().workers == 3, "the pool grows for a backlog")
        assert [f.result(PROMPT) for f in futures] == [0, 1, 2]
        eventually(lambda: pool.stats().workers == 1, "idle surplus workers exit")


def test_map_with_unpicklable_items_raises_a_clear_error(ppool: ProcessPool) -> None:
    with pytest.raises(pickle.PicklingError, match="map function"):
        list(ppool.map(tasks.identity, [threading.Lock()]))
    assert list(ppool.map(tasks.identity, [1, 2])) == [1, 2]


def test_asubmit_cancellation_kills_the_running_task(tmp_path: Any) -> None:
    started = tmp_path / "started"

    async def main(pool: ProcessPool) -> None:
        task = asyncio.ensure_future(pool.asubmit(tasks.touch_then_sleep, str(started)))
        while not started.exists():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with ProcessPool(1, cancel_running=True) as pool:
        asyncio.run(main(pool))
        eventually(lambda: pool.stats().cancelled == 1, "the running task is cancelled")
        assert pool.submit(tasks.identity, 5).result(PROMPT) == 5


def test_bad_arguments_of_every_entry_point_name_the_parameter(ppool: ProcessPool) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ppool.options(timeout=-1)
    with pytest.raises(TypeError, match="fn"):
        ppool.try_submit(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buffersize"):
        ppool.map(tasks.identity, [1], buffersize=0)
    with pytest.raises(TypeError, match="cancel_on_error"):
        ppool.group(cancel_on_error=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        ppool.stop(timeout=-1)
    with pytest.raises(ValueError, match="min_workers"):
        ppool.resize(max_workers=1, min_workers=2)
    with pytest.raises(ValueError, match="timeout"):
        ppool.options(timeout=float("nan"))
    assert ppool.submit(tasks.identity, 1).result(PROMPT) == 1


def test_max_blocking_refuses_callers_beyond_the_bound(tmp_path: Any) -> None:
    gate = str(tmp_path / "gate")
    with ProcessPool(1, queue_size=0, max_blocking=0) as pool:
        pool.submit(tasks.wait_for_file, gate)
        with pytest.raises(PoolOverload, match="max_blocking=0"):
            pool.submit(tasks.identity, 1)
        open(gate, "w").close()


def test_submit_from_a_done_callback_on_a_full_pool_is_a_deadlock_error(tmp_path: Any) -> None:
    """Callbacks run on the thread that frees room: waiting there would hang for ever."""
    gate = str(tmp_path / "gate")
    seen: list[BaseException] = []
    done = threading.Event()

    with ProcessPool(1, queue_size=1) as pool:

        def callback(_: Future[Any]) -> None:
            try:
                pool.submit(tasks.identity, "nested")
            except BaseException as exc:
                seen.append(exc)
            done.set()

        first = pool.submit(tasks.wait_for_file, gate)
        pool.submit(tasks.wait_for_file, gate)
        first.add_done_callback(callback)
        open(gate, "w").close()
        assert done.wait(PROMPT)
    assert [type(exc) for exc in seen] == [PoolDeadlock]


BAD_CALLS = [
    ("go", lambda p: p.go(42), TypeError, "fn"),
    ("submit", lambda p: p.submit("f"), TypeError, "fn"),
    ("asubmit", lambda p: asyncio.run(p.asubmit(42)), TypeError, "fn"),
    ("options.submit", lambda p: p.options(timeout=1.0).submit(None), TypeError, "fn"),
    ("group.submit", lambda p: p.group().submit(42), TypeError, "fn"),
    ("map fn", lambda p: p.map(42, [1]), TypeError, "fn"),
    ("map chunksize", lambda p: p.map(tasks.identity, [1], chunksize="2"), TypeError, "chunksize"),
    (
        "map chunksize bool",
        lambda p: p.map(tasks.identity, [1], chunksize=True),
        TypeError,
        "chunksize",
    ),
    (
        "map buffersize",
        lambda p: p.map(tasks.identity, [1], buffersize=1.5),
        TypeError,
        "buffersize",
    ),
    ("map ordered", lambda p: p.map(tasks.identity, [1], ordered="no"), TypeError, "ordered"),
    ("map progress", lambda p: p.map(tasks.identity, [1], progress=1), TypeError, "progress"),
    ("map timeout", lambda p: p.map(tasks.identity, [1], timeout=-1), ValueError, "timeout"),
    ("stop wait", lambda p: p.stop(wait="yes"), TypeError, "wait"),
    ("stop cancel_pending", lambda p: p.stop(cancel_pending="no"), TypeError, "cancel_pending"),
    ("stop timeout", lambda p: p.stop(timeout="1"), TypeError, "timeout"),
    (
        "shutdown cancel_futures",
        lambda p: p.shutdown(cancel_futures=1),
        TypeError,
        "cancel_futures",
    ),
    ("shutdown wait", lambda p: p.shutdown(wait=None), TypeError, "wait"),
    ("wait timeout", lambda p: p.wait(float("nan")), ValueError, "timeout"),
    ("resize", lambda p: p.resize(max_workers=True), TypeError, "max_workers"),
    ("group timeout", lambda p: p.group().wait(timeout=-1), ValueError, "timeout"),
]


@pytest.mark.parametrize(
    ("call", "error", "name"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_input_is_refused_at_the_call_naming_the_parameter(
    ppool: ProcessPool, call: Any, error: type[Exception], name: str
) -> None:
    """Nothing is coerced (a flag with bool(), a size with int()) and nothing fails later."""
    with pytest.raises(error, match=name):
        call(ppool)
    # Refused before doing anything: the pool is still open and runs tasks.
    assert not ppool.closed
    assert ppool.submit(tasks.identity, 1).result(PROMPT) == 1


def test_asubmit_cancelled_while_waiting_for_room_never_runs_its_task(tmp_path: Any) -> None:
    """The helper thread that waits for room submits later: that task is cancelled then."""
    gate, marks = tmp_path / "gate", tmp_path / "marks"

    async def main(pool: ProcessPool) -> None:
        task = asyncio.ensure_future(pool.asubmit(tasks.init_mark, str(marks)))
        while pool.stats().waiting == 0:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Room frees only now: the helper thread submits after the cancel.
        gate.touch()

    with ProcessPool(1, queue_size=0) as pool:
        first = pool.submit(tasks.wait_for_file, str(gate), "first")
        asyncio.run(main(pool))
        assert first.result(PROMPT) == "first"
        pool.wait(PROMPT)
        stats = pool.stats()
    assert not marks.exists()
    assert (stats.submitted, stats.succeeded, stats.cancelled) == (2, 1, 1)
