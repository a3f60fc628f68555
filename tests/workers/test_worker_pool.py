"""WorkerPool core operations: go, submit, try_submit, submit_wait, submit_before,
wait, stop, stats, repr, options and their validation."""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

import pytest

from poolkit import PoolClosed, PoolDeadlock, PoolOverload, PoolTimeout, WorkerPool, testing
from poolkit.workers import WorkerPoolStats
from tests.workers.conftest import PROMPT, eventually, pool_threads


def test_go_runs_every_task_and_wait_returns_when_idle(pool: WorkerPool) -> None:
    """go() is fire and forget; wait() returns once every task has run."""
    seen: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append(i)

    for i in range(1000):
        pool.go(record, i)
    pool.wait()
    assert list(range(1000)) == sorted(seen)
    stats = pool.stats()
    assert (stats.submitted, stats.succeeded, stats.failed) == (1000, 1000, 0)


def test_go_passes_args_and_kwargs(pool: WorkerPool) -> None:
    out: dict[str, Any] = {}
    pool.go(out.update, {"a": 1}, b=2)
    pool.wait()
    assert out == {"a": 1, "b": 2}


def test_submit_returns_future_with_result(pool: WorkerPool) -> None:
    assert pool.submit(lambda x, y: x + y, 3, y=4).result(PROMPT) == 7


def test_submit_future_carries_the_exception(pool: WorkerPool) -> None:
    fut = pool.submit(int, "not a number")
    with pytest.raises(ValueError, match="invalid literal"):
        fut.result(PROMPT)
    pool.wait()
    assert pool.stats().failed == 1


def test_go_failure_goes_to_on_error_with_the_task() -> None:
    """A fire-and-forget failure reaches on_error(exc, task); the pool keeps going."""
    errors: list[tuple[BaseException, object]] = []
    with WorkerPool(2, on_error=lambda exc, task: errors.append((exc, task))) as wp:

        def boom() -> None:
            raise KeyError("x")

        wp.go(boom)
        wp.go(lambda: None)
        wp.wait()
        assert len(errors) == 1
        assert isinstance(errors[0][0], KeyError)
        assert boom is errors[0][1]
        assert (wp.stats().failed, wp.stats().succeeded) == (1, 1)


def test_go_failure_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """Without on_error a failure is logged with its traceback, never lost."""
    with caplog.at_level(logging.ERROR, logger="poolkit.workers"), WorkerPool(1) as wp:
        wp.go(int, "zz")
        wp.wait()
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)


def test_on_error_that_raises_does_not_kill_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    def bad_handler(exc: BaseException, task: object) -> None:
        raise RuntimeError("handler broke")

    with (
        caplog.at_level(logging.ERROR, logger="poolkit.workers"),
        WorkerPool(1, on_error=bad_handler) as wp,
    ):
        wp.go(int, "zz")
        assert wp.submit(lambda: 5).result(PROMPT) == 5
    assert any("on_error handler" in r.getMessage() for r in caplog.records)


def test_wait_without_tasks_returns_at_once(pool: WorkerPool) -> None:
    pool.wait()
    pool.wait(timeout=0)


def test_wait_timeout_raises_pool_timeout(pool: WorkerPool) -> None:
    release = threading.Event()
    pool.go(release.wait)
    with pytest.raises(PoolTimeout, match="still had work"):
        pool.wait(timeout=0.01)
    release.set()
    pool.wait()


def test_wait_is_reusable_and_does_not_stop_the_pool(pool: WorkerPool) -> None:
    for round_ in range(3):
        for _ in range(50):
            pool.go(lambda: None)
        pool.wait()
        assert 50 * (round_ + 1) == pool.stats().succeeded
    assert not pool.closed


def test_try_submit_returns_none_when_full() -> None:
    """try_submit never waits: a full bounded pool answers None and counts a drop."""
    release = threading.Event()
    with WorkerPool(1, queue_size=0) as wp:
        first = wp.try_submit(release.wait)
        assert first is not None
        assert None is wp.try_submit(lambda: None)
        assert wp.stats().overloads == 1
        release.set()
        first.result(PROMPT)


