"""The exception hierarchy: one root, standard bases where callers expect them."""

from __future__ import annotations

import concurrent.futures
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import poolkit
from poolkit import _errors

SRC = str(Path(poolkit.__file__).resolve().parent.parent)
# Every class the errors module defines, as users import them from poolkit.
PUBLIC_ERRORS = [getattr(poolkit, name) for name in _errors.__all__]


@pytest.mark.parametrize(
    "error", [poolkit.PoolClosed, poolkit.PoolTimeout, poolkit.PoolOverload, poolkit.ReleaseError]
)
def test_every_error_derives_from_pool_error(error: type[Exception]) -> None:
    assert issubclass(error, poolkit.PoolError)
    assert error.__doc__, f"{error.__name__} must document when it is raised"


def test_pool_timeout_is_a_timeout_error() -> None:
    """Generic ``except TimeoutError`` handling catches a pool timeout."""
    assert issubclass(poolkit.PoolTimeout, TimeoutError)
    assert issubclass(poolkit.PoolTimeout, concurrent.futures.TimeoutError)


def test_pool_closed_is_a_runtime_error() -> None:
    """``Executor.submit`` after shutdown raises RuntimeError; PoolClosed is one."""
    assert issubclass(poolkit.PoolClosed, RuntimeError)


def test_release_error_is_a_value_error() -> None:
    assert issubclass(poolkit.ReleaseError, ValueError)


@pytest.mark.parametrize("error", PUBLIC_ERRORS, ids=lambda e: e.__name__)
def test_errors_are_named_by_their_public_path(error: type[BaseException]) -> None:
    """Tracebacks print ``poolkit.PoolBroken``, the name users import, not a private module."""
    assert error.__module__ == "poolkit"
    assert getattr(poolkit, error.__qualname__) is error
    last_line = traceback.format_exception_only(error("x"))[-1]
    assert last_line == f"poolkit.{error.__name__}: x\n"


def test_errors_unpickle_in_a_fresh_interpreter() -> None:
    """Pickled by their public name, the errors rebuild in a process that imported nothing yet."""
    errors = [
        poolkit.PoolBroken("broken"),
        poolkit.TaskTimeout("late", timeout=1.5, pid=7),
        poolkit.WorkerCrashed("died", pid=8, exitcode=-9),
    ]
    check = (
        "import pickle, sys\n"
        "errors = pickle.loads(sys.stdin.buffer.read())\n"
        "print([(type(e).__module__, type(e).__name__, str(e)) for e in errors])\n"
        "print(errors[1].timeout, errors[1].pid, errors[2].signal)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        input=pickle.dumps(errors),
        capture_output=True,
        env={"PYTHONPATH": SRC},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        "[('poolkit', 'PoolBroken', 'broken'), ('poolkit', 'TaskTimeout', 'late'), "
        "('poolkit', 'WorkerCrashed', 'died')]",
        "1.5 7 9",
    ]


def test_task_cancelled_is_a_pool_error_and_a_cancelled_error() -> None:
    """``except PoolError`` and ``except CancelledError`` both catch a group's cancel."""
    assert issubclass(poolkit.TaskCancelled, poolkit.PoolError)
    assert issubclass(poolkit.TaskCancelled, concurrent.futures.CancelledError)
