"""AsyncWorkerPool: every operation and option (map and groups are in
test_async_map_and_groups.py), stop modes, and no worker task left after a stop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import types
import weakref
from collections.abc import Generator
from typing import Any

import pytest

from poolkit import (
    AsyncWorkerPool,
    EventLoopMismatch,
    PoolBroken,
    PoolClosed,
    PoolDeadlock,
    PoolOverload,
    PoolTimeout,
    testing,
)
from poolkit.workers import WorkerPoolStats
from tests.workers.async_helpers import double, fail, run, sleepy, worker_tasks


def test_go_and_wait_run_every_task() -> None:
    async def main() -> None:
        seen: list[int] = []

        async def record(i: int) -> None:
            await asyncio.sleep(0)
            seen.append(i)

        async with AsyncWorkerPool(4) as ap:
            for i in range(100):
                await ap.go(record, i)
            for i in range(100, 200):
                ap.go_nowait(record, i)
            await ap.wait()
            assert sorted(seen) == list(range(200))
            stats = ap.stats()
            assert (stats.submitted, stats.succeeded) == (200, 200)

    run(main())


def test_submit_returns_asyncio_future_with_result_or_exception() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            fut = await ap.submit(sleepy, 5)
            assert isinstance(fut, asyncio.Future)
            assert await fut == 5
            bad = await ap.submit(fail, 1)
            with pytest.raises(ValueError, match="bad 1"):
                await bad
            assert await ap.submit_wait(double, 4) == 8

    run(main())


def test_go_failure_reaches_on_error_with_the_task() -> None:
    errors: list[tuple[BaseException, object]] = []

    async def main() -> None:
        async with AsyncWorkerPool(2, on_error=lambda e, t: errors.append((e, t))) as ap:
            await ap.go(fail, 3)
            await ap.go(sleepy, 1)
            await ap.wait()
            assert (ap.stats().failed, ap.stats().succeeded) == (1, 1)

    run(main())
    assert [(type(e), t) for e, t in errors] == [(ValueError, fail)]


def test_go_failure_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            await ap.go(fail)

    with caplog.at_level(logging.ERROR, logger="poolkit.workers"):
        run(main())
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)


def test_bounded_pool_go_waits_for_room_and_try_submit_returns_none() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def blocked() -> None:
            await gate.wait()

        async with AsyncWorkerPool(1, queue_size=1) as ap:
            await ap.go(blocked)
            await ap.go(blocked)
            assert ap.try_submit(blocked) is None
            with pytest.raises(PoolOverload, match="is full"):
                ap.go_nowait(blocked)
            with pytest.raises(PoolOverload):
                ap.submit_nowait(blocked)
            third = asyncio.ensure_future(ap.go(blocked))
            await asyncio.sleep(0)
            assert ap.stats().waiting == 1
            assert not third.done()
            gate.set()
            await third
            await ap.wait()
            assert ap.stats().overloads == 3

    run(main())


def test_nonblocking_and_max_blocking_raise_overload() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        async with AsyncWorkerPool(1, queue_size=0, nonblocking=True) as ap:
            await ap.go(gate.wait)
            with pytest.raises(PoolOverload, match="nonblocking=True"):
                await ap.go(gate.wait)
            gate.set()
        gate.clear()
        async with AsyncWorkerPool(1, queue_size=0, max_blocking=0) as ap:
            await ap.go(gate.wait)
            with pytest.raises(PoolOverload, match="max_blocking=0"):
                await ap.submit(gate.wait)
            gate.set()

    run(main())


def test_cancelling_a_blocked_submitter_frees_its_place() -> None:
    """Cancellation at the await point of submit: no slot or wake-up is lost."""

    async def main() -> None:
        gate = asyncio.Event()
        async with AsyncWorkerPool(1, queue_size=0) as ap:
            await ap.go(gate.wait)
            blocked = asyncio.ensure_future(ap.submit(double, 1))
            waiting = asyncio.ensure_future(ap.submit(double, 2))
            await asyncio.sleep(0)
            assert ap.stats().waiting == 2
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            assert ap.stats().waiting == 1
            gate.set()
            assert await (await waiting) == 4
            await ap.wait()
            assert ap.stats().submitted == 2

    run(main())


def test_cancelling_the_awaiter_of_a_future_skips_the_queued_task() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        ran: list[int] = []

        async def record(i: int) -> None:
            ran.append(i)

        async with AsyncWorkerPool(1) as ap:
            await ap.go(gate.wait)
            fut = await ap.submit(record, 1)
            waiter = asyncio.ensure_future(asyncio.wait_for(fut, 0.001))
            with pytest.raises(TimeoutError):
                await waiter
            assert fut.cancelled()
            gate.set()
            await ap.wait()
        assert ran == []
        assert ap.stats().cancelled == 1

    run(main())


def test_submit_before_skips_a_late_task() -> None:
    now = [0.0]

    async def main() -> None:
        gate = asyncio.Event()
        async with AsyncWorkerPool(1, clock=lambda: now[0]) as ap:
            await ap.go(gate.wait)
            late = await ap.submit_before(1.0, double, 1)
            on_time = await ap.submit_before(100.0, double, 2)
            now[0] = 10.0
            gate.set()
            with pytest.raises(PoolTimeout, match="deadline"):
                await late
            assert await on_time == 4
            await ap.wait()
            assert ap.stats().expired == 1
        with pytest.raises(ValueError, match="deadline"):
            await ap.submit_before(-1, double, 1)

    run(main())


def test_wait_timeout_and_deadlock_detection() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        async with AsyncWorkerPool(2) as ap:
            await ap.go(gate.wait)
            with pytest.raises(PoolTimeout, match="still had work"):
                await ap.wait(timeout=0.001)
            inner = await ap.submit(ap.wait)
            with pytest.raises(PoolDeadlock, match="wait"):
                await inner
            nested = await ap.submit(ap.submit_wait, double, 1)
            with pytest.raises(PoolDeadlock, match="submit_wait"):
                await nested
            gate.set()
            g = ap.group()
            with pytest.raises(PoolDeadlock, match="own pool"):
                await (await ap.submit(g.wait))

    run(main())


def test_task_waiting_for_room_in_its_own_full_pool_raises_deadlock() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(1, queue_size=0) as ap:

            async def nested() -> None:
                await ap.go(double, 1)

            with pytest.raises(PoolDeadlock, match="own full"):
                await (await ap.submit(nested))

    run(main())


def test_stop_drains_abandons_and_times_out() -> None:
    async def main() -> None:
        ran: list[int] = []

        async def record(i: int) -> None:
            await asyncio.sleep(0)
            ran.append(i)

        ap = AsyncWorkerPool(2, name="drainer")
        for i in range(20):
            await ap.go(record, i)
        await ap.stop()
        assert len(ran) == 20
        assert worker_tasks(ap) == []
        with pytest.raises(PoolClosed, match="is stopped"):
            await ap.go(record, 1)
        with pytest.raises(RuntimeError):
            ap.go_nowait(record, 1)

        gate = asyncio.Event()
        ap2 = AsyncWorkerPool(1, name="abandoner")
        await ap2.go(gate.wait)
        queued = [await ap2.submit(double, i) for i in range(3)]
        await ap2.stop(wait=False)
        assert all(f.cancelled() for f in queued)
        gate.set()
        await ap2.stop()
        assert worker_tasks(ap2) == []

        forever = asyncio.Event()
        ap3 = AsyncWorkerPool(1, name="stuck")
        stuck = await ap3.submit(forever.wait)
        with pytest.raises(PoolTimeout, match="did not stop within"):
            await ap3.stop(timeout=0.001)
        assert stuck.cancelled() or isinstance(stuck.exception(), asyncio.CancelledError)
        assert worker_tasks(ap3) == []

    run(main())


def test_stop_with_timeout_ends_a_stuck_bare_task() -> None:
    """A go() without arguments from an empty context is awaited in the worker's
    own loop: stop(timeout=) still cancels it, accounts for it, and leaves no worker."""
    errors: list[BaseException] = []

    async def main() -> None:
        forever = asyncio.Event()
        ap = AsyncWorkerPool(1, name="stuck-bare", on_error=lambda exc, fn: errors.append(exc))
        await ap.go(forever.wait)
        await asyncio.sleep(0)  # the worker takes it and suspends in it
        with pytest.raises(PoolTimeout, match="did not stop within"):
            await ap.stop(timeout=0.001)
        assert worker_tasks(ap) == []
        stats = ap.stats()
        assert stats.submitted == 1
        assert stats.submitted == stats.completed + stats.cancelled + stats.expired

    _run_in_empty_context(main)


def test_stop_from_own_task_raises_deadlock() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            with pytest.raises(PoolDeadlock, match="stop"):
                await (await ap.submit(ap.stop))

    run(main())


def test_pause_resume_and_resize() -> None:
    async def main() -> None:
        ran: list[int] = []

        async def record(i: int) -> None:
            ran.append(i)

        async with AsyncWorkerPool(2) as ap:
            ap.pause()
            for i in range(5):
                await ap.go(record, i)
            for _ in range(5):
                await asyncio.sleep(0)
            assert ran == []
            assert "paused" in repr(ap)
            ap.resume()
            await ap.wait()
            assert sorted(ran) == list(range(5))

            gate = asyncio.Event()
            for _ in range(6):
                await ap.go(gate.wait)
            await asyncio.sleep(0)
            assert ap.stats().running == 2
            ap.resize(max_workers=6)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert ap.stats().workers == 6
            ap.resize(max_workers=1)
            gate.set()
            await ap.wait()
            for _ in range(5):
                await asyncio.sleep(0)
            assert ap.stats().workers == 1
            with pytest.raises(ValueError, match="max_workers"):
                ap.resize(max_workers=0)

    run(main())


def test_idle_surplus_workers_exit_when_the_clock_says_and_min_workers_stay() -> None:
    """The pool's reaping timer acts on the core's decision, in the pool's clock
    (the rules themselves are tested on the core, test_lifecycle)."""
    clock = testing.FakeClock()

    async def main() -> None:
        async with AsyncWorkerPool(4, min_workers=1, idle_timeout=0.001, clock=clock) as ap:
            assert ap.stats().workers == 1
            for _ in range(4):
                await ap.go(sleepy, 1)
            await asyncio.sleep(0)
            assert ap.stats().workers == 4
            await ap.wait()
            await asyncio.sleep(0)
            assert ap.stats().idle == 4  # every worker parked
            await asyncio.sleep(0.005)  # the reaping timer fires: the clock has not moved
            assert ap.stats().workers == 4
            clock.advance(0.001)
            for _ in range(100):
                if ap.stats().workers == 1:
                    break
                await asyncio.sleep(0.01)
            assert ap.stats().workers == 1

    run(main())


def test_context_variables_propagate_and_do_not_leak() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("avar", default="clean")

    async def read() -> str:
        await asyncio.sleep(0)
        return var.get()

    async def dirty() -> None:
        var.set("dirty")

    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            var.set("submitter")
            assert await (await ap.submit(read)) == "submitter"
            var.set("clean")
            await ap.go(dirty)
            assert await (await ap.submit(read)) == "clean"

    run(main())


def test_tasks_from_an_empty_context_do_not_see_each_others_variables() -> None:
    # go() without arguments from an empty context queues the bare function;
    # the worker reuses one empty context until a task sets a variable in it.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("bare", default="clean")
    seen: list[str] = []
    errors: list[BaseException] = []

    async def dirty() -> None:
        var.set("dirty")

    async def dirty_after_suspending() -> None:
        await asyncio.sleep(0)
        var.set("dirty later")

    async def look() -> None:
        seen.append(var.get())

    async def broken() -> None:
        var.set("dirty, then failed")
        raise ValueError("task failed")

    async def main() -> None:
        async with AsyncWorkerPool(1, on_error=lambda exc, fn: errors.append(exc)) as ap:
            for task in (dirty, look, dirty_after_suspending, look, broken, look):
                await ap.go(task)
            await ap.wait()
            stats = ap.stats()
        assert seen == ["clean", "clean", "clean"]
        assert [type(exc) for exc in errors] == [ValueError]
        assert (stats.succeeded, stats.failed) == (5, 1)

    # The submitting task starts from an empty context (nothing set anywhere).
    _run_in_empty_context(main)


def test_variables_set_around_tasks_do_not_reach_bare_tasks() -> None:
    """An initializer or an on_error handler runs in the worker, outside any
    task: a variable either sets is not seen by a bare go() task after it."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("around", default="clean")
    seen: list[str] = []

    def init() -> None:
        var.set("set by the initializer")

    def on_error(exc: BaseException, fn: object) -> None:
        var.set("set by on_error")

    async def look() -> None:
        seen.append(var.get())

    async def broken() -> None:
        raise ValueError("task failed")

    async def main() -> None:
        async with AsyncWorkerPool(1, initializer=init, on_error=on_error) as ap:
            await ap.go(look)
            await ap.wait()
        async with AsyncWorkerPool(1, on_error=on_error) as ap:
            for task in (look, broken, look):
                await ap.go(task)
            await ap.wait()
        assert seen == ["clean", "clean", "clean"]

    _run_in_empty_context(main)


