"""Shared fixtures for the worker-pool tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from poolkit import WorkerPool

T = TypeVar("T")

# Upper bound for waits on events that must happen promptly; a test that hits
# it is broken (or the code under test hangs), never slow by design.
PROMPT = 10.0


def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds; used for background effects.

    The bound only turns a hang into a failure: no test asserts on elapsed time.
    """
    deadline = time.monotonic() + PROMPT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.001)


def identity(x: T) -> T:
    """Return ``x`` (a picklable, typed task for map/submit tests)."""
    return x


def wait_then_return(gate: threading.Event, value: T) -> T:
    """Wait for ``gate`` (bounded), then return ``value``."""
    gate.wait(PROMPT)
    return value


def pool_threads(prefix: str) -> list[threading.Thread]:
    """Live threads whose name starts with ``prefix``."""
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> Iterator[WorkerPool]:
    """A 4-worker pool, stopped (and checked thread-free) after the test."""
    prefix = f"t-{request.node.name[:40]}"
    wp = WorkerPool(4, thread_name_prefix=prefix)
    try:
        yield wp
    finally:
        wp.stop(wait=True, cancel_pending=True, timeout=PROMPT)
        assert pool_threads(prefix) == []
