"""ProcessPool's dispatcher thread: replies, exits, deadlines, starts and kills.

The dispatcher waits (a ``selectors`` selector kept across rounds) on every
worker's pipe and process sentinel, the pool's self-pipe (new work, kill
requests, stop) and the next timer (a task's deadline, an idle worker's
expiry). It alone starts, stops, kills and reaps worker processes.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import time

from poolkit._errors import TaskTimeout, WorkerCrashed
from poolkit._waits import slice_of
from poolkit.processes import _child as child
from poolkit.processes._state import _LOG, ProcessPoolState
from poolkit.processes._wire import decode_reply
from poolkit.processes._workers import State, Worker, start_worker
from poolkit.workers._core import spawn_count

__all__ = ["Dispatcher"]

# How long a dying dispatcher waits to reap each killed worker (SIGKILL takes
# milliseconds; this only bounds a process stuck in uninterruptible sleep).
REAP_TIMEOUT = 5.0

# What a selector key watches: a worker's process sentinel or its pipe.
_EXIT = "exit"
_REPLY = "reply"


class Dispatcher(ProcessPoolState):
    """The dispatcher loop (run on the pool's own thread)."""

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:
            # Whatever the cause (a bug, an OverflowError, MemoryError), a pool
            # without its dispatcher can run nothing: break it loudly rather
            # than leave Futures pending for ever behind a healthy-looking repr.
            self._dispatcher_failed(exc)
        finally:
            with self._lock:
                # No write may reach the self-pipe once it is closed: its fd
                # number could be reused by an unrelated file.
                self._wake_pending = True
                self._selector.close()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._idle_cv.notify_all()

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
            self._options.name,
            exc_info=(type(cause), cause, cause.__traceback__),
        )
        with self._lock:
            self._break_locked(
                cause,
                f"its dispatcher thread failed ({cause!r})",
                "Report the error above and create a new pool",
            )
            self._terminating = True
            tasks = list(self._pending)
            self._pending.clear()
            self._queue.clear()
            workers = list(self._workers.values())
            self._workers.clear()
            self._idle.clear()
            for worker in workers:
                worker.task = None
                worker.state = State.DYING
            self._active = self._starting = 0
            error = self._closed_error()
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):  # already gone
                worker.process.kill()
        for task in tasks:
            try:
                self._deliver(task, False, error)
            except BaseException:  # one bad sink or hook must not strand the rest
                _LOG.exception("%s: couldn't fail task %r", self._options.name, task.fn)
        for worker in workers:
            # SIGKILL was sent: reaping takes milliseconds; the bound only
            # keeps a process stuck in the kernel from hanging this thread.
            worker.process.join(REAP_TIMEOUT)
            if worker.process.exitcode is None:
                _LOG.error("%s: worker pid %d did not die", self._options.name, worker.pid)
            with contextlib.suppress(OSError):
                worker.conn.close()

    def _step(self) -> bool:
        """One round: start workers, wait, handle what is ready. False = all done."""
        stops: list[Worker] = []
        with self._lock:
            if self._terminating:
                terminate = True
            else:
                terminate = False
                starts = self._starts_locked()
            if self._closed and not self._queue:
                # Stopping and nothing left to run: idle workers may go now.
                while self._idle:
                    worker = self._idle.pop()
                    self._active -= 1
                    self._retire_locked(worker)
                    stops.append(worker)
                if not self._workers:
                    self._wake_pending = True  # nobody needs to wake us any more
                    return False
        for worker in stops:
            self._send(worker, child.STOP)
        if terminate:
            self._kill_all(None)
            with self._lock:
                if not self._workers:
                    return False
        else:
            for _ in range(starts):
                self._start_one()
        if self._kills:  # read without the lock: a new request also wakes us
            self._handle_kills()
        with self._lock:
            timeout = self._timer_locked(time.monotonic())
        exits: list[Worker] = []
        replies: list[Worker] = []
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with self._lock:
                    self._wake_pending = False
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
            elif key.data[0] is _EXIT:
                exits.append(key.data[1])
            else:
                replies.append(key.data[1])
        # Exits first: _on_exit drains a reply sent just before the exit, and
        # marks the worker so the reply loop below skips it.
        for worker in exits:
            self._on_exit(worker)
        for worker in replies:
            if not worker.exited and worker.state is not State.DYING:
                self._on_reply_ready(worker)
        if timeout is not None:
            self._on_timers()
        return True

    def _starts_locked(self) -> int:
        if self._closed and not self._queue:
            return 0
        opts = self._options
        grow = spawn_count(
            workers=self._active,
            max_workers=opts.max_workers,
            backlog=len(self._queue),
            idle=len(self._idle) + self._starting,
        )
        floor = 0 if self._closed else opts.min_workers - self._active
        count = max(grow, floor, 0)
        self._active += count
        self._starting += count
        return count

    def _start_one(self) -> None:
        with self._lock:
            self._worker_seq += 1
            name = f"{self._options.name}-worker-{self._worker_seq}"
        try:
            worker = start_worker(self._ctx, self._config, name)
        except Exception as exc:
            with self._lock:
                self._active -= 1
                self._starting -= 1
            self._break(exc, f"couldn't start a worker process ({exc!r})")
            return
        self._selector.register(worker.sentinel, selectors.EVENT_READ, (_EXIT, worker))
        self._selector.register(worker.conn, selectors.EVENT_READ, (_REPLY, worker))
        with self._lock:
            self._workers[worker.sentinel] = worker
            self._counts["started"] += 1

    def _timer_locked(self, now: float) -> float | None:
        wake: float | None = None
        idle_timeout = self._options.idle_timeout
        surplus = self._active - self._options.min_workers
        for worker in self._workers.values():
            when = None
            if worker.state is State.BUSY and worker.deadline is not None:
                when = worker.deadline
            elif worker.state is State.IDLE and idle_timeout is not None and surplus > 0:
                when = worker.idle_since + idle_timeout
            if when is not None and (wake is None or when < wake):
                wake = when
        # Sliced: a deadline 30 days (or 1e300 s) away is more than select()
        # takes; waking once a slice to find nothing due costs nothing.
        return None if wake is None else slice_of(wake - now)

    def _on_reply_ready(self, worker: Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._unwatch_reply(worker)  # it died; its sentinel tells us how
            return
        self._on_reply(worker, data)

    def _on_reply(self, worker: Worker, data: bytes) -> None:
        kind, value, rss = decode_reply(data)
        if kind == child.INIT_FAILED:
            with self._lock:
                self._active -= 1
                self._starting -= 1
                self._retire_locked(worker)  # it exits by itself
            self._break(value, f"a worker's initializer raised {value!r}")
            return
        if kind == child.READY:
            with self._lock:
                self._starting -= 1
                send = self._next_locked(worker)
            if send is not None:
                self._send(worker, send)
            return
        with self._lock:
            task = worker.task
            worker.task = None
            worker.deadline = None
            worker.done += 1
            recycle = (self._max_tasks is not None and worker.done >= self._max_tasks) or (
                self._max_memory is not None and rss is not None and rss > self._max_memory
            )
            if worker.exited:
                send = None  # reaped by _on_exit right after; it takes no new task
            elif recycle:
                self._counts["recycled"] += 1
                self._active -= 1
                send = self._retire_locked(worker)
            else:
                send = self._next_locked(worker)
        if send is not None:
            self._send(worker, send)
        if task is not None:
            self._finish(task, kind == child.OK, value)

    def _next_locked(self, worker: Worker) -> bytes | None:
        """Give ``worker`` its next task, or park or retire it; return what to send."""
        while self._queue:
            task = self._queue.popleft()
            if (task.future is not None and not task.future.set_running_or_notify_cancel()) or (
                task.sink is not None and task.sink.abandoned
            ):
                if self._claim_locked(task):
                    self._counts["cancelled"] += 1
                    self._task_left_locked()
                continue
            self._assign_locked(worker, task)
            return task.payload
        if self._closed or self._active > self._options.max_workers:
            self._active -= 1
            return self._retire_locked(worker)
        worker.state = State.IDLE
        worker.idle_since = time.monotonic()
        self._idle.append(worker)
        return None

    def _on_exit(self, worker: Worker) -> None:
        """A worker process ended: reap it; a task it was running failed."""
        if worker.exited:
            return
        worker.exited = True
        if worker.state not in (State.DYING, State.STOPPING):
            # A reply written just before the exit is still in the pipe: a
            # task's result, or a starting worker's "initializer raised"
            # (without it the pool would report a bare exit code instead).
            try:
                while (
                    worker.task is not None or worker.state is State.STARTING
                ) and worker.conn.poll():
                    self._on_reply(worker, worker.conn.recv_bytes())
            except (EOFError, OSError):
                pass
        worker.process.join()
        self._unwatch_reply(worker)
        self._selector.unregister(worker.sentinel)
        worker.conn.close()
        code = worker.process.exitcode
        with self._lock:
            del self._workers[worker.sentinel]
            state = worker.state
            task = worker.task
            worker.task = None
            if state in (State.STARTING, State.IDLE, State.BUSY):
                self._active -= 1
                if worker in self._idle:
                    self._idle.remove(worker)
                if state is State.STARTING:
                    self._starting -= 1
                else:
                    self._counts["crashed"] += 1
            self._idle_cv.notify_all()
        if state is State.STARTING:
            self._break(None, f"a worker process exited with code {code} before it was ready")
        elif task is not None:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            error = WorkerCrashed(
                f"the worker process (pid {worker.pid}) running {task.fn!r} died ({how}); "
                "the pool replaced it. Look for a crash in native code, os._exit, or an "
                "out-of-memory kill",
                pid=worker.pid,
                exitcode=code,
            )
            self._finish(task, False, error)

    def _on_timers(self) -> None:
        now = time.monotonic()
        expired: list[Worker] = []
        with self._lock:
            surplus = self._active - self._options.min_workers
            idle_timeout = self._options.idle_timeout
            stops: list[Worker] = []
            for worker in list(self._workers.values()):
                if worker.state is State.BUSY and worker.deadline is not None:
                    if worker.deadline <= now:
                        expired.append(worker)
                elif (
                    worker.state is State.IDLE
                    and idle_timeout is not None
                    and surplus > 0
                    and now - worker.idle_since >= idle_timeout
                ):
                    surplus -= 1
                    self._active -= 1
                    self._retire_locked(worker)
                    stops.append(worker)
        for worker in stops:
            self._send(worker, child.STOP)
        for worker in expired:
            # Race: the task may have finished just as its deadline passed. A
            # reply already in the pipe wins (and may give the worker its next
            # task, with a fresh deadline); only a worker still running the
            # task that expired is killed.
            task = worker.task
            try:
                if worker.conn.poll():
                    self._on_reply(worker, worker.conn.recv_bytes())
            except (EOFError, OSError):
                pass
            if worker.state is State.BUSY and task is not None and worker.task is task:
                seconds = task.timeout
                error = TaskTimeout(
                    f"task {task.fn!r} ran past its timeout of {seconds} s; its worker "
                    f"(pid {worker.pid}) was killed and replaced. Raise options(timeout=) or "
                    "split the task",
                    timeout=seconds,
                    pid=worker.pid,
                )
                self._kill(worker, error)

    def _handle_kills(self) -> None:
        with self._lock:
            kills, self._kills = self._kills, []
            targets = [
                worker
                for future in kills
                for worker in self._workers.values()
                if worker.state is State.BUSY
                and worker.task is not None
                and worker.task.future is future
            ]
        for worker in targets:
            self._kill(worker, None)

    def _kill_all(self, error: BaseException | None) -> None:
        """Terminate: cancel queued tasks, kill every worker."""
        self._cancel_queued()
        with self._lock:
            workers = [w for w in self._workers.values() if w.state is not State.DYING]
        for worker in workers:
            self._kill(worker, error)
        with self._lock:
            dying = list(self._workers.values())
        for worker in dying:
            self._on_exit(worker)
