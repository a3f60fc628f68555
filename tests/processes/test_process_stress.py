"""Stress: crashes, timeouts, errors and cancellations at once; nothing lost, nothing left."""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import Future, wait
from typing import Any

import pytest

from poolkit import ProcessPool, TaskTimeout, WorkerCrashed
from tests.processes import tasks
from tests.processes.conftest import PROMPT, alive, eventually, zombie_children

# Seconds of submitting; every outcome is then awaited (bounded by PROMPT).
BUDGET = 2.0
KINDS = ["ok"] * 8 + ["slow"] * 4 + ["raise"] * 3 + ["crash"] * 2 + ["hang"] * 3


def _expected_error(kind: str) -> type[BaseException] | None:
    return {"raise": ValueError, "crash": WorkerCrashed, "hang": TaskTimeout}.get(kind)


@pytest.mark.stress
def test_stress_crashes_timeouts_and_cancellations_lose_nothing() -> None:
    """Every Future ends with its result or its documented error; every worker is reaped."""
    rng = random.Random(20261203)
    submitted: list[tuple[str, int, Future[Any]]] = []
    cancelled: set[int] = set()  # ids of Futures whose cancel() returned True
    go_failures: list[BaseException] = []
    lock = threading.Lock()
    pids: set[int] = set()
    stop_cancelling = threading.Event()

    # A bounded queue: submitters wait for room, so the backlog (and the
    # time to drain it after the budget) stays small.
    pool = ProcessPool(
        4,
        "fork",
        queue_size=8,
        cancel_running=True,
        on_error=lambda exc, fn: go_failures.append(exc),
    )
    timed = pool.options(timeout=0.05)

    def canceller() -> None:
        picker = random.Random(7)
        while not stop_cancelling.is_set():
            with lock:
                target = picker.choice(submitted)[2] if submitted else None
            if target is not None and picker.random() < 0.3 and target.cancel():
                with lock:
                    cancelled.add(id(target))
            time.sleep(0.002)

    thread = threading.Thread(target=canceller)
    thread.start()
    gone: list[str] = []  # kinds of the go tasks
    try:
        deadline = time.monotonic() + BUDGET
        n = 0
        while time.monotonic() < deadline:
            kind = rng.choice(KINDS)
            n += 1
            view = timed if kind == "hang" else pool
            if rng.random() < 0.05:
                view.go(tasks.maybe_crash_or_hang, kind, n)
                gone.append(kind)
                continue
            fut = view.submit(tasks.maybe_crash_or_hang, kind, n)
            with lock:
                submitted.append((kind, n, fut))
            if n % 25 == 0:
                pids.update(pool.pids())
    finally:
        stop_cancelling.set()
        thread.join(PROMPT)

    _, not_done = wait([fut for _, _, fut in submitted], timeout=PROMPT)
    assert not_done == set()
    for kind, n, fut in submitted:
        if fut.cancelled():
            assert id(fut) in cancelled, f"task {n} ({kind}) was cancelled by nobody"
            continue
        error = _expected_error(kind)
        if error is None:
            assert fut.result(0) == n
        else:
            exc = fut.exception(0)
            assert isinstance(exc, error), f"task {n} ({kind}) ended with {exc!r}"
            if isinstance(exc, WorkerCrashed | TaskTimeout) and exc.pid:
                pids.add(exc.pid)
    pool.wait(PROMPT)
    pool.stop(timeout=PROMPT)
    stats = pool.stats()
    assert stats.submitted == stats.completed + stats.cancelled
    assert (stats.queued, stats.running, stats.workers, stats.broken) == (0, 0, 0, False)
    assert stats.submitted == len(submitted) + len(gone)
    # go tasks cannot be cancelled: each failing one reached on_error exactly once.
    expected = sorted(e.__name__ for k in gone if (e := _expected_error(k)) is not None)
    assert sorted(type(exc).__name__ for exc in go_failures) == expected
    eventually(lambda: not any(alive(pid) for pid in pids), "every worker process exits")
    assert zombie_children(os.getpid()) == []
    assert pool.pids() == []
