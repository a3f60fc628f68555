"""A ProcessPool used in a child made by ``os.fork()``: a clear PoolBroken, never a hang.

The pool's dispatcher thread and worker processes stay in the parent; the child
must not queue work nobody will send, poke the parent's wake pipe, or kill the
parent's workers at exit. The child reports over a pipe and leaves by os._exit.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from poolkit import PoolBroken, ProcessPool
from tests import forking
from tests.processes import tasks
from tests.processes.conftest import PROMPT

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_WAIT = 5.0


def test_process_pool_in_a_forked_child_is_broken_not_hung() -> None:
    with ProcessPool(max_workers=1) as pool:
        assert pool.submit(abs, -1).result(PROMPT) == 1
        workers = pool._pids()
        running = pool.submit(tasks.sleep_then, 0.5, "done")

        def check() -> dict[str, Any]:
            report: dict[str, Any] = {}
            try:
                pool.submit(abs, -2).result(CHILD_WAIT)
            except PoolBroken as exc:
                report["submit"] = str(exc)
            try:
                running.result(CHILD_WAIT)  # the parent's task: failed here, not pending
            except PoolBroken:
                report["inherited"] = "PoolBroken"
            report["broken"] = pool.stats().broken
            pool.stop(timeout=CHILD_WAIT)
            return report

        report = forking.in_child(check, PROMPT)
        assert "used after os.fork()" in report["submit"]
        assert report["inherited"] == "PoolBroken"
        assert report["broken"] is True
        # The parent's pool, its workers and its running task are untouched.
        assert running.result(PROMPT) == "done"
        assert pool._pids() == workers
        assert pool.submit(abs, -3).result(PROMPT) == 3
