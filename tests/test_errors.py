"""The exception hierarchy: one root, standard bases where callers expect them."""

from __future__ import annotations

import concurrent.futures

import pytest

import poolkit


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


def test_task_cancelled_is_a_pool_error_and_a_cancelled_error() -> None:
    """``except PoolError`` and ``except CancelledError`` both catch a group's cancel."""
    assert issubclass(poolkit.TaskCancelled, poolkit.PoolError)
    assert issubclass(poolkit.TaskCancelled, concurrent.futures.CancelledError)