def _run_in_empty_context(main: Any) -> None:
    async def outer() -> None:
        await asyncio.get_running_loop().create_task(main(), context=contextvars.Context())

    run(outer())


def test_with_worker_initializer_and_finalizer() -> None:
    events: list[str] = []

    class Conn:
        async def aclose(self) -> None:
            events.append("closed")

    async def make() -> Conn:
        events.append("made")
        return Conn()

    async def use(conn: Conn, x: int) -> int:
        return x + 1

    async def main() -> None:
        ap = AsyncWorkerPool.with_worker(
            make,
            max_workers=1,
            initializer=events.append,
            initargs=("init",),
            finalizer=lambda: events.append("fin"),
        )
        async with ap:
            # The worker's object comes first, which submit()'s typed signature
            # cannot express (as for WorkerPool.with_worker).
            assert await (await ap.submit(use, 1)) == 2  # type: ignore[call-arg]

    run(main())
    assert events == ["init", "made", "closed", "fin"]


def test_initializer_failure_breaks_the_pool() -> None:
    async def main() -> None:
        def bad() -> None:
            raise OSError("no model")

        ap = AsyncWorkerPool(1, initializer=bad)
        fut = await ap.submit(double, 1)
        with pytest.raises(PoolBroken, match="initializer raised"):
            await fut
        with pytest.raises(PoolBroken):
            await ap.go(double, 1)
        await ap.stop()

    run(main())


