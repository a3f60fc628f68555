"""ProcessPool under faults: timeouts, crashes, cancellation, recycling, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest

from poolkit import PoolBroken, PoolTimeout, ProcessPool, TaskTimeout, WorkerCrashed
from tests.processes import tasks
from tests.processes.conftest import PROMPT, alive, eventually, zombie_children

ROOT = Path(__file__).resolve().parents[2]


def _started_pid(path: Path) -> int:
    eventually(lambda: path.exists() and path.read_text() != "", f"{path.name} written")
    return int(path.read_text())


def test_pool_survives_100_timed_out_tasks_in_a_row_and_still_runs_tasks() -> None:
    with ProcessPool(4, "fork") as pool:
        view = pool.options(timeout=0.05)
        futures = [view.submit(tasks.sleep_long) for _ in range(100)]
        for fut in futures:
            with pytest.raises(TaskTimeout, match=r"ran past its timeout of 0\.05 s"):
                fut.result(PROMPT)
        assert pool.submit(tasks.add, 2, 3).result(PROMPT) == 5
        stats = pool.stats()
    assert (stats.timed_out, stats.failed, stats.succeeded) == (100, 100, 1)


def test_task_timeout_is_a_timeout_error_naming_the_killed_worker(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with ProcessPool(1) as pool:
        fut = pool.options(timeout=0.2).submit(tasks.touch_then_sleep, str(started))
        pid = _started_pid(started)
        with pytest.raises(TimeoutError) as info:
            fut.result(PROMPT)
        assert isinstance(info.value, TaskTimeout)
        assert (pid, 0.2) == (info.value.pid, info.value.timeout)
        eventually(lambda: not alive(pid), "the timed-out worker is gone")


def test_timeout_stops_only_its_own_task(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with ProcessPool(2) as pool:
        other = pool.submit(tasks.started_then_wait, str(started), str(gate), "other")
        other_pid = _started_pid(started)
        doomed = pool.options(timeout=0.05).submit(tasks.sleep_long)
        with pytest.raises(TaskTimeout):
            doomed.result(PROMPT)
        gate.touch()
        assert other.result(PROMPT) == "other"
        assert alive(other_pid)


@pytest.mark.parametrize(
    ("fn", "args", "exitcode"),
    [(tasks.exit_now, (3,), 3), (tasks.segfault, (), -signal.SIGSEGV), (tasks.kill_self, (), -9)],
    ids=["os._exit", "segfault", "sigkill-inside"],
)
def test_a_crash_fails_only_its_task_with_worker_crashed(
    fn: Any, args: tuple[Any, ...], exitcode: int
) -> None:
    with ProcessPool(2) as pool:
        healthy = [pool.submit(tasks.sleep_then, 0.05, i) for i in range(3)]
        with pytest.raises(WorkerCrashed) as info:
            pool.submit(fn, *args).result(PROMPT)
        assert exitcode == info.value.exitcode
        assert [f.result(PROMPT) for f in healthy] == [0, 1, 2]
        assert pool.submit(tasks.square, 3).result(PROMPT) == 9
        assert pool.stats().crashed == 1


def test_sigkill_of_a_worker_from_outside_fails_its_task(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with ProcessPool(1) as pool:
        fut = pool.submit(tasks.touch_then_sleep, str(started))
        pid = _started_pid(started)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match=f"pid {pid}") as info:
            fut.result(PROMPT)
        assert (pid, signal.SIGKILL) == (info.value.pid, info.value.signal)
        assert pool.submit(tasks.square, 2).result(PROMPT) == 4


def test_cancel_running_kills_the_task_when_enabled(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with ProcessPool(1, cancel_running=True) as pool:
        fut = pool.submit(tasks.touch_then_sleep, str(started))
        pid = _started_pid(started)
        assert fut.cancel()
        assert fut.cancelled()
        with pytest.raises(CancelledError):
            fut.result(0)
        eventually(lambda: not alive(pid), "the cancelled task's worker is gone")
        assert pool.submit(tasks.identity, 1).result(PROMPT) == 1
        assert pool.stats().cancelled == 1


def test_running_task_cannot_be_cancelled_by_default(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with ProcessPool(1) as pool:
        fut = pool.submit(tasks.started_then_wait, str(started), str(gate), "kept")
        _started_pid(started)
        assert not fut.cancel()
        gate.touch()
        assert fut.result(PROMPT) == "kept"


def test_group_first_error_kills_running_siblings_with_cancel_running(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with ProcessPool(2, cancel_running=True) as pool:
        group = pool.group(cancel_on_error=True)
        sibling = group.submit(tasks.touch_then_sleep, str(started))
        pid = _started_pid(started)
        group.submit(tasks.fail, "first error")
        with pytest.raises(ValueError, match="first error"):
            group.wait(PROMPT)
        assert sibling.cancelled()
        eventually(lambda: not alive(pid), "the sibling's worker is gone")


def test_initializer_failure_breaks_the_pool_without_a_restart_loop() -> None:
    pool = ProcessPool(2, initializer=tasks.init_fail)
    futures = [pool.submit(tasks.identity, i) for i in range(3)]
    for fut in futures:
        with pytest.raises(PoolBroken, match="initializer") as info:
            fut.result(PROMPT)
        assert "initializer broke" in str(info.value.__cause__)
    with pytest.raises(PoolBroken, match="create a new pool"):
        pool.submit(tasks.identity, 1)
    assert pool.broken
    assert pool.stats().broken
    assert "broken" in repr(pool)
    pool.stop(timeout=PROMPT)
    assert pool.stats().started <= 2
    assert pool.pids() == []


def test_max_tasks_per_child_replaces_the_worker() -> None:
    with ProcessPool(1, "fork", max_tasks_per_child=2) as pool:
        pids = [pool.submit(tasks.pid).result(PROMPT) for _ in range(6)]
        recycled = pool.stats().recycled
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert recycled == 3


def test_max_memory_per_child_replaces_a_worker_that_grew() -> None:
    with ProcessPool(1, max_memory_per_child=100 << 20) as pool:
        small = pool.submit(tasks.pid).result(PROMPT)
        assert small == pool.submit(tasks.pid).result(PROMPT)
        grown = pool.submit(tasks.grow_memory, 150).result(PROMPT)
        assert small == grown
        assert grown != pool.submit(tasks.pid).result(PROMPT)
        assert pool.stats().recycled == 1


def test_resize_under_load_grows_and_shrinks(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    marks = [tmp_path / f"started-{i}" for i in range(4)]
    with ProcessPool(1, "fork") as pool:
        futures = [
            pool.submit(tasks.started_then_wait, str(m), str(gate), i) for i, m in enumerate(marks)
        ]
        eventually(marks[0].exists, "one task runs")
        pool.resize(4)
        eventually(lambda: all(m.exists() for m in marks), "all four run at once")
        assert pool.stats().running == 4
        pool.resize(1)
        gate.touch()
        assert [f.result(PROMPT) for f in futures] == [0, 1, 2, 3]
        eventually(lambda: pool.stats().workers == 1, "surplus workers retire")
        assert pool.max_workers == 1


def test_stop_with_a_deadline_kills_running_tasks(tmp_path: Path) -> None:
    started = tmp_path / "started"
    pool = ProcessPool(1)
    fut = pool.submit(tasks.touch_then_sleep, str(started))
    pid = _started_pid(started)
    with pytest.raises(PoolTimeout, match="killed 1 workers"):
        pool.stop(timeout=0.1)
    assert fut.cancelled()
    assert not alive(pid)
    assert pool.pids() == []


def test_no_process_is_left_after_stop() -> None:
    pool = ProcessPool(2, min_workers=2)
    eventually(lambda: len(pool.pids()) == 2, "two workers start")
    pids = pool.pids()
    pool.stop()
    assert [p for p in pids if alive(p)] == []
    assert zombie_children(os.getpid()) == []


def test_terminate_kills_running_tasks_and_cancels_queued(tmp_path: Path) -> None:
    started = tmp_path / "started"
    pool = ProcessPool(1)
    running = pool.submit(tasks.touch_then_sleep, str(started))
    pid = _started_pid(started)
    queued = pool.submit(tasks.identity, 1)
    pool.terminate()
    assert running.cancelled()
    assert queued.cancelled()
    assert not alive(pid)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_leaving_the_block_with_an_error_kills_the_workers(
    tmp_path: Path, error: type[BaseException]
) -> None:
    started = tmp_path / "started"

    def body() -> None:
        with ProcessPool(1) as pool:
            pool.submit(tasks.touch_then_sleep, str(started))
            _started_pid(started)
            raise error()

    with pytest.raises(error):
        body()
    assert not alive(int(started.read_text()))
    assert zombie_children(os.getpid()) == []


_PARENT = """
import os, signal, sys, time
# Ctrl-C as a terminal delivers it, even when the suite runs as a shell's
# background job (which starts its children with SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {root!r})
from poolkit import ProcessPool
from tests.processes import tasks
if __name__ == "__main__":
    pool = ProcessPool(2, {method!r})
    pool.submit(tasks.touch_then_sleep, {started!r})
    pool.submit(tasks.touch_then_sleep, {started!r} + "-2")
    tasks.wait_for_file({started!r})
    tasks.wait_for_file({started!r} + "-2")
    {ending}