def test_try_submit_on_unbounded_pool_always_accepts(pool: WorkerPool) -> None:
    fut = pool.try_submit(lambda: 1)
    assert fut is not None
    assert fut.result(PROMPT) == 1


def test_submit_wait_returns_the_result(pool: WorkerPool) -> None:
    assert pool.submit_wait(str.__add__, "a", "b") == "ab"


def test_submit_wait_from_own_task_raises_deadlock(pool: WorkerPool) -> None:
    fut = pool.submit(lambda: pool.submit_wait(lambda: 1))
    with pytest.raises(PoolDeadlock, match="submit_wait"):
        fut.result(PROMPT)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_submit_before_skips_a_task_started_after_its_deadline() -> None:
    """A task still queued past its deadline is skipped: PoolTimeout, counted expired."""
    clock = FakeClock()
    release = threading.Event()
    with WorkerPool(1, clock=clock) as wp:
        blocker = wp.submit(release.wait)
        late = wp.submit_before(5.0, lambda: "ran")
        in_time = wp.submit_before(50.0, lambda: "ran")
        clock.now += 10.0
        release.set()
        blocker.result(PROMPT)
        with pytest.raises(PoolTimeout, match="not started within its deadline"):
            late.result(PROMPT)
        assert in_time.result(PROMPT) == "ran"
        wp.wait()
        assert wp.stats().expired == 1


def test_submit_before_rejects_a_negative_deadline(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="deadline"):
        pool.submit_before(-1, lambda: None)


def test_bounded_queue_blocks_until_room() -> None:
    """queue_size=N: the (N + max_workers + 1)th submission waits for a slot."""
    release = threading.Event()
    with WorkerPool(1, queue_size=1) as wp:
        wp.go(release.wait)
        wp.go(lambda: None)
        entered = threading.Event()
        done = threading.Event()

        def third() -> None:
            entered.set()
            wp.go(lambda: None)
            done.set()

        t = threading.Thread(target=third)
        t.start()
        entered.wait(PROMPT)
        eventually(lambda: wp.stats().waiting == 1, "third submitter blocked")
        assert not done.is_set()
        release.set()
        assert done.wait(PROMPT)
        t.join(PROMPT)
        wp.wait()
        assert wp.stats().succeeded == 3


def test_nonblocking_pool_raises_overload_when_full() -> None:
    release = threading.Event()
    with WorkerPool(1, queue_size=1, nonblocking=True) as wp:
        wp.go(release.wait)
        wp.go(lambda: None)
        with pytest.raises(PoolOverload, match="nonblocking=True"):
            wp.go(lambda: None)
        assert wp.stats().overloads == 1
        release.set()


def test_max_blocking_bounds_blocked_submitters() -> None:
    """max_blocking=0: nobody may wait, the submission is refused at once."""
    release = threading.Event()
    with WorkerPool(1, queue_size=0, max_blocking=0) as wp:
        wp.go(release.wait)
        with pytest.raises(PoolOverload, match="max_blocking=0"):
            wp.submit(lambda: None)
        release.set()


def test_task_blocking_on_its_own_full_pool_raises_deadlock() -> None:
    """A task that would wait for room in its own full pool is told, not hung."""
    with WorkerPool(1, queue_size=0) as wp:
        fut = wp.submit(lambda: wp.go(lambda: None))
        with pytest.raises(PoolDeadlock, match="own full pool"):
            fut.result(PROMPT)


def test_wait_from_own_task_raises_deadlock(pool: WorkerPool) -> None:
    with pytest.raises(PoolDeadlock, match="wait"):
        pool.submit(pool.wait).result(PROMPT)


def test_stop_from_own_task_with_wait_raises_deadlock(pool: WorkerPool) -> None:
    with pytest.raises(PoolDeadlock, match="stop"):
        pool.submit(pool.stop).result(PROMPT)


def test_stop_waits_and_drains_queued_tasks() -> None:
    """stop() (StopWait) runs every queued task, then no thread is left."""
    done: list[int] = []
    wp = WorkerPool(2, thread_name_prefix="drain-me")
    for i in range(200):
        wp.go(done.append, i)
    wp.stop()
    assert len(done) == 200
    assert pool_threads("drain-me") == []