def test_a_pool_refuses_a_second_event_loop() -> None:
    """Checked whenever a task is queued or handed to a worker (a task that
    finishes during its eager start needs neither, so it is not refused)."""
    ap = AsyncWorkerPool(1)

    async def use() -> None:
        await ap.go(sleepy, 1)
        await ap.wait()

    asyncio.run(use())
    with pytest.raises(EventLoopMismatch, match="another event loop"):
        asyncio.run(use())


def test_a_pool_refuses_a_loop_of_another_thread_while_its_own_runs() -> None:
    """Submissions check the loop they run on, not only the thread that bound it."""
    errors: list[BaseException] = []

    async def noop() -> None:
        pass

    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            await ap.go(noop)  # binds the pool to this loop

            async def other_loop() -> None:
                try:
                    await ap.go(noop)
                except BaseException as exc:
                    errors.append(exc)

            def other_thread() -> None:
                try:
                    ap.go(noop)  # no loop at all in this thread
                except BaseException as exc:
                    errors.append(exc)
                asyncio.run(other_loop())

            await asyncio.to_thread(other_thread)
            await ap.wait()
            assert ap.stats().submitted == 1

    run(main())
    assert [type(exc) for exc in errors] == [RuntimeError, EventLoopMismatch]


def test_no_stale_reference_to_finished_task_arguments() -> None:
    class Payload:
        pass

    async def take(p: Payload) -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            arg = Payload()
            ref = weakref.ref(arg)
            await ap.go(take, arg)
            fut = await ap.submit(take, arg)
            await ap.wait()
            del arg, fut
            gc.collect()
            assert ref() is None

    run(main())


