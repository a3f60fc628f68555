"""Run a check in a real ``os.fork()`` child and get its report back, never hanging."""

from __future__ import annotations

import json
import os
import select
import signal
from collections.abc import Callable
from typing import Any


def in_child(check: Callable[[], dict[str, Any]], limit: float) -> dict[str, Any]:
    """Run ``check`` in a forked child; return what it reported (or its error).

    The child reports as JSON over a pipe and leaves with ``os._exit`` (no
    pytest teardown there). A child silent for ``limit`` seconds is killed and
    reported as hung, never waited for.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            report = check()
        except BaseException as exc:  # report anything, never fall into pytest
            report = {"error": repr(exc)}
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(report))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as inp:
        ready, _, _ = select.select([inp], [], [], limit)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung")
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, Any] = json.loads(text)
    return result
