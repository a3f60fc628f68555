"""ProcessPool's shared state and the transitions both sides of it use.

Design: one dispatcher thread per pool waits (a ``selectors`` selector kept
across rounds) on every worker's pipe and process sentinel, a self-pipe (new
work, requests) and the next timer (a task deadline, an idle worker's
expiry). Each worker runs one task at a time, and may hold the next ones
(pipelining, decided by the dispatcher for short tasks).

* Submitters put a task in the queue, or hand it straight to an idle worker
  (state change under ``lock``, the pipe write after releasing it): no
  dispatcher hop on the fast path.
* The dispatcher reads replies, gives each worker its next tasks before
  resolving the finished tasks' Futures (so the worker is never idle waiting
  for the parent), and alone starts, stops, kills and reaps processes — all
  worker processes are children of its thread, which outlives them (this
  matters for ``PR_SET_PDEATHSIG``, which fires when the parent *thread* ends).

Invariants (under ``lock``):

* a BUSY worker has ``tasks`` (the first runs, the rest are held); messages
  for a worker go to its ``outbox`` under the lock, in that order, and are
  written by :meth:`ProcessState.send` under the worker's send lock, so
  writes never interleave or reorder. A write can block only when the
  worker is idle (it reads) or within ``PIPELINE_BYTES`` held bytes (what
  the pipe buffers), so the parent never blocks on a worker that is itself
  blocked writing a reply;
* a Task is in exactly one place: the queue, one worker's ``tasks``, or
  finished; the tasks a lost worker held behind the one it ran go back to
  the front of the queue (never started, so never failed for its fault);
* the core's ``workers`` counts workers that can take tasks (STARTING, IDLE,
  BUSY, and those ``resize`` reserved); retiring (STOPPING) and killed (DYING)
  ones are in ``workers`` until reaped; an IDLE worker is in ``idle`` and
  parked in the core (which decides when it is reaped);
* ``unfinished`` counts tasks accepted and not finished; it drops only after
  a task's Future is resolved, so ``wait()`` never returns before that;
* ``pending`` holds every accepted task whose outcome nobody has claimed
  yet. Whoever delivers an outcome first removes the task from it (under the
  lock), so each task is resolved exactly once even when a stop, a kill and a
  dispatcher failure race; and when the dispatcher dies, every task still in
  it fails loudly instead of waiting for ever.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import selectors
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from poolkit import _fork
from poolkit._errors import PoolBroken, PoolClosed, PoolDeadlock, TaskTimeout
from poolkit._histogram import Recorder
from poolkit._log import log, log_overload
from poolkit._waits import deadline_after
from poolkit.processes import _child as child
from poolkit.processes._stats import ProcessPoolStats
from poolkit.processes._wire import ProcessFuture
from poolkit.processes._workers import FRAME_OVERHEAD, State, Task, Worker
from poolkit.workers._core import Admission
from poolkit.workers._lifecycle import Lifecycle

__all__ = ["LIVE", "ProcessState"]

_LOG = logging.getLogger("poolkit.processes")
# How long interpreter exit waits for each unstopped pool to kill its workers;
# killing and reaping takes milliseconds, so this only bounds a broken case.
AT_EXIT_TIMEOUT = 5.0

# Pools not stopped yet; their workers are killed at interpreter exit.
LIVE: weakref.WeakSet[ProcessState] = weakref.WeakSet()


class ProcessState:
    """The pool's state under one lock, and the transitions its two sides share.

    Held by :class:`~poolkit.processes._pool.ProcessPool` (the submitters'
    side) and by its :class:`~poolkit.processes._dispatch.Dispatcher`. Every
    decision the worker pools share — closed and broken, admission, the
    worker count and bounds, which idle workers are reaped — is the
    lifecycle core's (``core``, a :class:`~poolkit.workers._lifecycle.Lifecycle`);
    the records here are what only a process pool has: worker processes and
    their pipes, tasks in flight, the dispatcher's selector.
    """

    thread: threading.Thread

    def __init__(
        self,
        core: Lifecycle,
        ctx: Any,
        config: bytes,
        max_tasks_per_child: int | None,
        max_memory_per_child: int | None,
        cancel_running: bool,
    ) -> None:
        self.core = core
        self.ctx = ctx
        self.config = config
        self.max_tasks = max_tasks_per_child
        self.max_memory = max_memory_per_child
        self.cancel_running = cancel_running
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # blocked submitters
        self.idle_cv = threading.Condition(self.lock)  # wait() and stop()
        self.queue: collections.deque[Task] = collections.deque()
        self.pending: set[Task] = set()  # accepted, outcome not claimed yet
        self.workers: dict[int, Worker] = {}  # by sentinel; every unreaped process
        self.idle: list[Worker] = []  # LIFO: the warmest worker first
        self.starting = 0  # counted in core.workers, not READY yet
        self.reserved = 0  # counted in core.workers by resize(), to be started
        self.kills: list[Future[Any]] = []
        self.terminating = False
        self.unfinished = 0
        self.counts = collections.Counter[str]()
        # Each task's wait for a worker and its run, recorded under the lock.
        self.queue_wait = Recorder()
        self.run_time = Recorder()
        self.worker_seq = 0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.wake_pending = False
        # The dispatcher's wait set, kept registered between rounds (building
        # one per round costs a registration per worker each time); touched by
        # the dispatcher thread only. Data: None = self-pipe, else (kind, worker).
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)

    def start(self, run: Callable[[], None]) -> None:
        """Start the dispatcher thread running ``run``; track the pool for exit and fork."""
        self.thread = threading.Thread(target=run, name=f"{self.core.name}-dispatcher", daemon=True)
        self.thread.start()
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
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)
        self.idle_cv = threading.Condition(self.lock)
        self.wake_w = -1  # the parent's dispatcher pipe: never poked from here
        LIVE.discard(self)
        why = (
            f"it was created in process {os.getppid()} and used after os.fork(): its "
            "dispatcher thread and worker processes stay in that process"
        )
        with self.lock:
            self.break_locked(None, why, "Create a new ProcessPool in the child")
            tasks = [task for task in list(self.pending) if self.claim_locked(task)]
            self.queue.clear()
            self.workers = {}  # the parent's processes: never killed from here
            error = self.closed_error()
        for task in tasks:
            self.deliver(task, False, error)

    def closed_error(self) -> PoolClosed | PoolBroken:
        """The error a call to this closed (or broken) pool raises."""
        return self.core.closed_error()

    def wake_locked(self) -> None:
        if not self.wake_pending:
            self.wake_pending = True
            # OSError: the dispatcher is gone and closed its pipe.
            with contextlib.suppress(OSError):
                os.write(self.wake_w, b"\0")

    def assign_locked(self, worker: Worker, task: Task, now: float) -> None:
        """Give ``task`` to ``worker``: it runs it now, or after those it holds (pipelined).

        The message goes to the worker's outbox; :meth:`send` writes it.
        """
        task.sent = True
        if not worker.tasks:
            worker.state = State.BUSY
            worker.started = now
            self.queue_wait.record(now - task.queued_at)
            # Any finite timeout (1e300 included) gives a float deadline; the
            # dispatcher waits for it in slices (poolkit._waits).
            worker.deadline = None if task.timeout is None else deadline_after(task.timeout)
        worker.tasks.append(task)
        worker.held_bytes += len(task.payload) + FRAME_OVERHEAD
        worker.outbox.append(task.payload)

    def send(self, worker: Worker, message: bytes | None = None) -> None:
        """Write ``worker``'s outbox (then ``message``, if given) to its pipe, in order.

        Any thread may call it without the lock held: the worker's send lock
        keeps the writes in the order the messages were assigned.
        """
        with worker.send_lock:
            with self.lock:
                messages = worker.outbox
                worker.outbox = []
            if message is not None:
                messages.append(message)
            if messages:
                # A dead worker makes this fail; its sentinel then reports the
                # death and the task it was running is attributed to it.
                with contextlib.suppress(OSError):
                    child.write_frames(worker.fd, messages)

    def requeue_locked(self, worker: Worker) -> list[Task]:
        """Take back the tasks ``worker`` held behind the one it ran (it was killed or died).

        They were never started: they go back to the front of the queue, in
        order, for another worker; a pool that is terminating or broken will
        run nothing more, so those are claimed and returned for
        :meth:`fail_unrun` instead.
        """
        held = list(worker.tasks)
        worker.tasks.clear()
        worker.outbox = []
        worker.held_bytes = 0
        worker.deadline = None
        if not held:
            return []
        if self.terminating or self.core.broken is not None:
            return [task for task in held if self.claim_locked(task)]
        self.queue.extendleft(reversed(held))
        return []

    def fail_unrun(self, tasks: list[Task]) -> None:
        """Cancel (terminating) or fail (broken) claimed tasks that held in a lost worker."""
        if self.core.broken is not None:
            error = self.closed_error()
            for task in tasks:
                self.deliver(task, False, error)
        else:
            for task in tasks:
                self.drop_claimed(task, "was terminated", killed=True)

    def retire_locked(self, worker: Worker) -> bytes:
        """Mark ``worker`` STOPPING (the core counted it out); return the STOP message."""
        self.leave_idle(worker)
        worker.state = State.STOPPING
        return child.STOP

    def park_locked(self, worker: Worker) -> None:
        """``worker`` has nothing to do: idle, the warmest first, with the core's reaping clock."""
        worker.state = State.IDLE
        self.idle.append(worker)
        self.core.park(worker, time.monotonic())

    def leave_idle(self, worker: Worker) -> None:
        """``worker`` stops being idle (given a task, retired, killed or gone)."""
        if worker in self.idle:
            self.idle.remove(worker)
            self.core.unpark(worker)

    def claim_locked(self, task: Task) -> bool:
        """Take the right to deliver ``task``'s outcome; False if someone else has it."""
        try:
            self.pending.remove(task)
        except KeyError:
            return False
        return True

    def task_left_locked(self) -> None:
        self.tasks_left_locked(1)

    def tasks_left_locked(self, count: int) -> None:
        """``count`` accepted tasks are finished: room for blocked submitters, maybe idle."""
        if not count:
            return
        self.unfinished -= count
        if self.core.intake.blocked:
            self.room.notify(count)
        if self.unfinished == 0:
            self.idle_cv.notify_all()

    def finish(self, task: Task, ok: bool, value: Any) -> None:
        """Deliver a task's outcome, then count it as finished (unless already claimed)."""
        with self.lock:
            if not self.claim_locked(task):
                return
        self.deliver(task, ok, value)

    def finish_all(self, outcomes: list[tuple[Task, bool, Any]]) -> None:
        """:meth:`finish` for a round's outcomes, with two lock holds in all instead of two each.

        The counts drop after the Futures are resolved, as :meth:`finish`'s.
        If a delivery raises (a done-callback's ``KeyboardInterrupt``), the
        tasks not delivered yet go back to ``pending`` before it propagates,
        so the dispatcher's failure handler fails them instead of losing them.
        """
        with self.lock:
            claimed = [outcome for outcome in outcomes if self.claim_locked(outcome[0])]
        succeeded = failed = 0
        try:
            for task, ok, value in claimed:
                self.resolve(task, ok, value)
                if ok:
                    succeeded += 1
                else:
                    failed += 1
        finally:
            with self.lock:
                undelivered = claimed[succeeded + failed :]
                if undelivered:
                    # The one that raised was delivered (a callback raised after it).
                    self.pending.update(outcome[0] for outcome in undelivered[1:])
                    if undelivered[0][1]:
                        succeeded += 1
                    else:
                        failed += 1
                self.counts["succeeded"] += succeeded
                self.counts["failed"] += failed
                self.tasks_left_locked(succeeded + failed)

    def resolve(self, task: Task, ok: bool, value: Any) -> None:
        """Hand a claimed task's outcome to its Future, map chunk or ``on_error``; no counting."""
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
            self.report(value, task.fn)

    def deliver(self, task: Task, ok: bool, value: Any) -> None:
        """Deliver the outcome of a task the caller claimed, then count it as finished."""
        self.resolve(task, ok, value)
        with self.lock:
            self.counts["succeeded" if ok else "failed"] += 1
            self.task_left_locked()

    def report(self, exc: BaseException, fn: object) -> None:
        try:
            self.core.options.on_error(exc, fn)
        except Exception:  # a broken handler must not take the dispatcher down
            _LOG.exception("on_error handler %r raised", self.core.options.on_error)

    def cancel_queued(self) -> None:
        with self.lock:
            tasks = [task for task in self.queue if self.claim_locked(task)]
            self.queue.clear()
        for task in tasks:
            self.drop_claimed(task, "stopped before the task ran")

    def drop_claimed(self, task: Task, why: str, *, killed: bool = False) -> None:
        """A claimed task will not finish: cancel its Future (or fail its map chunk), count it.

        ``killed``: its worker was killed under it, so a running Future is
        cancelled too (``ProcessFuture.force_cancel``).
        """
        if killed and isinstance(task.future, ProcessFuture):
            task.future.force_cancel()
        elif task.future is not None:
            task.future.cancel()
        elif task.sink is not None:
            task.sink(False, PoolClosed(f"{self.core.name} {why}"))
        with self.lock:
            self.counts["cancelled"] += 1
            self.task_left_locked()

    def break_locked(self, cause: BaseException | None, why: str, fix: str) -> bool:
        """Mark the pool broken (the first cause wins) and closed; True if this was the first."""
        first = self.core.broken is None
        self.core.fail(
            f"{self.core.name} is broken: {why}; no worker is started any more. {fix}",
            cause if cause is not None else RuntimeError(why),
        )
        self.room.notify_all()  # blocked submitters raise PoolBroken
        return first

    def break_(self, cause: BaseException | None, why: str, fix: str | None = None) -> None:
        """A worker cannot start: refuse new work, fail queued tasks, stop idle workers."""
        fix = fix or (
            "Fix the cause (the initializer, an unimportable __main__) and create a new pool"
        )
        with self.lock:
            first = self.break_locked(cause, why, fix)
            tasks = [task for task in self.queue if self.claim_locked(task)]
            self.queue.clear()
            error = self.closed_error()
        if first:  # other workers failing the same way add nothing
            log(
                _LOG,
                logging.ERROR,
                self.core.name,
                "the pool is broken: %s; no more workers will be started",
                why,
            )
        for task in tasks:
            self.deliver(task, False, error)

    def kill(self, worker: Worker, error: BaseException | None) -> None:
        """Kill ``worker`` now; its task fails with ``error`` (None: it was cancelled).

        The tasks it held behind that one were never started: they are
        requeued (see :meth:`requeue_locked`).
        """
        with self.lock:
            if worker.state is State.DYING:
                return
            task = worker.tasks.popleft() if worker.tasks else None
            unrun = self.requeue_locked(worker)
            if worker.state in (State.STARTING, State.IDLE, State.BUSY):
                self.core.lose(1)
                if worker.state is State.STARTING:
                    self.starting -= 1
            self.leave_idle(worker)
            worker.state = State.DYING
            self.unwatch_reply(worker)  # nothing it writes now matters
            if isinstance(error, TaskTimeout):
                self.counts["timed_out"] += 1
        with contextlib.suppress(OSError, ValueError):  # already gone: the sentinel reaps it
            worker.process.kill()
        self.fail_unrun(unrun)
        if isinstance(error, TaskTimeout):
            log(
                _LOG,
                logging.WARNING,
                self.core.name,
                "%s; its worker (pid %d) was killed",
                error,
                worker.pid,
            )
        if task is None:
            return
        if error is None:
            with self.lock:
                if not self.claim_locked(task):
                    return
            self.drop_claimed(task, "was terminated", killed=True)
        else:
            self.finish(task, False, error)

    def unwatch_reply(self, worker: Worker) -> None:
        """Stop waiting for ``worker``'s replies (dispatcher thread only)."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.conn)

    def accept(self, task: Task, block: bool) -> bool:
        """Admit ``task`` and queue it or hand it to an idle worker.

        Returns False only when ``block`` is false and the pool is full.
        """
        worker = None
        with self.lock:
            self.core.check_open()
            if self.core.intake.limit is not None and not self.admit_locked(block):
                return False
            self.counts["submitted"] += 1
            self.unfinished += 1
            self.pending.add(task)
            if self.idle:
                if task.future is not None and not task.future.set_running_or_notify_cancel():
                    # Cancelled before it got in (an asubmit cancelled while
                    # its helper thread waited for room): it never runs.
                    self.claim_locked(task)
                    self.counts["cancelled"] += 1
                    self.task_left_locked()
                    return True
                worker = self.idle.pop()
                self.core.unpark(worker)
                self.assign_locked(worker, task, time.monotonic())
                if task.timeout is not None:
                    self.wake_locked()  # a new deadline for the dispatcher's timer
            else:
                self.queue.append(task)
                backlog = len(self.queue)
                if backlog > self.starting and self.core.workers < self.core.max_workers:
                    self.wake_locked()  # the dispatcher starts a worker
        if worker is not None:
            self.send(worker)
        return True

    def accept_all(
        self, tasks: list[Task], feed_locked: Callable[[Worker, float], bytes | None]
    ) -> None:
        """:meth:`accept` for several tasks at once (a map's first chunks): one lock hold.

        The tasks join the queue in order, then every idle worker takes its
        pipelined share (``feed_locked``, the dispatcher's feeding rule) and
        each gets one write: one chunk per idle worker, the rest left for the
        dispatcher, had it to wait for the submitting thread's whole burst
        (it holds the GIL) before it could give the workers their next chunks.
        A bounded pool (``queue_size``) admits them one by one, since a
        submitter may wait for room there.
        """
        if self.core.intake.limit is not None:
            for task in tasks:
                self.accept(task, True)
            return
        fed: list[tuple[Worker, bytes | None]] = []
        with self.lock:
            self.core.check_open()
            self.counts["submitted"] += len(tasks)
            self.unfinished += len(tasks)
            self.pending.update(tasks)
            self.queue.extend(tasks)
            if self.idle:
                now = time.monotonic()
                while self.queue and self.idle:
                    worker = self.idle.pop()
                    self.core.unpark(worker)
                    fed.append((worker, feed_locked(worker, now)))
                if tasks[0].timeout is not None:
                    self.wake_locked()  # new deadlines for the dispatcher's timer
            if len(self.queue) > self.starting and self.core.workers < self.core.max_workers:
                self.wake_locked()  # the dispatcher starts workers
        for worker, stop in fed:
            self.send(worker, stop)

    def admit_locked(self, block: bool) -> bool:
        """Wait for room in a bounded pool as the core's admission decides; False if refused."""
        intake = self.core.intake
        while True:
            decision = intake.admit(pending=self.unfinished, blocked=intake.blocked, block=block)
            if decision is Admission.ACCEPT:
                return True
            if decision is Admission.OVERLOAD:
                if not block:
                    intake.count_drop()
                    return False
                overload = intake.overload(pending=self.unfinished, blocked=intake.blocked)
                log_overload(self.core.name, overload, "processes")
                raise overload
            if threading.current_thread() is self.thread:
                intake.count_drop()
                raise PoolDeadlock(
                    f"a done-callback of {self.core.name} would block submitting to its "
                    "full pool, and callbacks run on the thread that frees room; "
                    "use try_submit in callbacks or raise queue_size"
                )
            intake.block()
            try:
                self.room.wait()
            finally:
                intake.unblock()
            self.core.check_open()

    def kill_running(self, future: Future[Any]) -> None:
        """A running Future was cancelled: the dispatcher kills its worker (if still on it)."""
        with self.lock:
            self.kills.append(future)
            self.wake_locked()

    def stats(self) -> ProcessPoolStats:
        """A snapshot: the core's state and bounds, the pool's records and counters."""
        with self.lock:
            c = self.counts
            core = self.core
            return ProcessPoolStats(
                max_workers=core.max_workers,
                workers=core.workers,
                idle=len(self.idle),
                running=sum(1 for w in self.workers.values() if w.state is State.BUSY),
                # Tasks a worker holds behind the one it runs wait too.
                queued=len(self.queue)
                + sum(max(0, len(w.tasks) - 1) for w in self.workers.values()),
                waiting=core.intake.blocked,
                submitted=c["submitted"],
                completed=c["succeeded"] + c["failed"],
                succeeded=c["succeeded"],
                failed=c["failed"],
                overloads=core.intake.dropped,
                cancelled=c["cancelled"],
                expired=0,
                paused=False,
                closed=core.closed,
                timed_out=c["timed_out"],
                crashed=c["crashed"],
                recycled=c["recycled"],
                started=c["started"],
                broken=core.broken is not None,
                name=core.name,
                queue_wait=self.queue_wait.snapshot(),
                run_time=self.run_time.snapshot(),
            )

    def pids(self) -> list[int]:
        """Process ids of the live worker processes (sorted)."""
        with self.lock:
            return sorted(w.pid for w in self.workers.values() if w.state is not State.DYING)


def _stop_all_at_exit() -> None:
    for pool in list(LIVE):
        with pool.lock:
            pool.core.close(cancel=True)
            pool.terminating = True
            pool.wake_locked()
        # Bounded: exit must not hang on a pool that cannot stop.
        pool.thread.join(AT_EXIT_TIMEOUT)


# At interpreter exit (after non-daemon threads are joined, before
# multiprocessing joins its children) kill the workers of pools never stopped.
atexit.register(_stop_all_at_exit)