"""


def _run_parent(
    tmp_path: Path, method: str, ending: str
) -> tuple[subprocess.Popen[bytes], list[int]]:
    started = tmp_path / "started"
    script = tmp_path / "parent.py"
    code = _PARENT.format(root=str(ROOT), method=method, started=str(started), ending=ending)
    script.write_text(textwrap.dedent(code))
    errors = (tmp_path / "stderr").open("wb")
    parent = subprocess.Popen([sys.executable, str(script)], stderr=errors)
    try:
        pids = [_started_pid(started), _started_pid(Path(f"{started}-2"))]
    except BaseException:
        state = parent.poll()
        tree = subprocess.run(
            ["ps", "-eo", "pid,ppid,stat,etime,cmd"], capture_output=True, text=True
        )
        parent.kill()
        parent.wait()
        where = [line for line in tree.stdout.splitlines() if "python" in line]
        raise AssertionError(
            f"exit={state}\n{(tmp_path / 'stderr').read_text()}\n" + "\n".join(where)
        ) from None
    finally:
        errors.close()
    return parent, pids


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_workers_die_when_the_parent_is_killed(tmp_path: Path, method: str) -> None:
    parent, pids = _run_parent(tmp_path, method, "time.sleep(60)")
    parent.kill()
    parent.wait(PROMPT)
    eventually(lambda: not any(alive(p) for p in pids), "orphaned workers exit")


def _parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_the_forkserver_exits_too_when_the_parent_is_killed(tmp_path: Path) -> None:
    """Workers holding the forkserver's liveness pipe must not keep it (and so themselves) alive."""
    parent, pids = _run_parent(tmp_path, "forkserver", "time.sleep(60)")
    servers = {_parent_pid(p) for p in pids}
    assert parent.pid not in servers  # the workers' parent is the forkserver
    parent.kill()
    parent.wait(PROMPT)
    eventually(lambda: not any(alive(p) for p in [*pids, *servers]), "workers and forkserver exit")


