"""ProcessPool's dispatcher thread: replies, exits, deadlines, starts and kills.

The dispatcher waits (a ``selectors`` selector kept across rounds) on every
worker's pipe and process sentinel, the pool's self-pipe (new work, kill
requests, stop) and the next timer (a task's deadline, an idle worker's
expiry). It alone starts, stops, kills and reaps worker processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import time
from collections.abc import Callable
from typing import Any

from poolkit._errors import TaskTimeout, WorkerCrashed
from poolkit._log import log
from poolkit._waits import deadline_after, slice_of
from poolkit.processes import _child as child
from poolkit.processes._state import _LOG, ProcessState
from poolkit.processes._wire import decode_reply
from poolkit.processes._workers import (
    FRAME_OVERHEAD,
    State,
    Task,
    Worker,
    exited_before_ready,
    start_worker,
)
from poolkit.workers._lifecycle_plans import Step

__all__ = ["Dispatcher"]

# How long a dying dispatcher waits to reap each killed worker (SIGKILL takes
# milliseconds; this only bounds a process stuck in uninterruptible sleep).
REAP_TIMEOUT = 5.0

# Pipelining: a worker holds at most MAX_HELD tasks behind the one it runs,
# about PIPELINE_SECONDS of work (by the tasks' measured length), and at most
# its pipe's ``held_limit`` bytes of task messages (a quarter of what the
# socket buffers, at most PIPELINE_BYTES; see _workers.held_limit). The bytes
# bound keeps every write of held tasks within what the pipe buffers, so the
# parent never blocks writing while the worker blocks writing a large reply.
MAX_HELD = 15
PIPELINE_SECONDS = 0.001
PIPELINE_BYTES = 65536

# A task's outcome as read from its worker: (task, ok, value).
Outcome = tuple[Task, bool, Any]

# What a selector key watches: a worker's process sentinel or its pipe.
_EXIT = "exit"
_REPLY = "reply"
# Reply kinds that answer no task (a starting worker's).
_NOT_ANSWERS = (child.READY, child.INIT_FAILED)


class Dispatcher:
    """The dispatcher loop of one pool (run on the pool's own thread).

    It acts on the pool's :class:`~poolkit.processes._state.ProcessState` under
    its lock and asks the lifecycle core (``state.core``) what to decide:
    how many workers to start, whether a worker with nothing to do parks or
    leaves, which idle workers are reaped and when to look again.
    """

    def __init__(self, state: ProcessState) -> None:
        self.state = state
        # Moving average of how long a task took, reply to reply, as the
        # parent sees it (None before the first reply): sets the pipelining depth.
        self.task_seconds: float | None = None

    def run(self) -> None:
        """The thread's target: run rounds until the pool is stopped and empty."""
        try:
            while self._step():
                pass
        except BaseException as exc:
            # Whatever the cause (a bug, an OverflowError, MemoryError), a pool
            # without its dispatcher can run nothing: break it loudly rather
            # than leave Futures pending for ever behind a healthy-looking repr.
            self._dispatcher_failed(exc)
        finally:
            with self.state.lock:
                # No write may reach the self-pipe once it is closed: its fd
                # number could be reused by an unrelated file.
                self.state.wake_pending = True
                self.state.selector.close()
                os.close(self.state.wake_r)
                os.close(self.state.wake_w)
                self.state.idle_cv.notify_all()

    def _dispatcher_failed(self, cause: BaseException) -> None:
        """Break the pool: every unfinished task fails with PoolBroken, every worker is killed.

        Runs on the dying dispatcher thread, so nothing else delivers outcomes
        concurrently except ``_cancel_queued`` (a stop from another thread),
        which claims its tasks under the lock as this does. It touches only
        the pool's own records and the processes, not the selector, which may
        be what failed.
        """
        _LOG.error(
            "%s: the dispatcher thread failed; the pool is broken and its workers are killed",
            self.state.core.name,
            exc_info=(type(cause), cause, cause.__traceback__),
        )
        with self.state.lock:
            self.state.break_locked(
                cause,
                f"its dispatcher thread failed ({cause!r})",
                "Report the error above and create a new pool",
            )
            self.state.terminating = True
            tasks = list(self.state.pending)
            self.state.pending.clear()
            self.state.queue.clear()
            workers = list(self.state.workers.values())
            self.state.workers.clear()
            for worker in self.state.idle:
                self.state.core.unpark(worker)
            self.state.idle.clear()
            for worker in workers:
                worker.tasks.clear()
                worker.outbox = []
                worker.state = State.DYING
            self.state.core.lose(self.state.core.workers)
            self.state.starting = self.state.reserved = 0
            error = self.state.closed_error()
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):  # already gone
                worker.process.kill()
        for task in tasks:
            try:
                self.state.deliver(task, False, error)
            except BaseException:  # one bad sink or hook must not strand the rest
                _LOG.exception("%s: couldn't fail task %r", self.state.core.name, task.fn)
        for worker in workers:
            # SIGKILL was sent: reaping takes milliseconds; the bound only
            # keeps a process stuck in the kernel from hanging this thread.
            worker.process.join(REAP_TIMEOUT)
            if worker.process.exitcode is None:
                _LOG.error("%s: worker pid %d did not die", self.state.core.name, worker.pid)
            with contextlib.suppress(OSError):
                worker.conn.close()

    def _step(self) -> bool:
        """One round: start workers, wait, handle what is ready. False = all done."""
        stops: list[Worker] = []
        with self.state.lock:
            if self.state.terminating:
                terminate = True
            else:
                terminate = False
                starts = self._starts_locked()
            if self.state.core.closed and not self.state.queue:
                # Stopping and nothing left to run: idle workers may go now.
                while self.state.idle:
                    worker = self.state.idle[-1]
                    self.state.retire_locked(worker)
                    self.state.core.retire(counted=True)
                    stops.append(worker)
                if not self.state.workers:
                    self.state.wake_pending = True  # nobody needs to wake us any more
                    return False
        for worker in stops:
            self.state.send(worker, child.STOP)
        if terminate:
            self._kill_all(None)
            with self.state.lock:
                if not self.state.workers:
                    return False
        else:
            for _ in range(starts):
                self._start_one()
        if self.state.kills:  # read without the lock: a new request also wakes us
            self._handle_kills()
        if self.state.queue and self.state.idle:  # tasks requeued from a lost worker
            self._feed_idle()
        with self.state.lock:
            timeout = self._timer_locked(time.monotonic())
        exits: list[Worker] = []
        replies: list[Worker] = []
        for key, _ in self.state.selector.select(timeout):
            if key.data is None:
                with self.state.lock:
                    self.state.wake_pending = False
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.state.wake_r, 4096)
            elif key.data[0] is _EXIT:
                exits.append(key.data[1])
            else:
                replies.append(key.data[1])
        # Exits first: _on_exit drains a reply sent just before the exit, and
        # marks the worker so the reply loop below skips it.
        for worker in exits:
            self._on_exit(worker)
        # Read every ready worker's replies and feed each worker before
        # resolving a Future: no worker waits for the parent's callbacks.
        outcomes: list[Outcome] = []
        fed: list[Worker] = []
        for worker in replies:
            if not worker.exited and worker.state is not State.DYING:
                self._read_replies(worker, outcomes)
                fed.append(worker)
        for worker in fed:
            if worker.outbox:
                self.state.send(worker)
        if outcomes:
            self.state.finish_all(outcomes)
        if timeout is not None:
            self._on_timers()
        return True

    def _starts_locked(self) -> int:
        """Workers to start now: those resize() reserved, and what the core decides.

        The core reserves a worker per queued task no idle or starting worker
        will take, up to ``max_workers``, and tops an open pool up to
        ``min_workers``; a stopping pool still starts workers for its queue
        ("stop() runs every queued task").
        """
        st = self.state
        if st.core.closed and not st.queue:
            return 0
        count = st.reserved + st.core.spawn(
            len(st.queue), idle=len(st.idle) + st.starting + st.reserved, closed_ok=True
        )
        count += st.core.start_min()
        st.reserved = 0
        st.starting += count
        return count

    def _start_one(self) -> None:
        with self.state.lock:
            self.state.worker_seq += 1
            name = f"{self.state.core.name}-worker-{self.state.worker_seq}"
        try:
            worker = start_worker(self.state.ctx, self.state.config, name)
        except Exception as exc:
            with self.state.lock:
                self.state.core.start_failed(1)
                self.state.starting -= 1
            self.state.break_(exc, f"couldn't start a worker process ({exc!r})")
            return
        self.state.selector.register(worker.sentinel, selectors.EVENT_READ, (_EXIT, worker))
        self.state.selector.register(worker.conn, selectors.EVENT_READ, (_REPLY, worker))
        with self.state.lock:
            self.state.workers[worker.sentinel] = worker
            self.state.counts["started"] += 1

    def _timer_locked(self, now: float) -> float | None:
        """Seconds until the next task deadline or idle reap (the core's), or None."""
        wake = self.state.core.next_reap()
        for worker in self.state.workers.values():
            deadline = worker.deadline if worker.state is State.BUSY else None
            if deadline is not None and (wake is None or deadline < wake):
                wake = deadline
        # Sliced: a deadline 30 days (or 1e300 s) away is more than select()
        # takes; waking once a slice to find nothing due costs nothing.
        return None if wake is None else slice_of(wake - now)

    def _feed_idle(self) -> None:
        """Give queued tasks to idle workers (tasks requeued from a killed or dead worker)."""
        fed: list[tuple[Worker, bytes | None]] = []
        with self.state.lock:
            now = time.monotonic()
            while self.state.queue and self.state.idle:
                worker = self.state.idle.pop()
                self.state.core.unpark(worker)
                # A STOP if it had nothing to do after all (cancelled tasks only).
                fed.append((worker, self._feed_locked(worker, now)))
        for worker, stop in fed:
            self.state.send(worker, stop)

    def _read_replies(self, worker: Worker, outcomes: list[Outcome]) -> None:
        """Read what ``worker`` wrote (one read) and act on each complete reply.

        Task outcomes are appended to ``outcomes``, for the caller to deliver
        once every worker has its next tasks.
        """
        try:
            messages = worker.reader.read(worker.fd)
        except OSError:
            messages = None
        if messages is None:
            self.state.unwatch_reply(worker)  # it died; its sentinel tells us how
            return
        now = time.monotonic()
        replies = [decode_reply(data) for data in messages]
        if any(reply[0] in _NOT_ANSWERS for reply in replies):
            for kind, value, rss in replies:  # a new worker's first words: one by one
                if worker.state is State.DYING:
                    return
                outcome = self._on_reply(worker, kind, value, rss, now)
                if outcome is not None:
                    outcomes.append(outcome)
            return
        # Answers only (the common case): one lock hold for the whole read.
        send = None
        last = len(replies) - 1
        with self.state.lock:
            for i, (kind, value, rss) in enumerate(replies):
                if worker.state is State.DYING:
                    break
                # The worker is fed once, after its last answer of this read:
                # the same tasks in one pass instead of one pass per answer.
                outcome, stop = self._on_answer_locked(worker, kind, value, rss, now, i == last)
                if outcome is not None:
                    outcomes.append(outcome)
                if stop is not None:  # STOP is b"": test for None
                    send = stop
        if send is not None:
            self.state.send(worker, send)

    def _on_reply(
        self, worker: Worker, kind: int, value: Any, rss: int | None, now: float
    ) -> Outcome | None:
        """Act on one decoded reply of ``worker``; the outcome of the task it answers."""
        if kind == child.INIT_FAILED:
            with self.state.lock:
                self.state.core.lose(1)
                self.state.starting -= 1
                self.state.retire_locked(worker)  # it exits by itself
            self.state.break_(value, f"a worker's initializer raised {value!r}")
            return None
        if kind == child.READY:
            with self.state.lock:
                self.state.starting -= 1
                send = self._feed_locked(worker, now)
            if send is not None:
                self.state.send(worker, send)
            return None
        with self.state.lock:
            outcome, send = self._on_answer_locked(worker, kind, value, rss, now)
        if send is not None:
            self.state.send(worker, send)
        return outcome

    def _on_answer_locked(
        self,
        worker: Worker,
        kind: int,
        value: Any,
        rss: int | None,
        now: float,
        feed: bool = True,
    ) -> tuple[Outcome | None, bytes | None]:
        """Account ``worker``'s answer to the task it ran and give it its next tasks.

        ``feed``: give it its next tasks now (else the caller does, after more
        answers of the same read; it still holds tasks then, so it is not
        parked nor retired in between).

        Returns the task's outcome (to deliver) and a message to send after
        the outbox (its STOP when it is recycled), either maybe None.
        """
        state = self.state
        if not worker.tasks:
            return None, None  # not expected: the worker answers only what it was given
        task = worker.tasks.popleft()
        worker.held_bytes -= len(task.payload) + FRAME_OVERHEAD
        worker.done += 1
        took = now - worker.started
        state.run_time.record(took)
        self.task_seconds = (
            took if self.task_seconds is None else self.task_seconds * 0.875 + took * 0.125
        )
        if worker.tasks:
            # The worker answered and went straight on to the next task it
            # held: that one runs from now (as far as the parent can see).
            worker.started = now
            state.queue_wait.record(now - worker.tasks[0].queued_at)
            timeout = worker.tasks[0].timeout
            worker.deadline = None if timeout is None else deadline_after(timeout)
        else:
            worker.deadline = None
        if state.max_memory is not None and rss is not None and rss > state.max_memory:
            worker.draining = True  # it runs what it holds, takes nothing new
        recycle = worker.draining or (
            state.max_tasks is not None and worker.done >= state.max_tasks
        )
        send = None
        if worker.exited:
            pass  # reaped by _on_exit right after; it takes no new task
        elif recycle:
            if not worker.tasks:
                state.counts["recycled"] += 1
                state.core.retire(counted=True)
                send = state.retire_locked(worker)
        elif feed or not worker.tasks:
            send = self._feed_locked(worker, now)
        return (task, kind == child.OK, value), send

    def _depth_locked(self, worker: Worker) -> int:
        """How many tasks ``worker`` may hold, the one it runs included (pipelining).

        A worker holds the tasks after the one it runs only when they are
        short: then the parent's round trip (reading a reply, sending the
        next task) is what would leave it idle. About a millisecond of work
        is held per worker (measured on the tasks so far), at most
        ``MAX_HELD`` tasks, a fair share of the queue, and within the
        worker's remaining task quota. With ``cancel_running`` every task
        the pool gave a worker is running, so a cancel stops what it says.
        """
        state = self.state
        seconds = self.task_seconds
        if seconds is None or state.cancel_running:
            return 1
        depth = 1 + min(MAX_HELD, int(PIPELINE_SECONDS / max(seconds, 1e-7)))
        if depth > 1:
            share = -(-len(state.queue) // max(1, state.core.workers))  # ceil
            depth = min(depth, len(worker.tasks) + share)
        if state.max_tasks is not None:
            depth = min(depth, state.max_tasks - worker.done)
        return depth

    def _feed_locked(self, worker: Worker, now: float) -> bytes | None:
        """Give ``worker`` queued tasks up to its depth, or park or retire it.

        The tasks go to its outbox (the caller sends it); returns the STOP
        message when the worker is to leave.
        """
        state = self.state
        queue = state.queue
        depth = self._depth_locked(worker)
        while queue and len(worker.tasks) < depth:
            task = queue[0]
            size = len(task.payload) + FRAME_OVERHEAD
            if worker.tasks and worker.held_bytes + size > min(worker.held_limit, PIPELINE_BYTES):
                # Held tasks stay within what the pipe buffers, so writing
                # them never blocks while the worker writes a large reply.
                break
            queue.popleft()
            if (
                not task.sent
                and task.future is not None
                and not task.future.set_running_or_notify_cancel()
            ) or (task.sink is not None and task.sink.abandoned):
                if state.claim_locked(task):
                    state.counts["cancelled"] += 1
                    state.task_left_locked()
                continue
            state.assign_locked(worker, task, now)
        if worker.tasks:
            return None
        # Nothing queued: the core says whether it leaves (stopping, or
        # surplus after a shrink) or parks.
        if state.core.next_step(0) is Step.EXIT:
            return state.retire_locked(worker)
        state.park_locked(worker)
        return None

    def _on_exit(self, worker: Worker) -> None:
        """A worker process ended: reap it; a task it was running failed.

        The tasks it held behind that one never started: they are requeued.
        """
        if worker.exited:
            return
        worker.exited = True
        outcomes: list[Outcome] = []
        if worker.state not in (State.DYING, State.STOPPING):
            # Replies written just before the exit are still in the pipe: a
            # task's result, or a starting worker's "initializer raised"
            # (without it the pool would report a bare exit code instead).
            self._drain(worker, outcomes, lambda: True)
        worker.process.join()
        self.state.unwatch_reply(worker)
        self.state.selector.unregister(worker.sentinel)
        worker.conn.close()
        code = worker.process.exitcode
        with self.state.lock:
            del self.state.workers[worker.sentinel]
            state = worker.state
            task = worker.tasks.popleft() if worker.tasks else None
            unrun = self.state.requeue_locked(worker)
            if state in (State.STARTING, State.IDLE, State.BUSY):
                self.state.core.lose(1)
                self.state.leave_idle(worker)
                if state is State.STARTING:
                    self.state.starting -= 1
                else:
                    self.state.counts["crashed"] += 1
            self.state.idle_cv.notify_all()
        for done, ok, value in outcomes:
            self.state.finish(done, ok, value)
        self.state.fail_unrun(unrun)
        if state is State.STARTING:
            self.state.break_(None, *exited_before_ready(code))
        elif task is not None:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            log(
                _LOG,
                logging.WARNING,
                self.state.core.name,
                "the worker process (pid %d) running %r died (%s)",
                worker.pid,
                task.fn,
                how,
            )
            error = WorkerCrashed(
                f"the worker process (pid {worker.pid}) running {task.fn!r} died ({how}); "
                "the pool replaced it. Look for a crash in native code, os._exit, or an "
                "out-of-memory kill",
                pid=worker.pid,
                exitcode=code,
            )
            self.state.finish(task, False, error)

    def _drain(self, worker: Worker, outcomes: list[Outcome], more: Callable[[], bool]) -> None:
        """Act on the replies already in ``worker``'s pipe (never blocks) while ``more()``."""
        try:
            while (worker.tasks or worker.state is State.STARTING) and more():
                if not worker.conn.poll():
                    return
                messages = worker.reader.read(worker.fd)
                if messages is None:
                    return
                now = time.monotonic()
                for data in messages:
                    kind, value, rss = decode_reply(data)
                    outcome = self._on_reply(worker, kind, value, rss, now)
                    if outcome is not None:
                        outcomes.append(outcome)
        except (EOFError, OSError):
            pass

    def _on_timers(self) -> None:
        now = time.monotonic()
        expired: list[Worker] = []
        with self.state.lock:
            # Idle workers the core reaps (surplus above min_workers, idle
            # for idle_timeout), counted out already.
            tick = self.state.core.maintain(now, len(self.state.queue))
            stops: list[Worker] = []
            for worker in tick.retire:
                assert isinstance(worker, Worker)
                self.state.idle.remove(worker)
                self.state.retire_locked(worker)
                stops.append(worker)
            for worker in self.state.workers.values():
                deadline = worker.deadline if worker.state is State.BUSY else None
                if deadline is not None and deadline <= now:
                    expired.append(worker)
        for worker in stops:
            self.state.send(worker, child.STOP)
        for worker in expired:
            # Race: the task may have finished just as its deadline passed. A
            # reply already in the pipe wins (and may give the worker its next
            # task, with a fresh deadline); only a worker still running the
            # task that expired is killed.
            task = worker.task
            outcomes: list[Outcome] = []
            self._drain(worker, outcomes, _still_running(worker, task))
            if worker.outbox:
                self.state.send(worker)
            for done, ok, value in outcomes:
                self.state.finish(done, ok, value)
            if worker.state is State.BUSY and task is not None and worker.task is task:
                seconds = task.timeout
                error = TaskTimeout(
                    f"task {task.fn!r} ran past its timeout of {seconds} s; its worker "
                    f"(pid {worker.pid}) was killed and replaced. Raise options(timeout=) or "
                    "split the task",
                    timeout=seconds,
                    pid=worker.pid,
                )
                self.state.kill(worker, error)

    def _handle_kills(self) -> None:
        with self.state.lock:
            kills, self.state.kills = self.state.kills, []
            targets = [
                worker
                for future in kills
                for worker in self.state.workers.values()
                if worker.state is State.BUSY
                and worker.task is not None
                and worker.task.future is future
            ]
        for worker in targets:
            self.state.kill(worker, None)

    def _kill_all(self, error: BaseException | None) -> None:
        """Terminate: cancel queued tasks, kill every worker."""
        self.state.cancel_queued()
        with self.state.lock:
            workers = [w for w in self.state.workers.values() if w.state is not State.DYING]
        for worker in workers:
            self.state.kill(worker, error)
        with self.state.lock:
            dying = list(self.state.workers.values())
        for worker in dying:
            self._on_exit(worker)


def _still_running(worker: Worker, task: Task | None) -> Callable[[], bool]:
    """A predicate: whether ``worker`` still runs ``task``."""
    return lambda: worker.task is task
