"""Shared helpers for the ProcessPool tests: process inspection through /proc."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from poolkit import ProcessPool

# Upper bound for waits on things that must happen promptly; hitting it means
# a hang, never slowness by design (no test asserts on elapsed time).
PROMPT = 20.0


def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    deadline = time.monotonic() + PROMPT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def zombie_children(pid: int) -> list[int]:
    """Direct children of ``pid`` that exited and were never reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.fixture
def ppool() -> Iterator[ProcessPool]:
    """A 2-worker pool (default start method), checked process-free after the test."""
    pool = ProcessPool(2, name="test-pool")
    seen: set[int] = set()
    try:
        yield pool
        seen.update(pool.pids())
    finally:
        pool.stop(wait=True, cancel_pending=True, timeout=PROMPT)
    assert [p for p in seen if alive(p)] == []
    assert zombie_children(os.getpid()) == []
