"""The thread side of WorkerPool: queue, lock, threads, drains, acting on the core.

Design:

* Tasks wait in one ``queue.SimpleQueue`` as plain tuples
  ``(fn, args, kwargs, context, future_or_None)``. ``go`` builds no Future at
  all; ``submit`` builds one ``concurrent.futures.Future``. A ``go`` without
  arguments from the pool's home context (the context it was created in,
  see :mod:`poolkit.workers._home`; the common case) queues the function
  alone, a *bare* item: no tuple and no context copy kept per task; the
  worker runs it in a copy of the home (``as_full`` gives the tuple where
  a slow path needs one). From an empty context, when the home holds
  variables, the function goes wrapped to run in a new empty context
  (``InEmptyContext``), a bare item too.
* The submit fast path takes no lock: ``next()`` on an ``itertools.count``
  (atomic, in C) counts the submission, ``SimpleQueue.put`` (atomic, in C)
  queues it. Bounded pools take the lock to take a slot from the core.
* Workers count their own outcomes in their own attributes (one writer each,
  no lock); ``wait()`` sums them under the lock and is woken by the worker
  that runs out of work. Nothing per task signals a Condition.
* Pause, shrink and stop reach busy workers through the core's ``gate``
  (read once per task) and idle workers through pill tuples whose function
  raises a private exception, so the per-task path has no extra branch.
* Every decision (admission, sizing, reaping, gate verdicts, stop, break,
  resize) is the lifecycle core's (:mod:`poolkit.workers._lifecycle`); this
  crew calls it under ``lock`` and does what it returns.

A submission racing with stop either lands before the final drain (it is
run, or cancelled if stop cancels pending tasks) or sees ``drained`` and
raises ``PoolClosed``: it is never left in the queue.

After ``os.fork()`` the child has only the thread that forked: the parent's
workers, and any lock one of them held, are gone. :meth:`after_fork_in_child`
gives the crew fresh locks and an empty queue and forgets the parent's
workers, so the child starts its own threads on first use. The parent's tasks
are not the child's: queued ones are cancelled (the parent runs them),
running ones fail with ``PoolClosed``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from poolkit._errors import PoolClosed, PoolTimeout
from poolkit._log import log, log_overload
from poolkit._waits import join_thread, left_until, wait_for
from poolkit.workers._core import Admission, Expired, WorkerHooks, WorkerPoolStats
from poolkit.workers._home import HomeContext, task_of
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._lifecycle_plans import WAKE_IDLE, WAKE_ROOM
from poolkit.workers._thread_worker import (
    NO_STATE,
    STOP,
    WAKE,
    Counts,
    Worker,
    as_full,
    current_pool,
    current_worker,
    is_control,
)
from poolkit.workers._timing import unwrap

__all__ = ["ThreadCrew"]

_LOG = logging.getLogger("poolkit.workers")
Item = tuple[Any, ...]
Bare = Callable[..., Any]  # a bare item: the function alone (see the module docstring)


class ThreadCrew:
    """The threads of one WorkerPool and the shared state they work on.

    Attributes are read by :class:`~poolkit.workers._thread_worker.Worker`;
    everything that changes shared state is a method here or on the core,
    called under ``lock``.
    """

    def __init__(
        self,
        owner: object,
        core: Lifecycle,
        *,
        thread_prefix: str,
        hooks: WorkerHooks,
        clock: Callable[[], float],
    ) -> None:
        self.owner = owner  # what current_pool() returns in a worker thread
        self.core = core
        self.name = core.name
        self.on_error = core.options.on_error
        self.thread_prefix = thread_prefix
        self.hooks = hooks
        self.clock = clock
        self.bounded = core.intake.limit is not None  # fixed: queue_size cannot change
        self.home = HomeContext()  # the creator's context: where bare items run
        self._new_sync()
        self.seq = itertools.count()  # next() per submission; see submitted()
        self.seq_reads = 0
        self.retired = Counts()  # outcomes of retired workers and of drains
        self.workers: set[Worker] = set()
        self.threads: list[threading.Thread] = []
        self.thread_counter = itertools.count(1)

    def _new_sync(self) -> None:
        self.queue: queue.SimpleQueue[Item | Bare] = queue.SimpleQueue()
        self.put = self.queue.put
        # An RLock: Condition.wait on it saves and restores the lock in C, so
        # a KeyboardInterrupt landing in wait() cannot leave it half-released
        # (with a plain Lock those steps are Python calls an interrupt can split).
        self.lock = threading.RLock()
        self.idle_cv = threading.Condition(self.lock)  # wait() and stop() sleep here
        self.room = threading.Condition(self.lock)  # blocked submitters sleep here
        self.resume_cv = threading.Condition(self.lock)  # paused workers sleep here

    # ------------------------------------------------------------ admission

    def admit(self, block: bool) -> bool:
        """Take a slot in a bounded pool, waiting if allowed; False if refused.

        Raises:
            PoolOverload: ``block`` and the policy refuses to wait.
            PoolClosed: the pool stopped while the caller waited.
            PoolDeadlock: the caller is one of this pool's workers and would wait.
        """
        core = self.core
        intake = core.intake
        with self.lock:
            while True:
                core.check_open()
                decision = intake.take(block=block)
                if decision is Admission.ACCEPT:
                    return True
                if decision is Admission.OVERLOAD:
                    if not block:
                        return False
                    overload = intake.overload(
                        pending=intake.outstanding, blocked=intake.blocked, count=False
                    )
                    log_overload(self.name, overload)
                    raise overload
                if current_pool() is self.owner:
                    # Every worker could be doing the same: a task waiting
                    # for room in its own full pool may wait for itself.
                    raise intake.deadlock(intake.outstanding)
                intake.block()
                try:
                    self.room.wait()
                finally:
                    intake.unblock()

    def release_slot(self) -> None:
        """A task of a bounded pool finished (or was cancelled): give its slot back."""
        with self.lock:
            wake = self.core.intake.release()
            if wake & WAKE_ROOM:
                self.room.notify()
            if wake & WAKE_IDLE:
                self.idle_cv.notify_all()

    def raced_with_stop(self) -> None:
        """A submission saw the pool closed only after queueing its task.

        If the final drain already ran, nobody will take the task: empty the
        queue (cancelling what is there) and refuse. Otherwise the final
        drain is still to come and will run or cancel the task.
        """
        with self.lock:
            if not self.core.drained:
                return
        self.final_drain(cancel=True)
        with self.lock:
            # Refused, not submitted: the caller gets PoolClosed, so the
            # stats count this task neither as submitted nor as cancelled.
            # Queued after the final drain, it was cancelled by a racer's
            # drain (this one or another's), never run.
            self.seq_reads += 1
            self.retired.cancelled -= 1
        raise self.core.closed_error()

    # -------------------------------------------------------------- threads

    def maybe_spawn(self) -> None:
        """Start workers for queued tasks no idle worker will take."""
        with self.lock:
            count = self.core.spawn(self.queue.qsize())
        if count:
            self.start_threads(count)

    def start_threads(self, count: int) -> None:
        """Start ``count`` workers the core already reserved.

        Each thread is started under the lock, so every thread in
        ``threads`` has started (stop() joins them); ``Thread.start`` only
        waits for the new thread to begin, which needs no pool lock.
        """
        for started in range(count):
            worker = Worker(self)
            thread = threading.Thread(
                target=worker.run,
                name=f"{self.thread_prefix}_{next(self.thread_counter)}",
                daemon=True,
            )
            with self.lock:
                self.workers.add(worker)
                self.threads = [t for t in self.threads if t.is_alive()]
                try:
                    thread.start()
                except BaseException:
                    self.workers.discard(worker)
                    self.core.start_failed(count - started)
                    raise
                self.threads.append(thread)

    def may_exit(self) -> bool:
        """A stop pill arrived: exit, unless this is the last worker and work remains."""
        with self.lock:
            return self.core.may_exit(self.queue.qsize())

    def retire(self, worker: Worker, state: object) -> None:
        """A worker thread exits; the last one of a closed pool drains the queue."""
        with self.lock:
            if worker in self.workers:  # not orphaned by a fork
                self.workers.discard(worker)
                self.retired.add(worker)
            last = self.core.retire(worker.counted)
            worker.counted = False
            self.idle_cv.notify_all()
        try:
            if state is not NO_STATE:
                close = getattr(state, "close", None)
                if callable(close):
                    close()
            if self.hooks.finalizer is not None:
                self.hooks.finalizer()
        except BaseException as exc:
            _LOG.error("worker finalizer of %s raised", self.name, exc_info=exc)
        finally:
            if last:
                self.final_drain(cancel=self.core.cancel_pending)

    def report(self, exc: BaseException, fn: object) -> None:
        """Hand a fire-and-forget task's failure to ``on_error``."""
        try:
            self.on_error(exc, unwrap(task_of(fn)))
        except BaseException as handler_exc:
            _LOG.error("on_error handler %r raised", self.on_error, exc_info=handler_exc)

    def break_(self, exc: BaseException, what: str) -> None:
        """A worker failed to start, or died: the pool is broken (as BrokenThreadPool).

        Queued tasks fail with ``PoolBroken`` chained from ``exc``;
        submissions raise it; ``repr`` and ``stats()`` say broken.
        """
        with self.lock:
            pills = self.core.break_(what, exc)
            self.room.notify_all()
            self.resume_cv.notify_all()
        log(_LOG, logging.ERROR, self.name, "the pool is broken: %s", what)
        self.cancel_queued()
        # Idle workers sleep in the queue: as stop() does on the first
        # close, send each a stop pill, or a later stop() (which sends none
        # to a closed pool) would wait for them for up to idle_timeout.
        for _ in range(pills):
            self.put(STOP)

    # --------------------------------------------------------------- drains

    def cancel_item(self, item: Item | Bare, counts: Counts | None) -> None:
        """Cancel a task that will not run; count it on ``counts`` (or the crew)."""
        fn, _args, _kwargs, _ctx, fut = as_full(item, self.home)
        if is_control(fn):
            return
        core = self.core
        if fut is not None:
            if core.broken is not None and fut.set_running_or_notify_cancel():
                fut.set_exception(core.broken_error())
            else:
                fut.cancel()
        if counts is not None:
            counts.cancelled += 1
        else:
            with self.lock:
                self.retired.cancelled += 1
        if self.bounded:
            self.release_slot()

    def cancel_queued(self) -> None:
        """Cancel every queued task; the caller holds no lock."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            self.cancel_item(item, None)
            if item is STOP:
                self.put(item)  # pills must still reach the workers
                break
        with self.lock:
            self.idle_cv.notify_all()

    def final_drain(self, cancel: bool) -> None:
        """Empty a closed pool's queue when no worker is left, then mark it drained.

        Runs in the thread that found the pool closed with no worker: stop(),
        the last retiring worker, or a submitter that raced with stop.
        """
        while True:
            with self.lock:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    self.core.drained_now()
                    self.idle_cv.notify_all()
                    return
            if cancel:
                self.cancel_item(item, None)
            else:
                self._run_late(item)

    def _run_late(self, item: Item | Bare) -> None:
        """Run a task that raced past stop() into a pool with no worker left."""
        fn, args, kwargs, ctx, fut = as_full(item, self.home)
        if is_control(fn):
            return
        counts = Counts()
        if fut is None or fut.set_running_or_notify_cancel():
            try:
                result = ctx.run(fn, *args, **kwargs)
            except Expired:
                counts.expired += 1
                if fut is not None:
                    fut.set_exception(
                        PoolTimeout(f"task {fn!r} was not started within its deadline")
                    )
            except BaseException as exc:
                counts.failed += 1
                if fut is None:
                    self.report(exc, fn)
                else:
                    fut.set_exception(exc)
            else:
                counts.succeeded += 1
                if fut is not None:
                    fut.set_result(result)
        else:
            counts.cancelled += 1
        with self.lock:
            self.retired.add(counts)
        if self.bounded:
            self.release_slot()

    # ---------------------------------------------------- slow-path control

    def submitted(self) -> int:
        """Submissions so far; call with ``lock`` held.

        ``next()`` on the shared counter is both how submitters count and how
        this reads: every read consumes one number, and reads only happen
        here, under the lock, so ``value - reads`` is the submission count.
        """
        value = next(self.seq) - self.seq_reads
        self.seq_reads += 1
        return value

    def _tally(self) -> Counts:
        counts = Counts()
        counts.add(self.retired)
        for worker in self.workers:
            counts.add(worker)
        return counts

    def wait_idle(self, deadline: float) -> bool:
        """Wait until every task submitted so far finished; False at ``deadline``."""
        core = self.core
        with self.lock:
            core.intake.waiting(1)
            try:
                return wait_for(
                    self.idle_cv,
                    lambda: core.intake.settled(self.submitted() - self._tally().finished()),
                    deadline,
                )
            finally:
                core.intake.waiting(-1)

    def pause(self) -> None:
        """Hold queued tasks (the core raises the gate)."""
        with self.lock:
            self.core.pause()

    def resume(self) -> None:
        """Release paused workers."""
        with self.lock:
            self.core.resume()
            self.resume_cv.notify_all()

    def resize(self, max_workers: int | None, min_workers: int | None) -> None:
        """Apply the core's new bounds: wake the surplus, start new workers."""
        with self.lock:
            plan = self.core.resize(max_workers, min_workers, backlog=self.queue.qsize())
            self.room.notify_all()
        for _ in range(plan.surplus):
            self.put(WAKE)  # idle surplus workers wake up, meet the gate, exit
        if plan.start:
            self.start_threads(plan.start)

    def close(self, cancel: bool) -> None:
        """Close the pool as the core says: cancel, send pills, drain if nobody is left."""
        core = self.core
        with self.lock:
            closing = core.close(cancel)
            self.resume_cv.notify_all()
            self.room.notify_all()
        if closing.cancel:
            self.cancel_queued()
        for _ in range(closing.pills):
            self.put(STOP)
        if closing.drain:
            self.final_drain(cancel=core.cancel_pending)

    def join(self, deadline: float, seconds: float | None) -> None:
        """Wait for every worker to retire, then join the threads.

        Workers reserved before the close whose thread was not started yet
        count too; joining the threads (past their last task) makes "no
        thread left" exact.

        Raises:
            PoolTimeout: a worker still runs at ``deadline`` (queued tasks
                are cancelled then).
        """
        core = self.core
        with self.lock:
            wait_for(self.idle_cv, lambda: core.workers <= 0, deadline)
            threads = list(self.threads)
        for thread in threads:
            if not join_thread(thread, left_until(deadline)):
                with self.lock:
                    core.cancel_rest()
                self.cancel_queued()
                raise PoolTimeout(
                    f"{self.name} did not stop within {seconds} s: {core.workers} workers "
                    "still running a task; queued tasks were cancelled, running ones "
                    "cannot be interrupted"
                )

    def after_fork_in_child(self) -> None:
        """Reset in a forked child (only the forking thread exists).

        Nothing here may take a lock the parent's threads could have held at
        fork time: the locks are replaced first, the old queue is read with
        ``get_nowait`` (which takes no lock), and Futures use the shared
        Conditions that ``_future`` re-creates in the child.
        """
        parent = os.getppid()
        old_queue = self.queue
        self._new_sync()
        lost = self.submitted() - self._tally().finished()
        me = current_worker()  # set when a task of this pool forked
        running = [w.running for w in self.workers if w is not me and w.running is not None]
        for worker in self.workers:
            self.retired.add(worker)
            worker.counted = False
        self.workers = set()
        self.threads = []
        self.core.forget_workers()
        queued = 0
        while True:
            try:
                fn, _args, _kwargs, _ctx, fut = as_full(old_queue.get_nowait(), self.home)
            except queue.Empty:
                break
            if is_control(fn):
                continue
            queued += 1
            if fut is not None:
                fut.cancel()  # the parent's to run
        for fut in running:
            _fail_forked(fut, self.name, parent)
        # Every task the child inherited unfinished is accounted for, so
        # wait() and stats() balance: queued ones cancelled, the rest failed.
        self.retired.cancelled += queued
        self.retired.failed += max(0, lost - queued)

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        core = self.core
        with self.lock:
            counts = self._tally()
            submitted = self.submitted()
            unfinished = submitted - counts.finished()
            idle = min(core.idle, core.workers)
            # Workers not waiting for a task are running one (or holding one
            # while paused); bounded by what is actually unfinished.
            running = max(0, min(core.workers - idle, unfinished))
            return core.stats(
                submitted=submitted,
                succeeded=counts.succeeded,
                failed=counts.failed,
                cancelled=counts.cancelled,
                expired=counts.expired,
                running=running,
                queued=max(0, unfinished - running),
            )


def _fail_forked(fut: Future[Any], name: str, parent: int) -> None:
    """Fail a Future whose task was running in a parent's thread at fork time.

    It may have finished in the parent just before the fork (its worker was
    still running its done-callbacks) or be cancelled: then leave it.
    """
    if not fut.done():
        with contextlib.suppress(InvalidStateError):
            fut.set_exception(
                PoolClosed(
                    f"this task was running on a worker thread of {name} in process "
                    f"{parent} when it forked; its result stays in that process"
                )
            )
