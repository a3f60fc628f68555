"""ProcessPool's shared state and the transitions both sides of it use.

Design: one dispatcher thread per pool waits (a ``selectors`` selector kept
across rounds) on every worker's pipe and process sentinel, a self-pipe (new
work, requests) and the next timer (a task deadline, an idle worker's
expiry). Each worker runs one task at a time.

* Submitters put a task in the queue, or hand it straight to an idle worker
  (state change under ``_lock``, the pipe write after releasing it): no
  dispatcher hop on the fast path.
* The dispatcher reads replies, gives the worker its next task before
  resolving the finished task's Future (so the worker is never idle waiting
  for the parent), and alone starts, stops, kills and reaps processes — all
  worker processes are children of its thread, which outlives them (this
  matters for ``PR_SET_PDEATHSIG``, which fires when the parent *thread* ends).

Invariants (under ``_lock``):

* a BUSY worker has ``task`` set, and only the thread that made it BUSY
  writes that task to its pipe (after releasing the lock). No other write can
  interleave: the next write to that pipe needs the worker IDLE again, which
  needs its reply, which the child sends only after reading the whole task;
* a Task is in exactly one place: the queue, one worker, or finished;
* ``_active`` counts workers that can take tasks (STARTING, IDLE, BUSY);
  retiring (STOPPING) and killed (DYING) ones are in ``_workers`` until reaped;
* ``_unfinished`` counts tasks accepted and not finished; it drops only after
  a task's Future is resolved, so ``wait()`` never returns before that;
* ``_pending`` holds every accepted task whose outcome nobody has claimed
  yet. Whoever delivers an outcome first removes the task from it (under the
  lock), so each task is resolved exactly once even when a stop, a kill and a
  dispatcher failure race; and when the dispatcher dies, every task still in
  it fails loudly instead of waiting for ever.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import threading
import weakref
from concurrent.futures import Future, InvalidStateError
from typing import Any

from poolkit import _fork
from poolkit._errors import PoolBroken, PoolClosed, TaskTimeout
from poolkit._waits import deadline_after
from poolkit.processes import _child as child
from poolkit.processes._wire import ProcessFuture
from poolkit.processes._workers import State, Task, Worker
from poolkit.workers._core import PoolOptions, capacity

__all__ = ["LIVE", "ProcessPoolState"]

_LOG = logging.getLogger("poolkit.processes")
# Pools not stopped yet; their workers are killed at interpreter exit.
LIVE: weakref.WeakSet[ProcessPoolState] = weakref.WeakSet()


class ProcessPoolState:
    """The pool's state under one lock, and transitions shared by submitters and dispatcher."""

    _thread: threading.Thread

    def _setup(
        self,
        options: PoolOptions,
        ctx: Any,
        config: bytes,
        max_tasks_per_child: int | None,
        max_memory_per_child: int | None,
        cancel_running: bool,
    ) -> None:
        self._options = options
        self._ctx = ctx
        self._config = config
        self._max_tasks = max_tasks_per_child
        self._max_memory = max_memory_per_child
        self._cancel_running = cancel_running
        self._limit = capacity(options.max_workers, options.queue_size)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # blocked submitters
        self._idle_cv = threading.Condition(self._lock)  # wait() and stop()
        self._queue: collections.deque[Task] = collections.deque()
        self._pending: set[Task] = set()  # accepted, outcome not claimed yet
        self._workers: dict[int, Worker] = {}  # by sentinel; every unreaped process
        self._idle: list[Worker] = []  # LIFO: the warmest worker first
        self._active = 0  # STARTING + IDLE + BUSY
        self._starting = 0
        self._kills: list[Future[Any]] = []
        self._closed = False
        self._terminating = False
        self._broken: BaseException | None = None
        self._broken_why = ""
        self._broken_fix = ""
        self._unfinished = 0
        self._blocked = 0
        self._counts = collections.Counter[str]()
        self._worker_seq = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._wake_pending = False
        # The dispatcher's wait set, kept registered between rounds (building
        # one per round costs a registration per worker each time); touched by
        # the dispatcher thread only. Data: None = self-pipe, else (kind, worker).
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(
            target=self._run, name=f"{options.name}-dispatcher", daemon=True
        )
        self._thread.start()
        LIVE.add(self)
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        """Break the pool in a forked child: its dispatcher and workers stay in the parent.

        The child has only the thread that forked, so a task it queued would
        never be sent to a worker and its Future would wait for ever. Instead
        every call raises ``PoolBroken`` naming the fork, the inherited
        unfinished Futures fail with it, and the child never writes to the
        parent's wake pipe, signals its workers or stops them at exit. Nothing
        here may take a lock a parent thread could have held: they are new.
        """
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._idle_cv = threading.Condition(self._lock)
        self._wake_w = -1  # the parent's dispatcher pipe: never poked from here
        LIVE.discard(self)
        why = (
            f"it was created in process {os.getppid()} and used after os.fork(): its "
            "dispatcher thread and worker processes stay in that process"
        )
        with self._lock:
            self._break_locked(None, why, "Create a new ProcessPool in the child")
            tasks = [task for task in list(self._pending) if self._claim_locked(task)]
            self._queue.clear()
            self._workers = {}  # the parent's processes: never killed from here
            error = self._closed_error()
        for task in tasks:
            self._deliver(task, False, error)

    def _closed_error(self) -> PoolClosed | PoolBroken:
        if self._broken is not None:
            error = PoolBroken(
                f"{self._options.name} is broken: {self._broken_why}; no worker is started any "
                f"more. {self._broken_fix}"
            )
            error.__cause__ = self._broken
            return error
        return PoolClosed(f"{self._options.name} is stopped; create a new pool to run more tasks")

    def _wake_locked(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            # OSError: the dispatcher is gone and closed its pipe.
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def _assign_locked(self, worker: Worker, task: Task) -> None:
        worker.state = State.BUSY
        worker.task = task
        # Any finite timeout (1e300 included) gives a float deadline; the
        # dispatcher waits for it in slices (poolkit._waits).
        worker.deadline = None if task.timeout is None else deadline_after(task.timeout)

    def _send(self, worker: Worker, payload: bytes) -> None:
        # A dead worker makes this fail; its sentinel then reports the death
        # and the task it was given is attributed to it.
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(payload)

    def _retire_locked(self, worker: Worker) -> bytes:
        """Mark ``worker`` STOPPING (already out of ``_active``); return the STOP message."""
        if worker in self._idle:
            self._idle.remove(worker)
        worker.state = State.STOPPING
        return child.STOP

    def _claim_locked(self, task: Task) -> bool:
        """Take the right to deliver ``task``'s outcome; False if someone else has it."""
        try:
            self._pending.remove(task)
        except KeyError:
            return False
        return True

    def _task_left_locked(self) -> None:
        self._unfinished -= 1
        if self._blocked:
            self._room.notify()
        if self._unfinished == 0:
            self._idle_cv.notify_all()

    def _finish(self, task: Task, ok: bool, value: Any) -> None:
        """Deliver a task's outcome, then count it as finished (unless already claimed)."""
        with self._lock:
            if not self._claim_locked(task):
                return
        self._deliver(task, ok, value)

    def _deliver(self, task: Task, ok: bool, value: Any) -> None:
        """Deliver the outcome of a task the caller claimed, then count it as finished."""
        future = task.future
        if future is not None:
            try:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            except InvalidStateError:
                pass  # cancelled while running (cancel_running): the outcome is dropped
        elif task.sink is not None:
            task.sink(ok, value)
        elif not ok:
            self._report(value, task.fn)
        with self._lock:
            self._counts["succeeded" if ok else "failed"] += 1
            self._task_left_locked()

    def _report(self, exc: BaseException, fn: object) -> None:
        try:
            self._options.on_error(exc, fn)
        except Exception:  # a broken handler must not take the dispatcher down
            _LOG.exception("on_error handler %r raised", self._options.on_error)

    def _cancel_queued(self) -> None:
        with self._lock:
            tasks = [task for task in self._queue if self._claim_locked(task)]
            self._queue.clear()
        for task in tasks:
            if task.future is not None:
                task.future.cancel()
            elif task.sink is not None:
                task.sink(False, PoolClosed(f"{self._options.name} stopped before the task ran"))
            with self._lock:
                self._counts["cancelled"] += 1
                self._task_left_locked()

    def _break_locked(self, cause: BaseException | None, why: str, fix: str) -> bool:
        """Mark the pool broken (the first cause wins) and closed; True if this was the first."""
        first = self._broken is None
        if first:
            self._broken = cause if cause is not None else RuntimeError(why)
            self._broken_why = why
            self._broken_fix = fix
        self._closed = True
        self._room.notify_all()  # blocked submitters raise PoolBroken
        return first

    def _break(self, cause: BaseException | None, why: str) -> None:
        """A worker cannot start: refuse new work, fail queued tasks, stop idle workers."""
        fix = "Fix the cause (the initializer, an unimportable __main__) and create a new pool"
        with self._lock:
            first = self._break_locked(cause, why, fix)
            tasks = [task for task in self._queue if self._claim_locked(task)]
            self._queue.clear()
            error = self._closed_error()
        if first:  # other workers failing the same way add nothing
            _LOG.error("%s: %s; no more workers will be started", self._options.name, why)
        for task in tasks:
            self._deliver(task, False, error)

    def _kill(self, worker: Worker, error: BaseException | None) -> None:
        """Kill ``worker`` now; its task fails with ``error`` (None: it was cancelled)."""
        with self._lock:
            if worker.state is State.DYING:
                return
            task = worker.task
            worker.task = None
            if worker.state in (State.STARTING, State.IDLE, State.BUSY):
                self._active -= 1
                if worker.state is State.STARTING:
                    self._starting -= 1
            if worker in self._idle:
                self._idle.remove(worker)
            worker.state = State.DYING
            self._unwatch_reply(worker)  # nothing it writes now matters
            if isinstance(error, TaskTimeout):
                self._counts["timed_out"] += 1
        with contextlib.suppress(OSError, ValueError):  # already gone: the sentinel reaps it
            worker.process.kill()
        if task is None:
            return
        if error is None:
            with self._lock:
                if not self._claim_locked(task):
                    return
            if isinstance(task.future, ProcessFuture):
                task.future.force_cancel()
            elif task.future is not None:
                task.future.cancel()
            elif task.sink is not None:
                task.sink(False, PoolClosed(f"{self._options.name} was terminated"))
            with self._lock:
                self._counts["cancelled"] += 1
                self._task_left_locked()
        else:
            self._finish(task, False, error)

    def _unwatch_reply(self, worker: Worker) -> None:
        """Stop waiting for ``worker``'s replies (dispatcher thread only)."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.conn)

    def _run(self) -> None:
        """The dispatcher loop (see ``_dispatch``)."""
        raise NotImplementedError
