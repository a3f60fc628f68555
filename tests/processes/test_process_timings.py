"""ProcessPool records each task's queue wait and run time (always: a task costs far more)."""

from __future__ import annotations

import pytest

from poolkit import ProcessPool, TaskTimeout
from tests.processes import tasks

PROMPT = 30.0


def test_each_finished_task_records_its_queue_wait_and_run_time() -> None:
    with ProcessPool(1, name="timed") as pool:
        futures = [pool.submit(tasks.identity, i) for i in range(3)]
        assert [f.result(PROMPT) for f in futures] == [0, 1, 2]
        with pytest.raises(TaskTimeout):
            pool.options(timeout=0.2).submit(tasks.sleep_long).result(PROMPT)
        stats = pool.stats()
    assert stats.queue_wait is not None
    assert stats.run_time is not None
    assert stats.queue_wait.count == 4  # every task that reached a worker
    assert stats.run_time.count == 3  # the timed-out one never returned
    assert stats.to_dict()["run_time"]["count"] == 3