def test_stats_snapshot_and_repr() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(3, name="shown") as ap:
            await ap.go(sleepy, 1)
            await ap.wait()
            stats = ap.stats()
            assert isinstance(stats, WorkerPoolStats)
            assert stats.succeeded == 1
            assert "'shown' open" in repr(ap)
        assert ap.closed

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"min_workers": 5, "max_workers": 2}, ValueError, "min_workers"),
        ({"queue_size": -1}, ValueError, "queue_size"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout"),
        ({"nonblocking": 1}, TypeError, "nonblocking"),
        ({"on_error": "log"}, TypeError, "on_error"),
        ({"initializer": 1}, TypeError, "initializer"),
        ({"initargs": None}, TypeError, "initargs"),
    ],
)
def test_bad_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AsyncWorkerPool(**kwargs)


def test_eager_start_runs_the_first_step_before_go_returns() -> None:
    """With a free worker slot and an empty queue, a task starts in the caller
    (as Python 3.12 eager tasks); a task that suspends is finished by a worker."""

    async def main() -> None:
        steps: list[str] = []

        async def two_steps() -> str:
            steps.append("first")
            await asyncio.sleep(0)
            steps.append("second")
            return "done"

        async with AsyncWorkerPool(2, eager=True) as ap:
            fut = await ap.submit(two_steps)
            assert steps == ["first"]
            assert await fut == "done"
            assert steps == ["first", "second"]
            await ap.go(fail, 1)  # an eager failure still reaches on_error
            await ap.wait()
            assert (ap.stats().succeeded, ap.stats().failed) == (1, 1)

    run(main())