def test_workers_die_when_the_parent_raises_without_stopping(tmp_path: Path) -> None:
    parent, pids = _run_parent(tmp_path, "forkserver", "raise SystemExit(3)")
    assert parent.wait(PROMPT) == 3
    eventually(lambda: not any(alive(p) for p in pids), "workers exit with the parent")


def test_map_timeout_fails_the_chunk_that_overran() -> None:
    with ProcessPool(2, "fork") as pool:
        view = pool.options(timeout=0.5)
        results = view.map(tasks.sleep_then, [0.0, 30.0, 0.0], ["a", "b", "c"])
        assert next(results) == "a"
        with pytest.raises(TaskTimeout):
            next(results)
        assert list(pool.map(tasks.identity, [1, 2])) == [1, 2]


def test_ctrl_c_in_the_parent_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGINT reaches the parent's `with` block as KeyboardInterrupt: it kills the workers."""
    parent, pids = _run_parent(tmp_path, "forkserver", "with pool:\n        time.sleep(60)")
    parent.send_signal(signal.SIGINT)
    try:
        assert parent.wait(PROMPT) != 0
    finally:
        parent.kill()  # no-op once it exited; never leave it running on a failure
        parent.wait()
    assert not any(alive(p) for p in pids)


def test_timeout_and_crash_errors_survive_pickling_with_their_fields() -> None:
    """A task that re-raises them (a nested pool) must hand them on intact."""
    import pickle

    timeout = pickle.loads(pickle.dumps(TaskTimeout("late", timeout=1.5, pid=7)))
    crashed = pickle.loads(pickle.dumps(WorkerCrashed("died", pid=8, exitcode=-11)))
    assert (str(timeout), timeout.timeout, timeout.pid) == ("late", 1.5, 7)
    assert (str(crashed), crashed.pid, crashed.exitcode, crashed.signal) == ("died", 8, -11, 11)


def test_a_crash_inside_map_fails_at_its_chunk_and_the_pool_goes_on() -> None:
    with ProcessPool(2, "fork") as pool:
        results = pool.map(tasks.exit_now, [5])
        with pytest.raises(WorkerCrashed, match="exit code 5"):
            next(results)
        assert list(pool.map(tasks.square, range(4))) == [0, 1, 4, 9]
        stats = pool.stats()
    assert stats.submitted == stats.completed + stats.cancelled
