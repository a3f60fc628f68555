"""Pipelining: a worker holds its next tasks while it runs one, and loses none of them.

Each test makes the pool pipeline as deep as it may (``PIPELINE_SECONDS``
raised, so any task counts as short), checks that the worker really held the
tasks behind a running one, then meets one fault: a timeout, a crash, a
recycle, a terminate. The held tasks were never started, so they run on
another worker (or are cancelled by a terminate); the fault is attributed to
the running task only.
"""

from __future__ import annotations

import os
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import pytest

from poolkit import ProcessPool, TaskTimeout, WorkerCrashed
from poolkit.processes import _dispatch
from poolkit.processes._state import ProcessState
from poolkit.processes._workers import Task
from poolkit.workers._core import PoolOptions
from poolkit.workers._lifecycle import Lifecycle
from tests.processes import tasks
from tests.processes.conftest import PROMPT, eventually


@pytest.fixture(autouse=True)
def _pipeline_deep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dispatch, "PIPELINE_SECONDS", 1e9)


def _held(pool: ProcessPool) -> int:
    """Most tasks any worker of ``pool`` holds now, the running one included."""
    with pool._state.lock:
        return max((len(w.tasks) for w in pool._state.workers.values()), default=0)


def _hold_behind(pool: ProcessPool, gate: Path) -> Future[Any]:
    """Run a gated task on the pool's only worker; return its Future (tasks queue behind it)."""
    assert pool.submit(tasks.pid).result(PROMPT) > 0  # the pool has measured a task
    return pool.submit(tasks.wait_for_file, str(gate), "gated")


def _open_gate_and_wait_held(pool: ProcessPool, gate: Path, count: int) -> None:
    gate.touch()
    eventually(lambda: _held(pool) == count, f"the worker holds {count} tasks")


