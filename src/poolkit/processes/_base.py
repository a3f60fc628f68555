"""ProcessPool's submission side: admission, hand-off to idle workers, stats.

The state, its invariants and the dispatcher are in ``_state`` and
``_dispatch``.
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import Future
from typing import Any

from poolkit._errors import PoolDeadlock, PoolOverload
from poolkit.processes._dispatch import Dispatcher
from poolkit.processes._state import LIVE
from poolkit.processes._stats import ProcessPoolStats
from poolkit.processes._workers import State, Task
from poolkit.workers._core import Admission, admit, overload_message

__all__ = ["ProcessPoolBase"]

# How long interpreter exit waits for each unstopped pool to kill its workers;
# killing and reaping takes milliseconds, so this only bounds a broken case.
AT_EXIT_TIMEOUT = 5.0


class ProcessPoolBase(Dispatcher):
    """Submission and introspection; the public API is in :class:`ProcessPool`."""

    def _accept(self, task: Task, block: bool) -> bool:
        """Admit ``task`` and queue it or hand it to an idle worker.

        Returns False only when ``block`` is false and the pool is full.
        """
        worker = None
        with self._lock:
            if self._closed:
                raise self._closed_error()
            if self._limit is not None and not self._admit_locked(block):
                return False
            self._counts["submitted"] += 1
            self._unfinished += 1
            self._pending.add(task)
            if self._idle:
                if task.future is not None and not task.future.set_running_or_notify_cancel():
                    # Cancelled before it got in (an asubmit cancelled while
                    # its helper thread waited for room): it never runs.
                    self._claim_locked(task)
                    self._counts["cancelled"] += 1
                    self._task_left_locked()
                    return True
                worker = self._idle.pop()
                self._assign_locked(worker, task)
                if task.timeout is not None:
                    self._wake_locked()  # a new deadline for the dispatcher's timer
            else:
                self._queue.append(task)
                backlog = len(self._queue)
                if backlog > self._starting and self._active < self._options.max_workers:
                    self._wake_locked()  # the dispatcher starts a worker
        if worker is not None:
            self._send(worker, task.payload)
        return True

    def _admit_locked(self, block: bool) -> bool:
        while True:
            decision = admit(
                self._unfinished,
                self._limit,
                blocked=self._blocked,
                nonblocking=self._options.nonblocking or not block,
                max_blocking=self._options.max_blocking,
            )
            if decision is Admission.ACCEPT:
                return True
            if decision is Admission.OVERLOAD:
                self._counts["dropped"] += 1
                if not block:
                    return False
                raise PoolOverload(overload_message(self._options, self._unfinished, self._blocked))
            if threading.current_thread() is self._thread:
                self._counts["dropped"] += 1
                raise PoolDeadlock(
                    f"a done-callback of {self._options.name} would block submitting to its "
                    "full pool, and callbacks run on the thread that frees room; "
                    "use try_submit in callbacks or raise queue_size"
                )
            self._blocked += 1
            try:
                self._room.wait()
            finally:
                self._blocked -= 1
            if self._closed:
                raise self._closed_error()

    def _kill_running(self, future: Future[Any]) -> None:
        """A running Future was cancelled: the dispatcher kills its worker (if still on it)."""
        with self._lock:
            self._kills.append(future)
            self._wake_locked()

    def _stats(self) -> ProcessPoolStats:
        with self._lock:
            c = self._counts
            busy = sum(1 for w in self._workers.values() if w.state is State.BUSY)
            return ProcessPoolStats(
                max_workers=self._options.max_workers,
                workers=self._active,
                idle_workers=len(self._idle),
                running=busy,
                queued=len(self._queue),
                blocked=self._blocked,
                submitted=c["submitted"],
                completed=c["succeeded"] + c["failed"],
                succeeded=c["succeeded"],
                failed=c["failed"],
                dropped=c["dropped"],
                cancelled=c["cancelled"],
                expired=0,
                paused=False,
                closed=self._closed,
                timed_out=c["timed_out"],
                crashed=c["crashed"],
                recycled=c["recycled"],
                started=c["started"],
                broken=self._broken is not None,
            )

    def _pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._workers.values() if w.state is not State.DYING)


def _stop_all_at_exit() -> None:
    for pool in list(LIVE):
        with pool._lock:
            pool._closed = True
            pool._terminating = True
            pool._wake_locked()
        # Bounded: exit must not hang on a pool that cannot stop.
        pool._thread.join(AT_EXIT_TIMEOUT)


# At interpreter exit (after non-daemon threads are joined, before
# multiprocessing joins its children) kill the workers of pools never stopped.
atexit.register(_stop_all_at_exit)
