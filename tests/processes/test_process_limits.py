"""Waits of any length, and a dispatcher that dies breaking its pool loudly."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from poolkit import PoolBroken, ProcessPool
from poolkit.processes import _dispatch
from tests.processes import tasks
from tests.processes.conftest import PROMPT, alive, eventually, zombie_children

THIRTY_DAYS = 30 * 86400.0
HUGE = [THIRTY_DAYS, 1e300]


def _started(path: Path) -> None:
    eventually(lambda: path.exists() and path.read_text() != "", f"{path.name} written")


@pytest.mark.parametrize("seconds", HUGE, ids=["30-days", "1e300"])
def test_a_huge_task_timeout_lets_the_task_and_later_tasks_run(
    tmp_path: Path, seconds: float
) -> None:
    """The dispatcher waits for a far deadline in slices instead of dying (OverflowError)."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    with ProcessPool(1) as pool:
        fut = pool.options(timeout=seconds).submit(
            tasks.started_then_wait, str(started), str(gate), "done"
        )
        _started(started)  # the dispatcher has planned a timer for its deadline
        gate.touch()
        assert fut.result(PROMPT) == "done"
        assert pool.submit(tasks.identity, 2).result(PROMPT) == 2
        assert "open" in repr(pool)


@pytest.mark.parametrize("seconds", HUGE, ids=["30-days", "1e300"])
def test_a_huge_idle_timeout_keeps_the_pool_running(seconds: float) -> None:
    with ProcessPool(1, idle_timeout=seconds) as pool:
        assert pool.submit(tasks.identity, 1).result(PROMPT) == 1
        # The worker is now an idle surplus one: its expiry is 30 days away.
        assert pool.submit(tasks.identity, 2).result(PROMPT) == 2
        stats = pool.stats()
        assert (stats.broken, stats.closed, stats.succeeded) == (False, False, 2)


ANY_LENGTH = pytest.mark.parametrize("seconds", [*HUGE, math.inf], ids=["30-days", "1e300", "inf"])


@ANY_LENGTH
def test_pool_waits_of_any_length_work(tmp_path: Path, seconds: float) -> None:
    """wait(), stop() and a per-chunk map timeout take any number of seconds, inf too."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    pool = ProcessPool(1)
    fut = pool.submit(tasks.started_then_wait, str(started), str(gate), 3)
    _started(started)
    threading.Timer(0.05, gate.touch).start()
    pool.wait(seconds)  # really waits: the task ends only once the gate opens
    assert fut.result(0) == 3
    assert list(pool.options(timeout=seconds).map(tasks.identity, range(2))) == [0, 1]
    late = pool.submit(tasks.sleep_then, 0.05, "late")
    pool.stop(timeout=seconds)
    assert late.result(0) == "late"
    assert pool.pids() == []


@ANY_LENGTH
def test_result_map_and_group_waits_of_any_length_work(seconds: float) -> None:
    """Future.result, map(timeout=) and group.wait on a ProcessPool take any timeout.

    (Their waits live in the shared PoolFuture, lazy_map and TaskGroup.)
    """
    with ProcessPool(1) as pool:
        assert pool.submit(tasks.sleep_then, 0.05, 3).result(seconds) == 3
        assert list(pool.map(tasks.square, range(3), timeout=seconds)) == [0, 1, 4]
        group = pool.group()
        group.submit(tasks.sleep_then, 0.05, 4)
        assert group.wait(seconds) == [4]


def _fail_once(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, error: BaseException
) -> None:
    """Make ``target.<name>`` raise ``error`` the first time the dispatcher calls it."""
    real = getattr(target, name)
    calls: list[int] = []

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, faulty)


@pytest.fixture
def quiet_dispatcher_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level("ERROR", logger="poolkit.processes"):
        yield caplog


def test_a_dispatcher_that_dies_breaks_the_pool_loudly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quiet_dispatcher_log: pytest.LogCaptureFixture,
) -> None:
    """Running, queued and later tasks all fail with PoolBroken from the cause; none hangs."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    fault = RuntimeError("injected dispatcher fault")
    pool = ProcessPool(1, "fork")
    running = pool.submit(tasks.started_then_wait, str(started), str(gate), "ran")
    _started(started)
    pid = pool.pids()[0]
    queued = pool.submit(tasks.identity, 1)
    # The next reply the dispatcher decodes is the running task's: it fails there.
    _fail_once(monkeypatch, _dispatch, "decode_reply", fault)
    gate.touch()
    for fut in (running, queued):
        with pytest.raises(PoolBroken, match="dispatcher thread failed") as info:
            fut.result(PROMPT)
        assert info.value.__cause__ is fault
    with pytest.raises(PoolBroken, match="injected dispatcher fault"):
        pool.submit(tasks.identity, 2)
    with pytest.raises(PoolBroken):
        pool.options(timeout=1.0).go(tasks.identity, 3)
    stats = pool.stats()
    assert (stats.broken, stats.closed, stats.queued, stats.running) == (True, True, 0, 0)
    assert stats.submitted == stats.completed + stats.cancelled
    assert pool.broken
    assert "broken" in repr(pool)
    assert "open" not in repr(pool)
    pool.wait(PROMPT)
    pool.stop(timeout=PROMPT)
    assert not alive(pid)
    assert zombie_children(__import__("os").getpid()) == []
    assert "dispatcher thread failed" in quiet_dispatcher_log.text


