"""Job handlers the Resque tests register, importable by worker processes.

ProcessPool handlers must be picklable (module-level functions), and the
fault tests run a worker in a child process (``python -m
tests.integrations.resque_jobs URL QUEUE MARKER``), so they live here.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from poolkit.integrations.resque import ResqueWorker


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def pid_of_worker() -> int:
    """Succeeds in a worker process: a test checks the process ran it."""
    return os.getpid()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def mark_then_block(marker: str, seconds: float) -> None:
    """Say the job started (a file), then run for ``seconds``."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)


def append_line(path: str, line: str) -> None:
    """Record that a job ran (O_APPEND writes of one line are atomic)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def main(argv: list[str]) -> None:
    """A worker in its own process: ``URL QUEUE GRACE``; SIGTERM stops it."""
    url, queue, grace = argv[0], argv[1], float(argv[2])
    worker = ResqueWorker(url, queue, concurrency=2, interval=0.05, grace=grace)
    worker.register("MarkThenBlock", mark_then_block)
    worker.register("AppendLine", append_line)
    print(",".join(worker.worker_ids), flush=True)
    # run() installs its own handlers and, on return, restores these: a test
    # that signals until this process exits may still send one, which must not
    # end it before it reports. Set before run(), no SIGTERM falls in between.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker.run()
    stats = worker.stats()
    print(f"done {stats.succeeded} {stats.cancelled}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