def test_eager_go_finishes_in_the_caller_or_hands_the_suspended_task_to_a_worker() -> None:
    """go() with eager start: a coroutine that returns (a value or None) is done
    when go() returns; one that suspends (on a bare ``yield`` as ``sleep(0)``,
    or on a Future) is finished by a worker; failures at either step reach
    on_error. Each runs in a copy of the caller's context."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> None:
        seen: list[tuple[str, str]] = []
        errors: list[BaseException] = []
        release = asyncio.get_running_loop().create_future()

        async def returns(value: object) -> object:
            seen.append(("returns", var.get()))
            var.set("changed by the task")
            return value

        async def sleeps_then(then: str) -> None:
            seen.append(("before sleep", var.get()))
            await asyncio.sleep(0)
            seen.append((then, var.get()))
            if then == "raise":
                raise ValueError("after the first step")

        async def waits() -> None:
            await release
            seen.append(("after the future", var.get()))

        var.set("caller's")
        async with AsyncWorkerPool(2, eager=True, on_error=lambda e, t: errors.append(e)) as ap:
            await ap.go(returns, 42)
            await ap.go(returns, None)
            assert seen == [("returns", "caller's"), ("returns", "caller's")]
            assert var.get() == "caller's"
            await ap.go(sleeps_then, "woke")
            assert seen[-1] == ("before sleep", "caller's")
            await ap.wait()
            assert seen[-1] == ("woke", "caller's")
            await ap.go(waits)
            release.set_result(None)
            await ap.go(sleeps_then, "raise")
            await ap.go(fail, 1)  # raises in its first step
            await ap.wait()
            assert ("after the future", "caller's") in seen
            assert sorted(str(e) for e in errors) == ["after the first step", "bad 1"]
            stats = ap.stats()
            assert (stats.submitted, stats.succeeded, stats.failed) == (6, 4, 2)
            assert (stats.queued, stats.running) == (0, 0)

    run(main())


def test_queued_go_tasks_with_arguments_return_suspend_and_fail_as_tasks_do() -> None:
    """The default pool's go() with arguments: a task that returns (a value or
    None), suspends on a bare yield or on a Future, or fails in its first or a
    later step, each in a copy of the submitter's context."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> None:
        seen: list[tuple[object, str]] = []
        errors: list[str] = []
        release = asyncio.get_running_loop().create_future()

        async def task(how: str, value: object = None) -> object:
            seen.append((how, var.get()))
            var.set("changed by the task")
            if how == "sleeps":
                await asyncio.sleep(0)
            elif how == "waits":
                await release
            elif how == "fails first":
                raise ValueError(how)
            if how in ("sleeps", "waits"):
                seen.append((how + " again", var.get()))
            return value

        async def fails_later() -> None:
            await asyncio.sleep(0)
            raise ValueError("fails later")

        var.set("submitter's")
        async with AsyncWorkerPool(2, on_error=lambda e, t: errors.append(str(e))) as ap:
            for how, value in (("returns", 42), ("returns", None), ("sleeps", 1), ("waits", 2)):
                await ap.go(task, how, value)
            await ap.go(task, "fails first")
            await ap.go(fails_later)
            release.set_result(None)
            await ap.wait()
            assert var.get() == "submitter's"
            assert sorted(seen) == sorted(
                [
                    ("returns", "submitter's"),
                    ("returns", "submitter's"),
                    ("sleeps", "submitter's"),
                    ("sleeps again", "changed by the task"),
                    ("waits", "submitter's"),
                    ("waits again", "changed by the task"),
                    ("fails first", "submitter's"),
                ]
            )
            assert sorted(errors) == ["fails first", "fails later"]
            stats = ap.stats()
            assert (stats.submitted, stats.succeeded, stats.failed) == (6, 4, 2)

    run(main())