def test_tasks_held_behind_a_timed_out_task_run_on_the_replacement(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with ProcessPool(1, "fork") as pool:
        first_pid = pool.submit(tasks.pid).result(PROMPT)
        gated = _hold_behind(pool, gate)
        doomed = pool.options(timeout=1.0).submit(tasks.sleep_long)
        held = [pool.submit(tasks.pid, i) for i in range(3)]
        _open_gate_and_wait_held(pool, gate, 4)
        assert gated.result(PROMPT) == "gated"
        with pytest.raises(TaskTimeout) as info:
            doomed.result(PROMPT)
        assert info.value.pid == first_pid
        pids = {fut.result(PROMPT) for fut in held}
        stats = pool.stats()
    assert first_pid not in pids
    assert len(pids) == 1
    assert (stats.timed_out, stats.crashed, stats.failed, stats.succeeded) == (1, 0, 1, 6)


def test_a_crash_fails_only_the_running_task_and_the_held_ones_run_elsewhere(
    tmp_path: Path,
) -> None:
    gate, crash_gate = tmp_path / "gate", tmp_path / "crash"
    with ProcessPool(1, "fork") as pool:
        gated = _hold_behind(pool, gate)
        crash = pool.submit(tasks.exit_after_file, str(crash_gate), 5)
        held = [pool.submit(tasks.add, i, 1) for i in range(5)]
        _open_gate_and_wait_held(pool, gate, 6)
        assert gated.result(PROMPT) == "gated"
        crash_gate.touch()
        with pytest.raises(WorkerCrashed) as info:
            crash.result(PROMPT)
        assert info.value.exitcode == 5
        assert [fut.result(PROMPT) for fut in held] == [1, 2, 3, 4, 5]
        stats = pool.stats()
    assert (stats.crashed, stats.failed, stats.succeeded) == (1, 1, 7)


def test_a_crash_in_a_held_map_chunk_fails_that_chunk_and_no_other() -> None:
    kinds = ["ok"] * 40
    kinds[25] = "crash"
    with ProcessPool(1, "fork") as pool:
        assert pool.submit(tasks.pid).result(PROMPT) > 0
        got: list[Any] = []
        results = pool.map(tasks.maybe_crash_or_hang, kinds, range(40), chunksize=5, buffersize=8)
        with pytest.raises(WorkerCrashed) as info:
            got.extend(results)
        assert info.value.exitcode == 7
        # Chunks 0-4 (items 0-24) came back; chunk 5 (items 25-29) crashed.
        assert got == list(range(25))
        assert pool.submit(tasks.add, 1, 1).result(PROMPT) == 2
        assert pool.stats().crashed == 1


def test_recycling_by_task_count_never_gives_a_worker_more_than_its_quota() -> None:
    with ProcessPool(1, "fork", max_tasks_per_child=4) as pool:
        assert pool.submit(tasks.pid).result(PROMPT) > 0
        pids = [fut.result(PROMPT) for fut in [pool.submit(tasks.pid) for _ in range(40)]]
        stats = pool.stats()
    counts: dict[int, int] = {}
    for pid in pids:
        counts[pid] = counts.get(pid, 0) + 1
    assert max(counts.values()) <= 4
    assert (len(pids), stats.succeeded) == (40, 41)
    assert stats.recycled >= 10


def test_a_worker_over_its_memory_cap_runs_what_it_holds_then_leaves(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with ProcessPool(1, max_memory_per_child=100 << 20) as pool:
        gated = _hold_behind(pool, gate)
        grow = pool.submit(tasks.grow_memory, 150)  # puts its worker over the cap
        held = [pool.submit(tasks.pid) for _ in range(3)]
        gate.touch()  # the worker takes the four queued tasks at once
        assert gated.result(PROMPT) == "gated"
        grown_pid = grow.result(PROMPT)
        # The held tasks ran on the worker that held them: none lost, none
        # moved (unheld, they would have gone to its replacement).
        assert [fut.result(PROMPT) for fut in held] == [grown_pid] * 3
        eventually(lambda: pool.stats().recycled == 1, "the grown worker is recycled")
        assert pool.submit(tasks.pid).result(PROMPT) != grown_pid
        stats = pool.stats()
    assert (stats.succeeded, stats.failed, stats.recycled) == (7, 0, 1)


def test_terminate_cancels_held_tasks_instead_of_leaving_them_pending(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    pool = ProcessPool(1, "fork")
    try:
        gated = _hold_behind(pool, gate)
        blocked = pool.submit(tasks.sleep_long)
        held = [pool.submit(tasks.pid) for _ in range(3)]
        _open_gate_and_wait_held(pool, gate, 4)
        assert gated.result(PROMPT) == "gated"
    finally:
        pool.terminate()
    unrun: list[Future[Any]] = [blocked, *held]
    for fut in unrun:
        with pytest.raises(CancelledError):
            fut.result(PROMPT)
    assert pool.stats().cancelled == 4


def test_large_messages_are_not_pipelined_into_a_deadlock() -> None:
    # Task and result each far beyond a pipe's buffer: if the parent wrote a
    # held task while the worker wrote a large reply, both would block.
    big = os.urandom(1 << 20)
    with ProcessPool(1, "fork") as pool:
        assert pool.submit(tasks.pid).result(PROMPT) > 0
        futures = [pool.submit(tasks.identity, big) for _ in range(6)]
        assert all(fut.result(PROMPT) == big for fut in futures)


def test_cancel_running_pools_hold_no_task_behind_a_running_one(tmp_path: Path) -> None:
    gate, second_gate, started = tmp_path / "gate", tmp_path / "gate2", tmp_path / "started"
    with ProcessPool(1, "fork", cancel_running=True) as pool:
        gated = _hold_behind(pool, gate)
        running = pool.submit(tasks.started_then_wait, str(started), str(second_gate), "ran")
        behind = pool.submit(tasks.pid)
        gate.touch()
        eventually(started.exists, "the second gated task started")
        assert _held(pool) == 1
        # Not held by the worker: cancelling it kills nothing and it never runs.
        assert behind.cancel()
        second_gate.touch()
        assert (gated.result(PROMPT), running.result(PROMPT)) == ("gated", "ran")
        assert pool.stats().crashed == 0


def test_a_round_whose_done_callback_raises_leaves_the_rest_to_the_failure_handler() -> None:
    """finish_all: a callback's KeyboardInterrupt delivers nothing twice and loses nothing.

    The dispatcher resolves a round's outcomes in one pass. When a done-callback
    raises partway, the outcome it rode on counts as delivered, and the tasks
    after it go back to ``pending`` (where the dispatcher's failure handler fails
    them loudly) instead of vanishing, with the counts matching what happened.
    """
    state = ProcessState(Lifecycle(PoolOptions.build(max_workers=1)), None, b"", None, None, False)
    try:
        futures: list[Future[Any]] = [Future() for _ in range(4)]
        round_ = [Task(b"", None, future, None) for future in futures]
        state.pending.update(round_)
        state.unfinished = len(round_)

        def interrupt(_: Future[Any]) -> None:
            raise KeyboardInterrupt

        futures[1].add_done_callback(interrupt)
        outcomes = [(round_[0], True, "a"), (round_[1], False, ValueError("b"))]
        outcomes += [(round_[2], True, "c"), (round_[3], True, "d")]
        with pytest.raises(KeyboardInterrupt):
            state.finish_all(outcomes)

        assert futures[0].result(0) == "a"
        assert isinstance(futures[1].exception(0), ValueError)
        assert not futures[2].done()
        assert not futures[3].done()
        assert state.pending == {round_[2], round_[3]}
        assert (state.counts["succeeded"], state.counts["failed"]) == (1, 1)
        assert state.unfinished == 2
    finally:
        os.close(state.wake_r)
        os.close(state.wake_w)
        state.selector.close()


def test_a_maps_first_chunks_fill_every_idle_workers_pipeline_at_once(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with ProcessPool(2, "fork", min_workers=2) as pool:
        assert len({fut.result(PROMPT) for fut in [pool.submit(tasks.pid) for _ in range(8)]})
        eventually(lambda: pool.stats().idle == 2, "both workers idle")
        results = pool.map(tasks.wait_for_file, [str(gate)] * 8, range(8))
        with pool._state.lock:  # handed out by map() itself: no dispatcher round yet
            held = sorted(len(w.tasks) for w in pool._state.workers.values())
            queued = len(pool._state.queue)
        gate.touch()
        assert list(range(8)) == list(results)
    # Each worker took its pipelined share of the queue (the dispatcher's
    # rule): more than one chunk each, the rest queued for whoever answers.
    assert min(held) >= 2
    assert sum(held) + queued == 8


def test_a_maps_chunks_held_behind_a_timed_out_chunk_are_not_failed_with_it() -> None:
    with ProcessPool(2, "fork", min_workers=2) as pool:
        assert pool.submit(tasks.pid).result(PROMPT) > 0
        eventually(lambda: pool.stats().idle == 2, "both workers idle")
        view = pool.options(timeout=1.0)
        results = view.map(tasks.sleep_then, [30.0, *[0.0] * 7], range(8), ordered=False)
        got: list[int] = []
        with pytest.raises(TaskTimeout):
            got.extend(results)
        assert list(range(5)) == list(pool.map(tasks.identity, range(5)))
    stats = pool.stats()
    # Only the overrunning chunk failed; the ones held behind it were
    # requeued (then run, or skipped once the map ended at the error).
    assert (stats.timed_out, stats.failed, stats.crashed) == (1, 1, 0)
    assert set(got) <= set(range(1, 8))
    assert stats.succeeded + stats.cancelled == stats.submitted - 1


def test_a_bounded_pools_map_admits_its_first_chunks_one_by_one() -> None:
    with ProcessPool(1, "fork", queue_size=2) as pool:
        assert list(range(10)) == list(pool.map(tasks.identity, range(10), buffersize=2))
        assert list(range(10)) == list(pool.map(tasks.identity, range(10), buffersize=8))