def test_stop_without_wait_abandons_queued_tasks() -> None:
    """stop(wait=False) (gammazero Stop) cancels what has not started."""
    release = threading.Event()
    wp = WorkerPool(1, thread_name_prefix="abandon")
    running = wp.submit(release.wait)
    queued = [wp.submit(lambda: None) for _ in range(5)]
    wp.stop(wait=False)
    assert all(f.cancelled() for f in queued)
    release.set()
    assert True is running.result(PROMPT)
    wp.stop(wait=True)
    assert pool_threads("abandon") == []
    stats = wp.stats()
    assert stats.submitted == stats.completed + stats.cancelled + stats.expired


def test_stop_timeout_raises_pool_timeout_when_a_task_runs_on() -> None:
    release = threading.Event()
    wp = WorkerPool(1)
    wp.go(release.wait)
    with pytest.raises(PoolTimeout, match="did not stop within"):
        wp.stop(timeout=0.01)
    release.set()
    wp.stop()


def test_submit_after_stop_raises_pool_closed_which_is_a_runtime_error() -> None:
    wp = WorkerPool(1)
    wp.stop()
    with pytest.raises(PoolClosed, match="is stopped"):
        wp.go(print)
    with pytest.raises(RuntimeError):
        wp.submit(print)
    wp.stop()  # twice is harmless


def test_context_manager_stops_and_leaves_no_thread() -> None:
    with WorkerPool(3, thread_name_prefix="ctxmgr") as wp:
        for _ in range(10):
            wp.go(lambda: None)
    assert wp.closed
    assert pool_threads("ctxmgr") == []


def test_context_variables_propagate_to_tasks(pool: WorkerPool) -> None:
    """A task sees the submitter's context variables, as asyncio.to_thread."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("from submitter")
    assert pool.submit(var.get).result(PROMPT) == "from submitter"


def test_context_changes_in_a_task_do_not_leak_to_the_next(pool: WorkerPool) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("leak", default="clean")
    pool.submit(var.set, "dirty").result(PROMPT)
    assert [pool.submit(var.get).result(PROMPT) for _ in range(8)] == ["clean"] * 8


def test_variables_set_around_bare_tasks_do_not_reach_them() -> None:
    """An on_error handler and a Future's done-callback run in the worker
    thread, outside any task: a variable either sets is not seen by the bare
    go() task that runs next on that worker."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("around", default="clean")
    seen: list[str] = []

    def on_error(exc: BaseException, fn: object) -> None:
        var.set("set by on_error")

    def broken() -> None:
        raise ValueError("task failed")

    def look() -> None:
        seen.append(var.get())

    def main() -> None:
        with WorkerPool(1, on_error=on_error) as wp:
            wp.go(broken)
            wp.go(look)
            wp.wait()
            gate = threading.Event()
            fut = wp.submit(gate.wait, PROMPT)
            fut.add_done_callback(lambda _: var.set("set by a done-callback"))
            wp.go(look)
            gate.set()
            wp.wait()
        assert seen == ["clean", "clean"]

    contextvars.Context().run(main)  # the submitter's context is empty