def test_no_eager_start_by_default_when_disabled_or_when_tasks_are_queued() -> None:
    async def main() -> None:
        order: list[int] = []

        async def record(i: int) -> None:
            order.append(i)

        for pool in (AsyncWorkerPool(1), AsyncWorkerPool(1, eager=False)):
            order.clear()
            async with pool as ap:
                await ap.go(record, 1)
                assert order == []  # queued for a worker, not run in the caller
                await ap.wait()
                assert order == [1]
        order.clear()
        gate = asyncio.Event()
        async with AsyncWorkerPool(1, eager=True) as ap:
            await ap.go(gate.wait)  # suspends: the only worker slot is taken
            await ap.go(record, 1)
            await ap.go(record, 2)
            assert order == []
            gate.set()
            await ap.wait()
            assert order == [1, 2]  # FIFO kept
        with pytest.raises(TypeError, match="eager"):
            AsyncWorkerPool(1, eager="yes")  # type: ignore[arg-type]

    run(main())


def test_a_timeout_inside_a_task_times_out_the_task_and_never_cancels_the_caller() -> None:
    """With the default pool, ``asyncio.timeout()`` entered at a task's start acts on
    the task: the task sees ``TimeoutError`` and the submitter is not cancelled (an
    eager first step would have run as the submitter's task and cancelled it)."""

    async def main() -> None:
        async def times_out() -> str:
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(60)
            except TimeoutError:
                return "timed out"
            return "not timed out"

        async with AsyncWorkerPool(2) as ap:
            fut = await ap.submit(times_out)
            assert await fut == "timed out"
            current = asyncio.current_task()
            assert current is not None
            assert current.cancelling() == 0
            await asyncio.sleep(0.05)  # a stray cancel of this task would land here

    run(main())


