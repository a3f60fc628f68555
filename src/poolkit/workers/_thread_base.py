"""The state and lifecycle of WorkerPool: admission, spawning, wait, pause, resize, stop.

Design (the measurements behind it are in anchors/workers.md §5):

* Tasks wait in one ``queue.SimpleQueue`` as plain tuples
  ``(fn, args, kwargs, context, future_or_None)``. ``go`` builds no Future at
  all; ``submit`` builds one ``concurrent.futures.Future``.
* The submit fast path takes no lock: ``next()`` on an ``itertools.count``
  (atomic, in C) counts the submission, ``SimpleQueue.put`` (atomic, in C)
  queues it. Bounded pools take the pool lock to admit the task.
* Workers count their own outcomes in per-worker attributes (one writer each,
  no lock); ``wait()`` sums them under the pool lock and is woken by the
  worker that runs out of work. Nothing per task signals a Condition.
* Pause, shrink and stop reach busy workers through one flag (``_gate``)
  read once per task, and idle workers through pill tuples whose function
  raises a private exception, so the per-task path has no extra branch.

Invariants (all under ``_lock``):

* ``_nworkers`` counts threads started (or being started) that have not
  retired; stop sends exactly that many stop pills.
* after ``_closed`` is set no thread is started, and the queue is finally
  emptied by the last worker to retire (the "final drain"), which sets
  ``_drained``. A submission racing with stop either lands before the final
  drain (it is run, or cancelled if stop cancels pending tasks) or sees
  ``_drained`` and raises ``PoolClosed`` — it is never left in the queue.

After ``os.fork()`` the child has only the thread that forked: the parent's
workers, and any lock one of them held, are gone. A hook run in the child
(``_after_fork_in_child``) gives every pool fresh locks and an empty queue
and forgets the parent's workers, so the child starts its own threads on
first use. The parent's tasks are not the child's: queued ones are cancelled
(the parent runs them), running ones fail with ``PoolClosed`` — no Future in
the child waits for a thread that does not exist there.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import InvalidStateError
from typing import Any

from poolkit import _fork
from poolkit._errors import PoolBroken, PoolClosed, PoolDeadlock, PoolOverload, PoolTimeout
from poolkit._validate import Clock, check_bool, check_callable, check_optional_seconds
from poolkit._waits import deadline_after, join_thread, left_until, wait_for
from poolkit.workers import _thread_worker as tw
from poolkit.workers._core import (
    DEFAULT_IDLE_TIMEOUT,
    Admission,
    PoolOptions,
    WorkerPoolStats,
    admit,
    capacity,
    overload_message,
    spawn_count,
)

__all__ = ["ThreadPoolBase"]


class ThreadPoolBase:
    """WorkerPool's state and lifecycle; the submission API is in WorkerPool."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        min_workers: int = 0,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        queue_size: int | None = None,
        nonblocking: bool = False,
        max_blocking: int | None = None,
        on_error: Callable[[BaseException, Any], object] | None = None,
        finalizer: Callable[[], object] | None = None,
        name: str | None = None,
        clock: Clock = time.monotonic,
        _worker_factory: Callable[[], object] | None = None,
    ) -> None:
        if not isinstance(thread_name_prefix, str):
            raise TypeError(
                f"thread_name_prefix must be a str, got {type(thread_name_prefix).__name__}"
            )
        self._options = PoolOptions.build(
            max_workers=max_workers,
            min_workers=min_workers,
            idle_timeout=idle_timeout,
            queue_size=queue_size,
            nonblocking=nonblocking,
            max_blocking=max_blocking,
            on_error=on_error,
            name=name if name is not None else (thread_name_prefix or f"WorkerPool-{id(self):x}"),
        )
        self._initializer = check_callable("initializer", initializer, optional=True)
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, got {type(initargs).__name__}")
        self._initargs = initargs
        self._finalizer = check_callable("finalizer", finalizer, optional=True)
        self._worker_factory = check_callable("factory", _worker_factory, optional=True)
        self._clock = check_callable("clock", clock)
        self._thread_prefix = thread_name_prefix or self._options.name
        self._on_error = self._options.on_error
        self._max_workers = self._options.max_workers
        self._min_workers = self._options.min_workers
        self._limit = capacity(self._max_workers, self._options.queue_size)

        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._put = self._queue.put
        # An RLock: Condition.wait on it saves and restores the lock in C, so
        # a KeyboardInterrupt landing in wait() cannot leave it half-released
        # (with a plain Lock those steps are Python calls an interrupt can split).
        self._lock = threading.RLock()
        self._idle_cv = threading.Condition(self._lock)  # wait() sleeps here
        self._room = threading.Condition(self._lock)  # blocked submitters sleep here
        self._seq = itertools.count()  # next() per submission; see _submitted()
        self._seq_reads = 0
        self._closed = False
        self._drained = False
        self._cancel_pending = False
        self._broken: str | None = None
        self._broken_cause: BaseException | None = None
        self._paused = False
        self._gate = False
        self._nworkers = 0
        self._idle = 0
        self._waiters = 0
        self._blocked = 0
        self._outstanding = 0  # bounded pools only: accepted, not finished
        self._dropped = 0
        self._workers: set[tw.Worker] = set()
        self._threads: list[threading.Thread] = []
        self._retired = tw.Counts()
        self._thread_counter = itertools.count(1)
        self._resume = threading.Condition(self._lock)
        _fork.track(self)
        if self._min_workers:
            with self._lock:
                self._nworkers += self._min_workers
            self._start_threads(self._min_workers)

    def _admit(self, block: bool) -> bool:
        """Take a slot in a bounded pool, waiting if allowed; False if refused.

        Raises:
            PoolOverload: ``block`` and the policy refuses to wait.
            PoolClosed: the pool stopped while the caller waited.
            PoolDeadlock: the caller is one of this pool's workers and would wait.
        """
        with self._lock:
            while True:
                if self._closed:
                    raise self._closed_error()
                decision = admit(
                    self._outstanding,
                    self._limit,
                    blocked=self._blocked,
                    nonblocking=self._options.nonblocking or not block,
                    max_blocking=self._options.max_blocking,
                )
                if decision is Admission.ACCEPT:
                    self._outstanding += 1
                    return True
                if decision is Admission.OVERLOAD:
                    self._dropped += 1
                    if not block:
                        return False
                    raise PoolOverload(
                        overload_message(self._options, self._outstanding, self._blocked)
                    )
                if tw.current_pool() is self:
                    # Every worker could be doing the same: a task waiting for
                    # room in its own full pool may wait for itself.
                    self._dropped += 1
                    raise PoolDeadlock(
                        f"a task of {self._options.name} would block submitting to its own "
                        f"full pool ({self._outstanding} tasks, capacity {self._limit}); "
                        "raise queue_size, use try_submit, or submit from outside the pool"
                    )
                self._blocked += 1
                try:
                    self._room.wait()
                finally:
                    self._blocked -= 1

    def _release_slot(self) -> None:
        """A task of a bounded pool finished (or was cancelled): free its slot."""
        with self._lock:
            self._outstanding -= 1
            if self._blocked:
                self._room.notify()
            if self._waiters and not self._outstanding:
                self._idle_cv.notify_all()

    def _raced_with_stop(self) -> None:
        """A submission saw ``_closed`` only after queueing its task.

        If the final drain already ran, nobody will take the task: empty the
        queue (cancelling what is there) and refuse. Otherwise the final drain
        is still to come and will run or cancel the task.
        """
        with self._lock:
            if not self._drained:
                return
        tw.final_drain(self, cancel=True)
        with self._lock:
            # Refused, not submitted: the caller gets PoolClosed, so the stats
            # count this task neither as submitted nor as cancelled. Queued
            # after the final drain, it was cancelled by a racer's drain (this
            # one or another's), never run: no worker is left to take it.
            self._seq_reads += 1
            self._retired.cancelled -= 1
        raise self._closed_error()

    def _maybe_spawn(self) -> None:
        with self._lock:
            if self._closed:
                return
            count = spawn_count(
                workers=self._nworkers,
                max_workers=self._max_workers,
                backlog=self._queue.qsize(),
                idle=self._idle,
            )
            self._nworkers += count
        if count:
            self._start_threads(count)

    def _start_threads(self, count: int) -> None:
        """Start ``count`` workers already reserved in ``_nworkers``.

        Each thread is started under the lock, so every thread in ``_threads``
        has started (stop() joins them); ``Thread.start`` only waits for the
        new thread to begin, which needs no pool lock, so this cannot deadlock.
        """
        for started in range(count):
            worker = tw.Worker()
            thread = threading.Thread(
                target=tw.run_worker,
                args=(self, worker),
                name=f"{self._thread_prefix}_{next(self._thread_counter)}",
                daemon=True,
            )
            with self._lock:
                self._workers.add(worker)
                self._threads = [t for t in self._threads if t.is_alive()]
                try:
                    thread.start()
                except BaseException:
                    self._workers.discard(worker)
                    self._nworkers -= count - started
                    raise
                self._threads.append(thread)

    def _submitted(self) -> int:
        """Submissions so far; call with ``_lock`` held.

        ``next()`` on the shared counter is both how submitters count and how
        this reads: every read consumes one number, and reads only happen here,
        under the lock, so ``value - reads`` is the submission count.
        """
        value = next(self._seq) - self._seq_reads
        self._seq_reads += 1
        return value

    def _finished(self) -> int:
        """Tasks that left the pool (ran, were cancelled or expired); ``_lock`` held."""
        total = self._retired.finished()
        for worker in self._workers:
            total += worker.finished()
        return total

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without stopping.

        Tasks submitted while waiting are waited for too: this returns when
        the pool goes idle (a WaitGroup, as asked in ants#73, gammazero#20).

        Args:
            timeout: most seconds to wait, any size; ``None`` or ``math.inf``
                waits without limit.

        Raises:
            PoolTimeout: not idle within ``timeout`` seconds.
            PoolDeadlock: called from one of this pool's own tasks.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        if tw.current_pool() is self:
            raise PoolDeadlock(
                f"wait() called from a task of {self._options.name}: it would wait for "
                "itself; wait from outside the pool or use a group"
            )
        deadline = deadline_after(seconds)
        with self._lock:
            self._waiters += 1
            try:
                # Bounded pools also wait for the last slot to be given back,
                # so a submission right after wait() finds the room it expects.
                if not wait_for(
                    self._idle_cv,
                    lambda: self._finished() == self._submitted() and not self._outstanding,
                    deadline,
                ):
                    raise PoolTimeout(
                        f"{self._options.name} still had work after {seconds} s "
                        f"({self._queue.qsize()} queued); raise timeout"
                    )
            finally:
                self._waiters -= 1

    def _notify_idle(self) -> None:
        """Wake ``wait()`` callers to re-check (a worker ran out of work)."""
        with self._lock:
            self._idle_cv.notify_all()

    def pause(self) -> None:
        """Stop starting queued tasks until :meth:`resume`; running ones finish.

        Tasks can still be submitted (they queue). From gammazero ``Pause``.
        """
        with self._lock:
            self._paused = True
            self._gate = True

    def resume(self) -> None:
        """Start queued tasks again after :meth:`pause`."""
        with self._lock:
            self._paused = False
            self._gate = self._closed or self._nworkers > self._max_workers
            self._resume.notify_all()

    def resize(self, max_workers: int | None = None, min_workers: int | None = None) -> None:
        """Change the worker bounds at runtime (ants ``Tune``, pond ``Resize``).

        Growing starts workers for queued tasks at once and wakes blocked
        submitters; shrinking lets surplus workers finish their task and exit.

        Raises:
            PoolClosed: the pool is stopped.
            ValueError: bad bounds (the message names the argument).
        """
        with self._lock:
            if self._closed:
                raise self._closed_error()
            options = PoolOptions.build(
                max_workers=self._max_workers if max_workers is None else max_workers,
                min_workers=self._min_workers if min_workers is None else min_workers,
                idle_timeout=self._options.idle_timeout,
                queue_size=self._options.queue_size,
                nonblocking=self._options.nonblocking,
                max_blocking=self._options.max_blocking,
                on_error=self._options.on_error,
                name=self._options.name,
            )
            self._options = options
            self._max_workers = options.max_workers
            self._min_workers = options.min_workers
            self._limit = capacity(self._max_workers, options.queue_size)
            surplus = self._nworkers - self._max_workers
            self._gate = self._paused or surplus > 0
            self._room.notify_all()
            grow = max(
                self._min_workers - self._nworkers,
                spawn_count(
                    workers=self._nworkers,
                    max_workers=self._max_workers,
                    backlog=self._queue.qsize(),
                    idle=self._idle,
                ),
            )
            self._nworkers += max(0, grow)
        for _ in range(max(0, surplus)):
            self._put(tw.WAKE)  # idle surplus workers wake up, see the gate, exit
        if grow > 0:
            self._start_threads(grow)

    def stop(
        self,
        wait: bool = True,
        cancel_pending: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Stop the pool: refuse new tasks, then drain or cancel queued ones.

        ``stop()`` runs every queued task and waits (gammazero ``StopWait``,
        pond ``StopAndWait``); ``stop(wait=False)`` cancels queued tasks and
        returns at once (gammazero ``Stop``); ``timeout`` bounds the wait
        (pond ``StopAndWaitFor``, ants ``ReleaseTimeout``). After a stop that
        waited, no thread of the pool is alive. Stopping twice is harmless.

        Args:
            wait: wait for the workers to exit.
            cancel_pending: cancel queued tasks (default: ``not wait``).
            timeout: most seconds to wait, any size (``None`` or ``math.inf``:
                no limit); then queued tasks are cancelled and
                ``PoolTimeout`` is raised (running tasks cannot be interrupted).

        Raises:
            TypeError: ``wait`` or ``cancel_pending`` is not a bool.
            PoolTimeout: workers still running after ``timeout``.
            PoolDeadlock: ``wait`` requested from one of this pool's tasks.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        check_bool("wait", wait)
        if cancel_pending is not None:
            check_bool("cancel_pending", cancel_pending)
        cancel = (not wait) if cancel_pending is None else cancel_pending
        if wait and tw.current_pool() is self:
            raise PoolDeadlock(
                f"stop(wait=True) called from a task of {self._options.name}: it would "
                "wait for itself; use stop(wait=False) inside tasks"
            )
        with self._lock:
            first = not self._closed
            self._closed = True
            self._cancel_pending = self._cancel_pending or cancel
            self._paused = False
            self._gate = True
            self._resume.notify_all()
            self._room.notify_all()
            pills = self._nworkers if first else 0
            nobody = self._nworkers == 0 and not self._drained
        if cancel:
            tw.cancel_queued(self)
        for _ in range(pills):
            self._put(tw.STOP)
        if nobody:
            tw.final_drain(self, cancel=self._cancel_pending)
        if not wait:
            return
        deadline = deadline_after(seconds)
        # Wait for every worker to retire, including ones reserved before the
        # close whose thread was not started yet, then join the threads (they
        # are past their last task; joining makes "no thread left" exact).
        with self._lock:
            wait_for(self._idle_cv, lambda: self._nworkers <= 0, deadline)
            threads = list(self._threads)
        for thread in threads:
            if not join_thread(thread, left_until(deadline)):
                with self._lock:
                    self._cancel_pending = True
                tw.cancel_queued(self)
                raise PoolTimeout(
                    f"{self._options.name} did not stop within {seconds} s: "
                    f"{self._nworkers} workers still running a task; queued tasks were "
                    "cancelled, running ones cannot be interrupted"
                )

    def _after_fork_in_child(self) -> None:
        """Reset the pool in a forked child (only the forking thread exists).

        Nothing here may take a lock the parent's threads could have held at
        fork time: the locks are replaced first, the old queue is read with
        ``get_nowait`` (which takes no lock), and Futures use the shared
        Conditions that ``_future`` re-creates in the child.
        """
        parent = os.getppid()
        self._lock = threading.RLock()
        self._idle_cv = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._resume = threading.Condition(self._lock)
        old_queue = self._queue
        self._queue = queue.SimpleQueue()
        self._put = self._queue.put
        lost = self._submitted() - self._finished()
        me = tw.current_worker()  # set when a task of this pool forked
        running = [w.running for w in self._workers if w is not me and w.running is not None]
        for worker in self._workers:
            self._retired.add(worker)
            worker.counted = False
        self._workers = set()
        self._threads = []
        self._nworkers = self._idle = self._blocked = self._waiters = 0
        self._outstanding = 0
        queued = 0
        while True:
            try:
                fn, _args, _kwargs, _ctx, fut = old_queue.get_nowait()
            except queue.Empty:
                break
            if fn is tw.STOP[0] or fn is tw.WAKE[0]:
                continue
            queued += 1
            if fut is not None:
                fut.cancel()  # the parent's to run
        for fut in running:
            # It may have finished in the parent just before the fork (its
            # worker was still running its done-callbacks) or be cancelled.
            if not fut.done():
                with contextlib.suppress(InvalidStateError):
                    fut.set_exception(
                        PoolClosed(
                            f"this task was running on a worker thread of {self._options.name}"
                            f" in process {parent} when it forked; its result stays in that "
                            "process"
                        )
                    )
        # Every task the child inherited unfinished is accounted for, so
        # wait() and stats() balance: queued ones cancelled, the rest failed.
        self._retired.cancelled += queued
        self._retired.failed += max(0, lost - queued)
        if self._closed:
            self._drained = True
        self._gate = self._paused or self._closed

    def _closed_error(self) -> PoolClosed | PoolBroken:
        if self._broken is not None:
            return self._broken_error()
        return PoolClosed(f"{self._options.name} is stopped; create a new pool to run more tasks")

    def _broken_error(self) -> PoolBroken:
        """The error of a broken pool, chained from what broke it."""
        error = PoolBroken(self._broken)
        error.__cause__ = self._broken_cause
        return error

    @property
    def max_workers(self) -> int:
        """The current bound on workers."""
        return self._max_workers

    @property
    def closed(self) -> bool:
        """Whether the pool is stopped or stopping."""
        return self._closed

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        with self._lock:
            counts = tw.Counts()
            counts.add(self._retired)
            for worker in self._workers:
                counts.add(worker)
            submitted = self._submitted()
            workers = self._nworkers
            idle = min(self._idle, workers)
            # Workers not waiting for a task are running one (or holding one
            # while paused); bounded by what is actually unfinished.
            running = max(0, min(workers - idle, submitted - counts.finished()))
            return WorkerPoolStats(
                max_workers=self._max_workers,
                workers=workers,
                idle_workers=idle,
                running=running,
                queued=max(0, submitted - counts.finished() - running),
                blocked=self._blocked,
                submitted=submitted,
                completed=counts.succeeded + counts.failed,
                succeeded=counts.succeeded,
                failed=counts.failed,
                dropped=self._dropped,
                cancelled=counts.cancelled,
                expired=counts.expired,
                paused=self._paused,
                closed=self._closed,
                broken=self._broken is not None,
            )
