"""A pool used in a child made by ``os.fork()``: a WorkerPool starts fresh
worker threads there (the parent's threads do not survive a fork); an
AsyncWorkerPool, whose event loop and worker tasks stay in the parent, raises
a clear ``PoolBroken``. Never a hang.

Each test forks for real; the child reports over a pipe as JSON and leaves
with ``os._exit`` (no pytest teardown in the child).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, PoolBroken, PoolClosed, WorkerPool
from poolkit.workers import MultiPool
from tests import forking
from tests.workers.async_helpers import double
from tests.workers.conftest import PROMPT, identity

# The child's own bound on any wait: shorter than the parent's, so a hang in
# the child is reported as a failure rather than killed.
CHILD_WAIT = 5.0

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns on any fork of a threaded process; forking one is
    # exactly what these tests do, on purpose.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def in_child(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return forking.in_child(check, PROMPT)


def started_then_wait(started: threading.Event, release: threading.Event) -> bool:
    """A task that says it runs (independent of ``stats()``, whose ``running`` is
    workers minus idle ones and so counts a worker between two tasks as busy),
    then blocks until ``release``."""
    started.set()
    return release.wait(PROMPT)


def test_worker_pool_runs_tasks_in_a_forked_child() -> None:
    release = threading.Event()
    with WorkerPool(2, min_workers=1, thread_name_prefix="forked") as wp:
        assert wp.submit(identity, 1).result(PROMPT) == 1
        first, second = threading.Event(), threading.Event()
        running = wp.submit(started_then_wait, first, release)
        assert first.wait(PROMPT), "a task running at fork time"
        blocker = wp.submit(started_then_wait, second, release)
        assert second.wait(PROMPT), "both workers busy"
        queued = wp.submit(identity, "queued")

        def check() -> dict[str, Any]:
            report: dict[str, Any] = {}
            report["result"] = wp.submit(identity, 7).result(CHILD_WAIT)
            seen: list[int] = []
            for i in range(20):
                wp.go(seen.append, i)
            wp.wait(CHILD_WAIT)
            report["seen"] = sorted(seen)
            report["map"] = list(wp.map(identity, range(5), timeout=CHILD_WAIT))
            # The parent's tasks are not the child's: a task running at fork
            # time fails with a clear error, a queued one is cancelled (it is
            # the parent's to run), and neither waits for ever.
            try:
                running.result(CHILD_WAIT)
                report["running"] = "result"
            except PoolClosed as exc:
                report["running"] = str(exc)
            try:
                queued.result(CHILD_WAIT)
                report["queued"] = "result"
            except CancelledError:
                report["queued"] = "cancelled"
            stats = wp.stats()
            report["threads"] = sum(t.name.startswith("forked") for t in threading.enumerate())
            report["stats"] = [stats.workers <= 2, stats.broken, stats.closed]
            report["accounted"] = stats.submitted == stats.completed + stats.cancelled
            wp.stop(timeout=CHILD_WAIT)
            report["after_stop"] = sum(
                t.name.startswith("forked") and t.is_alive() for t in threading.enumerate()
            )
            return report

        report = in_child(check)
        release.set()
        assert queued.result(PROMPT) == "queued"
        assert blocker.result(PROMPT)
    assert "error" not in report, report["error"]
    assert report["result"] == 7
    assert list(range(20)) == report["seen"]
    assert report["map"] == [0, 1, 2, 3, 4]
    assert "forked" in report["running"]
    assert report["queued"] == "cancelled"
    assert report["threads"] >= 1
    assert report["stats"] == [True, False, False]
    assert report["accounted"]
    assert report["after_stop"] == 0


def test_bounded_pool_and_multipool_in_a_forked_child() -> None:
    release = threading.Event()
    with WorkerPool(1, queue_size=1) as wp, MultiPool(2, 1) as mp:
        started = threading.Event()
        wp.submit(started_then_wait, started, release)
        assert started.wait(PROMPT), "the only worker busy"
        wp.submit(identity, 0)  # the pool is now full
        mp.submit(identity, 0).result(PROMPT)

        def check() -> dict[str, Any]:
            got = [wp.submit(identity, i).result(CHILD_WAIT) for i in range(5)]
            got += [mp.submit(identity, i).result(CHILD_WAIT) for i in range(5)]
            wp.wait(CHILD_WAIT)
            mp.wait(CHILD_WAIT)
            return {"got": got}

        report = in_child(check)
        release.set()
    assert report == {"got": [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]}


def test_fork_from_inside_a_task_leaves_the_child_a_working_pool() -> None:
    with WorkerPool(2) as wp:

        def forking_task() -> dict[str, Any]:
            def check() -> dict[str, Any]:
                # This thread is the parent's worker thread, mid-task.
                return {"result": wp.submit(identity, 3).result(CHILD_WAIT)}

            return in_child(check)

        assert wp.submit(forking_task).result(PROMPT) == {"result": 3}


def test_async_pool_in_a_forked_child_raises_pool_broken() -> None:
    ap = AsyncWorkerPool(2)

    async def use() -> int:
        return await (await ap.submit(double, 2))

    assert asyncio.run(use()) == 4

    def check() -> dict[str, Any]:
        try:
            asyncio.run(use())
        except PoolBroken as exc:
            return {"error_type": "PoolBroken", "message": str(exc), "broken": ap.stats().broken}
        return {"error_type": None}

    report = in_child(check)
    assert report["error_type"] == "PoolBroken", report
    assert "fork" in report["message"]
    assert report["broken"]


@pytest.mark.parametrize("queue_size", [None, 2])
def test_task_that_forked_finishes_in_the_child_and_the_pool_stays_usable(
    queue_size: int | None,
) -> None:
    """The forking task returns in the child too: its worker (the child's only
    thread, orphaned by the reset) delivers the result and leaves without
    disturbing the child's pool or its bounded-queue accounting."""
    read_end, write_end = os.pipe()
    holder: list[Any] = []
    submitted = threading.Event()
    with WorkerPool(2, queue_size=queue_size) as wp:

        def forking_task() -> int:
            submitted.wait(PROMPT)
            pid = os.fork()
            if pid == 0:
                os.close(read_end)

                def child_main() -> None:
                    report: dict[str, Any] = {}
                    try:
                        report["own"] = holder[0].result(CHILD_WAIT)
                        report["more"] = [
                            wp.submit(identity, i).result(CHILD_WAIT) for i in range(4)
                        ]
                        wp.wait(CHILD_WAIT)
                        stats = wp.stats()
                        report["stats"] = [stats.queued, stats.running, stats.waiting]
                    except BaseException as exc:
                        report["error"] = repr(exc)
                    with os.fdopen(write_end, "w") as out:
                        out.write(json.dumps(report))
                    os._exit(0)

                threading.Thread(target=child_main).start()
                return 0  # in the child: the task finishes, on the orphaned worker
            return pid

        fut = wp.submit(forking_task)
        holder.append(fut)
        submitted.set()
        pid = fut.result(PROMPT)
        os.close(write_end)
        with os.fdopen(read_end) as inp:
            ready, _, _ = select.select([inp], [], [], PROMPT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            text = inp.read() if ready else "{}"
        os.waitpid(pid, 0)
    report = json.loads(text)
    assert report == {"own": 0, "more": [0, 1, 2, 3], "stats": [0, 0, 0]}


def test_fork_while_a_parent_thread_holds_a_futures_condition_does_not_hang() -> None:
    """The pool's reset cancels the parent's queued Futures in the child; the shared
    Condition they use may have been held by a parent thread at the fork, so it
    must be renewed before the reset runs (at-fork hooks run in registration order)."""
    release = threading.Event()
    with WorkerPool(1, thread_name_prefix="cond") as wp:
        started = threading.Event()
        busy = wp.submit(started_then_wait, started, release)
        assert started.wait(PROMPT), "the only worker is busy"
        queued = wp.submit(identity, "queued")
        holding, unhold = threading.Event(), threading.Event()

        def hold() -> None:
            with queued._condition:
                holding.set()
                unhold.wait(PROMPT)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(PROMPT)
        try:

            def check() -> dict[str, Any]:
                return {"result": wp.submit(identity, 7).result(CHILD_WAIT)}

            report = in_child(check)
        finally:
            unhold.set()
            holder.join(PROMPT)
            release.set()
        assert report == {"result": 7}
        assert busy.result(PROMPT) is True
        assert queued.result(PROMPT) == "queued"
