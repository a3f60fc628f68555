"""Per-task options: submit keeps the Executor contract, options(...) carries the timeout."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from poolkit import ProcessPool, TaskTimeout
from poolkit.processes import TaskOptions
from tests.processes import tasks
from tests.processes.conftest import PROMPT, alive, eventually


def _started_pid(path: Path) -> int:
    eventually(lambda: path.exists() and path.read_text() != "", f"{path.name} written")
    return int(path.read_text())


def _via_submit(pool: ProcessPool) -> Any:
    return pool.submit(tasks.echo_timeout, 1, timeout=3).result(PROMPT)


def _via_try_submit(pool: ProcessPool) -> Any:
    fut = pool.try_submit(tasks.echo_timeout, 1, timeout=3)
    assert fut is not None
    return fut.result(PROMPT)


def _via_asubmit(pool: ProcessPool) -> Any:
    return asyncio.run(pool.asubmit(tasks.echo_timeout, 1, timeout=3))


def _via_group(pool: ProcessPool) -> Any:
    with pool.group() as group:
        group.submit(tasks.echo_timeout, 1, timeout=3)
    return group.wait(PROMPT)[0]


def _via_options_submit(pool: ProcessPool) -> Any:
    return pool.options(timeout=PROMPT).submit(tasks.echo_timeout, 1, timeout=3).result(PROMPT)


def _via_group_options(pool: ProcessPool) -> Any:
    group = pool.group()
    group.options(timeout=PROMPT).submit(tasks.echo_timeout, 1, timeout=3)
    return group.wait(PROMPT)[0]


@pytest.mark.parametrize(
    "call",
    [
        _via_submit,
        _via_try_submit,
        _via_asubmit,
        _via_group,
        _via_options_submit,
        _via_group_options,
    ],
)
def test_a_timeout_keyword_reaches_the_function(
    ppool: ProcessPool, call: Callable[[ProcessPool], Any]
) -> None:
    """Executor.submit(fn, /, *args, **kwargs) passes every keyword to fn, timeout too."""
    assert call(ppool) == (1, 3)


def test_go_passes_a_timeout_keyword_to_the_function() -> None:
    seen: list[BaseException] = []
    with ProcessPool(1, on_error=lambda exc, fn: seen.append(exc)) as pool:
        # identity() takes no timeout: if the keyword reaches it, it raises TypeError.
        pool.go(tasks.identity, 1, timeout=3)  # type: ignore[call-arg]
        pool.wait(PROMPT)
    assert [TypeError] == [type(exc) for exc in seen]


def test_options_timeout_kills_a_task_past_its_timeout(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with ProcessPool(1) as pool:
        fut = pool.options(timeout=0.2).submit(tasks.touch_then_sleep, str(started))
        pid = _started_pid(started)
        with pytest.raises(TaskTimeout, match=r"timeout of 0\.2 s") as info:
            fut.result(PROMPT)
        assert (pid, 0.2) == (info.value.pid, info.value.timeout)
        eventually(lambda: not alive(pid), "the timed-out worker is gone")
        assert pool.submit(tasks.identity, 1).result(PROMPT) == 1
        assert pool.stats().timed_out == 1


def test_every_task_method_of_the_options_view_applies_the_timeout() -> None:
    failures: list[BaseException] = []
    done = threading.Event()

    def on_error(exc: BaseException, fn: Any) -> None:
        failures.append(exc)
        done.set()

    async def asubmit(view: TaskOptions) -> None:
        await view.asubmit(tasks.sleep_long)

    with ProcessPool(2, on_error=on_error) as pool:
        view = pool.options(timeout=0.05)
        view.go(tasks.sleep_long)
        submitted = view.submit(tasks.sleep_long)
        tried = view.try_submit(tasks.sleep_long)
        assert tried is not None
        group = view.group()
        grouped = group.submit(tasks.sleep_long)
        with pytest.raises(TaskTimeout):
            group.wait(PROMPT)
        with pytest.raises(TaskTimeout):
            asyncio.run(asubmit(view))
        results = view.map(tasks.sleep_then, [0.0, 30.0], ["fast", "slow"])
        assert next(results) == "fast"
        with pytest.raises(TaskTimeout):
            next(results)
        assert done.wait(PROMPT)
        for fut in (submitted, tried, grouped):
            with pytest.raises(TaskTimeout):
                fut.result(PROMPT)
    assert [TaskTimeout] == [type(exc) for exc in failures]


def test_group_options_apply_to_one_task_of_the_group(tmp_path: Path) -> None:
    with ProcessPool(2) as pool:
        group = pool.group()
        kept = group.submit(tasks.sleep_then, 0.3, "kept")
        doomed = group.options(timeout=0.05).submit(tasks.sleep_long)
        with pytest.raises(TaskTimeout):
            group.wait(PROMPT)
        assert kept.result(PROMPT) == "kept"
        assert isinstance(doomed.exception(0), TaskTimeout)
        assert len(group) == 2


def test_options_view_is_immutable_and_says_what_it_applies(ppool: ProcessPool) -> None:
    view = ppool.options(timeout=2.5)
    assert view.timeout == 2.5
    assert "timeout=2.5" in repr(view)
    with pytest.raises(AttributeError):
        view.timeout = 1.0  # type: ignore[misc]
    assert ppool.options().timeout is None
    assert ppool.options(timeout=math.inf).timeout is None  # inf: no limit


def test_infinite_option_timeout_means_no_limit(ppool: ProcessPool) -> None:
    assert ppool.options(timeout=math.inf).submit(tasks.identity, 7).result(PROMPT) == 7


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_bad_option_values_raise_naming_the_parameter(
    ppool: ProcessPool, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        ppool.options(timeout=value)
    with pytest.raises(error, match="timeout"):
        ppool.group().options(timeout=value)
    with pytest.raises(TypeError, match="bogus"):
        ppool.options(bogus=1)  # type: ignore[call-arg]
    assert ppool.submit(tasks.identity, 1).result(PROMPT) == 1


def test_map_timeout_is_the_whole_maps_deadline_as_in_executor_map(tmp_path: Path) -> None:
    """map(timeout=) keeps Executor.map's meaning; the chunk goes on running."""
    from poolkit import PoolTimeout

    gate = tmp_path / "gate"
    with ProcessPool(1) as pool:
        results = pool.map(tasks.wait_for_file, [str(gate)], ["late"], timeout=0.1)
        with pytest.raises(PoolTimeout):
            next(results)
        gate.touch()
        pool.wait(PROMPT)
        stats = pool.stats()
    assert (stats.timed_out, stats.failed) == (0, 0)


def test_submit_signature_matches_executor(ppool: ProcessPool) -> None:
    """No keyword is reserved by the pool: fn may take any, named as the pool's options."""
    fut: Future[Any] = ppool.submit(tasks.echo_timeout, x=1, timeout=None)
    assert fut.result(PROMPT) == (1, None)