def test_go_from_an_empty_context_keeps_tasks_apart() -> None:
    """go() without arguments from an empty context queues the bare function;
    the worker reuses one empty context until a task sets a variable in it."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("bare", default="clean")
    seen: list[str] = []
    errors: list[BaseException] = []

    def dirty() -> None:
        var.set("dirty")

    def broken() -> None:
        var.set("dirty, then failed")
        raise ValueError("task failed")

    def look() -> None:
        seen.append(var.get())

    def main() -> None:
        with WorkerPool(1, on_error=lambda exc, fn: errors.append(exc)) as wp:
            for task in (dirty, look, broken, look):
                wp.go(task)
            wp.wait()
            stats = wp.stats()
        assert seen == ["clean", "clean"]
        assert [type(exc) for exc in errors] == [ValueError]
        assert (stats.succeeded, stats.failed) == (3, 1)

    contextvars.Context().run(main)  # the submitter's context is empty


def test_min_workers_start_at_once_and_idle_surplus_exits_when_the_clock_says() -> None:
    """min_workers are kept; surplus workers exit once the pool's clock passes
    idle_timeout (the rules themselves are tested on the core, test_lifecycle)."""
    release = threading.Event()
    clock = testing.FakeClock()
    with WorkerPool(4, min_workers=1, idle_timeout=0.01, clock=clock) as wp:
        assert wp.stats().workers == 1
        try:
            for _ in range(4):
                wp.go(release.wait)
            eventually(lambda: wp.stats().running == 4, "pool grew to 4 running")
        finally:
            release.set()
        wp.wait()
        # Every worker parked before the clock moves (a worker still on its
        # way to park would start its idle time after the move).
        eventually(lambda: wp.stats().idle == 4, "the four workers parked")
        assert wp.stats().workers == 4  # idle, but the pool's clock has not moved
        clock.advance(0.01)
        eventually(lambda: wp.stats().workers == 1, "surplus workers exited")
        assert wp.submit(lambda: 10).result(PROMPT) == 10


def test_stats_is_a_frozen_snapshot_and_repr_shows_live_state(pool: WorkerPool) -> None:
    release = threading.Event()
    pool.go(release.wait)
    eventually(lambda: pool.stats().running == 1, "task running")
    stats = pool.stats()
    assert isinstance(stats, WorkerPoolStats)
    with pytest.raises(AttributeError):
        stats.submitted = 5  # type: ignore[misc]
    assert "1 running" in repr(pool)
    release.set()
    pool.wait()
    assert "open" in repr(pool)


def test_initializer_and_finalizer_run_once_per_worker() -> None:
    started: list[str] = []
    finished: list[str] = []
    wp = WorkerPool(
        2,
        initializer=started.append,
        initargs=("init",),
        finalizer=lambda: finished.append("fin"),
        min_workers=2,
    )
    wp.stop()
    assert (started, finished) == (["init", "init"], ["fin", "fin"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"max_workers": "4"}, TypeError, "max_workers"),
        ({"max_workers": 2, "min_workers": 3}, ValueError, "min_workers"),
        ({"min_workers": -1}, ValueError, "min_workers"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout"),
        ({"queue_size": -1}, ValueError, "queue_size"),
        ({"nonblocking": "yes"}, TypeError, "nonblocking"),
        ({"max_blocking": -2}, ValueError, "max_blocking"),
        ({"on_error": 3}, TypeError, "on_error"),
        ({"initializer": 3}, TypeError, "initializer"),
        ({"initargs": [1]}, TypeError, "initargs"),
        ({"finalizer": "x"}, TypeError, "finalizer"),
        ({"thread_name_prefix": 5}, TypeError, "thread_name_prefix"),
        ({"name": 5}, TypeError, "name"),
    ],
)
def test_bad_constructor_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        WorkerPool(**kwargs)


def test_bad_timeouts_name_the_parameter(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="timeout"):
        pool.wait(timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        pool.stop(timeout="soon")  # type: ignore[arg-type]


def test_default_max_workers_matches_thread_pool_executor() -> None:
    import os

    with WorkerPool() as wp:
        assert min(32, (os.cpu_count() or 1) + 4) == wp.max_workers


def test_close_runs_the_queued_tasks_and_leaves_no_thread() -> None:
    """close(): stop taking tasks, finish the queued ones, wait for the threads."""
    gate = threading.Event()
    ran: list[int] = []
    wp = WorkerPool(1, thread_name_prefix="closing")
    wp.go(gate.wait, PROMPT)
    for i in range(5):
        wp.go(ran.append, i)
    gate.set()
    wp.close()
    assert ran == [0, 1, 2, 3, 4]
    assert pool_threads("closing") == []
    with pytest.raises(PoolClosed):
        wp.go(ran.append, 5)
    wp.close()  # twice is harmless


def test_close_with_a_timeout_cancels_what_is_still_queued() -> None:
    gate = threading.Event()
    wp = WorkerPool(1, thread_name_prefix="close-timeout")
    wp.go(gate.wait, PROMPT)
    queued = wp.submit(lambda: "late")
    with pytest.raises(PoolTimeout):
        wp.close(timeout=0.01)
    assert queued.cancelled()
    gate.set()
    wp.stop()
    assert pool_threads("close-timeout") == []