def test_a_dispatcher_fault_wakes_blocked_submitters_and_fails_map_and_groups(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quiet_dispatcher_log: pytest.LogCaptureFixture,
) -> None:
    started, gate = tmp_path / "started", tmp_path / "gate"
    fault = MemoryError("injected")
    pool = ProcessPool(1, "fork", queue_size=1)
    group = pool.group()
    running = group.submit(tasks.started_then_wait, str(started), str(gate), "ran")
    _started(started)
    results = pool.map(tasks.identity, range(3), buffersize=1)  # queued: fills the pool
    blocked: list[BaseException | Future[Any]] = []

    def submit_blocked() -> None:
        try:
            blocked.append(pool.submit(tasks.identity, "late"))
        except BaseException as exc:
            blocked.append(exc)

    thread = threading.Thread(target=submit_blocked)
    thread.start()
    eventually(lambda: pool.stats().waiting == 1, "a submitter blocks on the full pool")
    _fail_once(monkeypatch, _dispatch, "decode_reply", fault)
    gate.touch()
    thread.join(PROMPT)
    assert [PoolBroken] == [type(x) for x in blocked]
    with pytest.raises(PoolBroken):
        group.wait(PROMPT)
    assert isinstance(running.exception(0), PoolBroken)
    with pytest.raises(PoolBroken):
        next(results)

    async def asubmit() -> None:
        await pool.asubmit(tasks.identity, 1)

    with pytest.raises(PoolBroken):
        asyncio.run(asubmit())
    pool.stop(timeout=PROMPT)
    assert pool.pids() == []


def test_a_dispatcher_fault_while_idle_breaks_the_pool(
    monkeypatch: pytest.MonkeyPatch, quiet_dispatcher_log: pytest.LogCaptureFixture
) -> None:
    """A fault in the dispatcher's own timer code, with no task running, still breaks it."""
    pool = ProcessPool(1, "fork")
    assert pool.submit(tasks.identity, 1).result(PROMPT) == 1
    pid = pool.pids()[0]
    _fail_once(monkeypatch, pool._dispatcher, "_timer_locked", OverflowError("injected"))
    pool.resize(max_workers=2)  # wakes the dispatcher: it plans its next timer
    eventually(lambda: pool.broken, "the pool breaks")
    with pytest.raises(PoolBroken, match="OverflowError"):
        pool.submit(tasks.identity, 1)
    eventually(lambda: not alive(pid), "the worker is killed")
    pool.stop(timeout=PROMPT)