def test_cancelling_the_future_of_a_running_task_cancels_its_coroutine() -> None:
    """As with an asyncio Task: CancelledError reaches the task at its await point;
    the worker itself carries on."""

    async def main() -> None:
        gate = asyncio.Event()
        seen: list[str] = []

        async def waits() -> None:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        for eager in (True, False):
            seen.clear()
            async with AsyncWorkerPool(1, eager=eager) as ap:
                fut = await ap.submit(waits)
                for _ in range(3):
                    await asyncio.sleep(0)
                fut.cancel()
                for _ in range(3):
                    await asyncio.sleep(0)
                assert seen == ["cancelled"]
                assert await (await ap.submit(sleepy, 7)) == 7
                await ap.wait()
                assert ap.stats().cancelled == 1

    run(main())


def test_aclose_runs_the_queued_tasks_and_leaves_no_worker() -> None:
    """aclose(): stop taking tasks, finish the queued ones, wait for the workers."""

    async def main() -> None:
        ran: list[int] = []

        async def record(i: int) -> None:
            await asyncio.sleep(0)
            ran.append(i)

        ap = AsyncWorkerPool(1, eager=False)
        for i in range(5):
            await ap.go(record, i)
        await ap.aclose()
        assert ran == [0, 1, 2, 3, 4]
        assert worker_tasks(ap) == []
        with pytest.raises(PoolClosed):
            await ap.go(record, 5)
        await ap.aclose()  # twice is harmless

    run(main())


def test_aclose_with_a_timeout_cancels_the_running_tasks() -> None:
    async def main() -> None:
        ap = AsyncWorkerPool(1, eager=False)
        fut = await ap.submit(asyncio.sleep, 3600)
        await asyncio.sleep(0)
        with pytest.raises(PoolTimeout):
            await ap.aclose(timeout=0.01)
        assert isinstance(fut.exception(), asyncio.CancelledError)  # cancelled while running
        assert worker_tasks(ap) == []

    run(main())


def test_a_worker_reaped_then_cancelled_is_counted_out_once() -> None:
    """The reaping tick counts a parked worker out; if its Task is cancelled
    (stop's timeout) before it runs, it must not be counted out again."""
    clock = testing.FakeClock()

    async def main() -> None:
        ap = AsyncWorkerPool(2, idle_timeout=1.0, clock=clock, eager=False)
        for _ in range(2):
            await ap.go(sleepy, 1)
        await ap.wait()
        await asyncio.sleep(0)
        assert ap.stats().idle == 2
        clock.advance(1.0)
        ap._crew.tick()  # the timer firing: both parked workers are retired
        assert ap.stats().workers == 0
        for task in worker_tasks(ap):
            task.cancel()  # lands before either worker ran again
        for _ in range(5):
            await asyncio.sleep(0)
        assert worker_tasks(ap) == []
        assert ap.stats().workers == 0
        await ap.go(sleepy, 1)
        await ap.wait()
        assert ap.stats().workers == 1
        await ap.aclose()

    run(main())


@pytest.mark.parametrize("path", ["awaited by the worker", "through the bare runner"])
def test_bare_tasks_take_what_await_takes(path: str) -> None:
    """A generator-based coroutine runs and a plain generator fails with a
    TypeError, whether the worker awaits a bare task itself or hands it to
    its runner (once its own context no longer holds the home)."""
    var: contextvars.ContextVar[int] = contextvars.ContextVar("runner_path")
    done: list[str] = []
    errors: list[BaseException] = []

    @types.coroutine
    def legacy() -> Generator[Any, None, None]:
        yield from asyncio.sleep(0).__await__()
        done.append("legacy")

    def plain_generator() -> Generator[None, None, None]:
        yield

    async def main() -> None:
        init = (lambda: var.set(1)) if path == "through the bare runner" else None
        async with AsyncWorkerPool(
            1, initializer=init, on_error=lambda exc, fn: errors.append(exc)
        ) as ap:
            await ap.go(legacy)
            await ap.go(plain_generator)  # type: ignore[arg-type]
            await ap.wait()
        assert done == ["legacy"]
        assert [type(exc) for exc in errors] == [TypeError]

    _run_in_empty_context(main)
