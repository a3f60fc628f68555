"""Nothing lost: group members added while waiting, map results not kept after yielding."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import Future
from typing import Any

import pytest

from poolkit import ProcessPool
from tests.processes import tasks
from tests.processes.conftest import PROMPT, eventually

# Members the chain adds, one from each finished member's done-callback.
CHAIN = 12


def test_group_wait_waits_for_members_added_while_it_waits(ppool: ProcessPool) -> None:
    """Done-callbacks (on the pool's thread) add members: wait() returns after all of them."""
    group = ppool.group()
    added: list[int] = []

    def add_next(fut: Future[Any]) -> None:
        n = fut.result()
        if n + 1 < CHAIN:
            added.append(n + 1)
            group.submit(tasks.sleep_then, 0.01, n + 1).add_done_callback(add_next)

    group.submit(tasks.sleep_then, 0.01, 0).add_done_callback(add_next)
    results = group.wait(PROMPT)
    assert list(range(1, CHAIN)) == added
    assert list(range(CHAIN)) == results
    assert len(group) == CHAIN


def test_group_wait_raises_the_failure_of_a_member_added_while_it_waits(
    ppool: ProcessPool,
) -> None:
    group = ppool.group()

    def add_failing(fut: Future[Any]) -> None:
        group.submit(tasks.fail, "added member failed")

    group.submit(tasks.sleep_then, 0.01, 0).add_done_callback(add_failing)
    with pytest.raises(ValueError, match="added member failed"):
        group.wait(PROMPT)


def test_map_keeps_no_result_of_a_chunk_once_it_is_yielded(ppool: ProcessPool) -> None:
    """Yield, then drop (ThreadPoolExecutor.map, bpo-27144): items of a chunk of 4 too."""
    results = ppool.map(tasks.make_box, range(8), chunksize=4, buffersize=1)
    refs: list[weakref.ref[tasks.Box]] = []
    for expected in range(8):
        item = next(results)
        assert tasks.Box(expected) == item
        refs.append(weakref.ref(item))
        del item
        gc.collect()
        # Only the consumer held it: the pool and the map keep nothing yielded.
        assert [None] * len(refs) == [r() for r in refs]
    with pytest.raises(StopIteration):
        next(results)


def test_map_keeps_no_result_while_the_consumer_waits_for_the_next_chunk(
    ppool: ProcessPool, tmp_path: Any
) -> None:
    gate = tmp_path / "gate"
    # Items 0-3 (the first chunk) return at once; the second chunk waits for the gate.
    gates = [str(tmp_path / "open")] * 4 + [str(gate)] * 4
    (tmp_path / "open").touch()
    results = ppool.map(tasks.wait_then_box, gates, range(8), chunksize=4, buffersize=1)
    refs = [weakref.ref(next(results)) for _ in range(4)]
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(next(results)))
    waiter.start()  # blocked until the gate opens
    try:
        gc.collect()
        alive_while_waiting = [r() for r in refs]
    finally:
        gate.touch()
        waiter.join(PROMPT)
    assert alive_while_waiting == [None] * 4
    assert [tasks.Box(4)] == got


def test_group_wait_counts_cancelled_members_as_settled(tmp_path: Any) -> None:
    """Members cancelled while queued never reach a worker; wait() must not wait for them."""
    from concurrent.futures import CancelledError

    gate, started = tmp_path / "gate", tmp_path / "started"
    with ProcessPool(1) as pool:
        group = pool.group()
        running = group.submit(tasks.started_then_wait, str(started), str(gate), "ran")
        queued = [group.submit(tasks.identity, i) for i in range(3)]
        eventually(started.exists, "the first member runs")
        group.cancel()
        assert all(f.cancelled() for f in queued)
        gate.touch()
        with pytest.raises(CancelledError):
            group.wait(PROMPT)
        assert running.result(0) == "ran"
