"""The sans-io lifecycle core of the worker pools: every decision, no I/O, no waiting.

:class:`Lifecycle` decides what a worker pool does at each slow-path event:
starting workers for a backlog, a worker at its gate (pause, shrink, stop),
idle reaping, stop in each mode, resize, pause / resume, when ``wait()`` may
return, and breaking; its :class:`~poolkit.workers._intake.Intake` decides
admission into a bounded pool, and its
:class:`~poolkit.workers._idle.IdleSet` keeps which workers idle since when.
It never starts a thread or a task, never sleeps, never takes a lock and
never reads a clock: the time comes in as ``now`` (from the pool's injected
clock), the queue length as ``backlog``, and every method returns what the
driver must do (how many workers to start, how many stop messages to send,
which idle workers to retire, when to look again; the value types are in
:mod:`~poolkit.workers._lifecycle_plans`).

Drivers hold a ``Lifecycle`` (composition) and call it under their lock
(threads) or on their event loop (asyncio). Per-task work stays in the
drivers as plain attribute reads of the core (``closed``, ``gate``,
``workers``, ``max_workers``) and the driver's own counters; a submission or
a finished task calls the core only in a bounded pool (a slot to take and
give back).

Invariants (checked by ``tests/workers/test_lifecycle_machine.py``):

* ``workers`` and ``idle`` are never negative, and ``idle <= workers``.
* ``workers <= max_workers`` unless the pool is closed or just shrank; while
  ``workers > max_workers`` the gate is up, so the surplus leaves at its next
  task (:meth:`~Lifecycle.at_gate`, :meth:`~Lifecycle.next_step`).
* Reaping never takes ``workers`` below ``min_workers`` and never retires a
  worker while tasks wait (``backlog > 0``) or the pool is closed.
* ``gate == paused or closed or workers > max_workers`` after every call: one
  flag workers read once per task tells them to take the slow path.
* ``closed`` is final: a closed core admits nothing (``check_open`` raises),
  starts no worker (``spawn`` returns 0 unless a closed pool's queue needs a
  drainer, ``resize`` raises), and each worker gets exactly one stop
  message, sent on the first close (or on a break of an open pool).
* Nothing admitted is lost: a worker of a closed pool leaves only when no
  task waits, the last worker does not leave on a stop message while tasks
  wait (``may_exit``), and when the last worker is gone the driver drains
  what is left (``retire`` returns true once, or ``close`` says ``drain``):
  each task runs or is cancelled, once.

How a driver uses it:

* threads (``WorkerPool``): submitters read ``closed`` / ``workers`` lock-free
  and call ``intake.take`` / ``intake.release`` (bounded pools) and ``spawn``
  under the lock; a worker that finds the queue empty calls ``park``, waits
  on the queue until the time it returns, then ``reap`` (retired, or a time
  to wait until); a worker that meets the gate asks ``at_gate``; one that
  exits calls ``retire``.
* asyncio (``AsyncWorkerPool``): a worker with nothing to do asks
  ``next_step``, parks with ``park`` and arms one pool-wide timer for the
  time it returns; the timer calls ``maintain(now, backlog)``, which names
  the idle workers to wake and retire and when to tick again.
* processes (``ProcessPool``): the dispatcher thread and the submitters call
  the core under the pool's lock, as the thread driver does, with the worker
  process records as worker ids. Submitters use ``check_open`` and
  ``intake.admit`` (counting the pool's unfinished tasks); the dispatcher
  asks ``spawn`` (``closed_ok``: a stopping pool still runs its queue) and
  ``start_min`` how many processes to start, ``next_step(0)`` whether a
  worker whose queue ran dry parks (``park``) or leaves, ``maintain`` on
  each timer turn which idle workers to stop (``next_reap`` sets the timer),
  and reports workers it did not decide to end (killed, crashed, failed to
  start) with ``lose``; ``fail`` breaks the pool with the process pool's own
  message; ``resize`` reserves the workers to start. Task timeouts, crash
  accounting, recycling and the wire stay in the process driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

from poolkit._errors import PoolBroken, PoolClosed
from poolkit.workers._core import (
    PoolOptions,
    WorkerPoolStats,
    spawn_count,
)
from poolkit.workers._idle import IdleSet
from poolkit.workers._intake import Intake
from poolkit.workers._lifecycle_plans import INF, Closing, Gate, Resizing, Step, Tick

__all__ = ["Lifecycle"]


class Lifecycle:
    """The lifecycle state of one worker pool and every decision on it.

    Attributes read by drivers on their hot paths (plain attributes, never
    written by a driver):

    * ``closed``: stopped or stopping (final).
    * ``gate``: workers must take the slow path (paused, closed or shrinking).
    * ``max_workers`` / ``min_workers``: the current bounds.
    * ``workers``: workers started or reserved, not yet retired.

    Args:
        options: the validated pool options.
    """

    __slots__ = (
        "broken",
        "broken_cause",
        "cancel_pending",
        "closed",
        "drained",
        "gate",
        "intake",
        "max_workers",
        "min_workers",
        "options",
        "parked",
        "paused",
        "workers",
    )

    def __init__(self, options: PoolOptions) -> None:
        self.options = options
        self.max_workers = options.max_workers
        self.min_workers = options.min_workers
        self.intake = Intake(options)  # admission and the slot ledger
        self.closed = False
        self.cancel_pending = False
        self.drained = False
        self.paused = False
        self.gate = False
        self.broken: str | None = None
        self.broken_cause: BaseException | None = None
        self.workers = 0
        self.parked = IdleSet(options.idle_timeout)  # idle workers, since when

    # ------------------------------------------------------------ errors

    @property
    def name(self) -> str:
        """The pool's name, for messages."""
        return self.options.name

    def closed_error(self) -> PoolClosed | PoolBroken:
        """The error a submission to this closed pool raises."""
        if self.broken is not None:
            return self.broken_error()
        return PoolClosed(f"{self.name} is stopped; create a new pool to run more tasks")

    def broken_error(self) -> PoolBroken:
        """The error of a broken pool, chained from what broke it."""
        error = PoolBroken(self.broken)
        error.__cause__ = self.broken_cause
        return error

    def check_open(self) -> None:
        """Raise unless the pool takes tasks.

        Raises:
            PoolClosed: the pool is stopped.
            PoolBroken: the pool broke (chained from the cause).
        """
        if self.closed:
            raise self.closed_error()

    # ----------------------------------------------------------- workers

    def spawn(self, backlog: int, idle: int | None = None, *, closed_ok: bool = False) -> int:
        """Reserve workers for a backlog no idle worker will take; how many to start.

        Args:
            backlog: tasks queued now.
            idle: idle workers that will take a task (default: the parked ones).
            closed_ok: start workers on a closed pool too. The asyncio driver
                has no final drain in the caller: a task queued on a closed
                pool (the continuation of an eager start that stopped its own
                pool) needs a worker to run or cancel it.

        Returns:
            Workers reserved in ``workers``: the driver starts that many (and
            calls :meth:`start_failed` for any it could not start).
        """
        if self.closed and not closed_ok:
            return 0
        count = spawn_count(
            workers=self.workers,
            max_workers=self.max_workers,
            backlog=backlog,
            idle=len(self.parked) if idle is None else idle,
        )
        self.workers += count
        return count

    def start_min(self) -> int:
        """Reserve the ``min_workers`` started with the pool; how many to start."""
        count = 0 if self.closed else max(0, self.min_workers - self.workers)
        self.workers += count
        return count

    def start_failed(self, count: int) -> None:
        """``count`` reserved workers could not be started."""
        self.workers -= count

    def lose(self, count: int) -> None:
        """``count`` workers ended without the core deciding it (killed, crashed, failed)."""
        self.workers -= count

    def park(self, worker: Hashable, now: float) -> float | None:
        """A worker found no task and waits for one; when it may be reaped.

        Returns:
            The time at which, still idle, it may be retired (``None``:
            ``idle_timeout=None``). Whether it is surplus is judged then
            (:meth:`reap`, :meth:`maintain`).
        """
        return self.parked.park(worker, now)

    def unpark(self, worker: Hashable) -> bool:
        """A parked worker woke up; False if it was retired meanwhile (then it exits)."""
        return self.parked.unpark(worker)

    @property
    def idle(self) -> int:
        """Workers parked waiting for a task."""
        return len(self.parked)

    def _reapable(self, backlog: int) -> bool:
        return not self.closed and not backlog and self.workers > self.min_workers

    def reap(self, worker: Hashable, now: float, backlog: int) -> float | None:
        """A parked worker's wait ran out: retire it, or say when to ask again.

        Only surplus workers (above ``min_workers``) idle for ``idle_timeout``
        are retired, and none while tasks wait or the pool is closed.

        Returns:
            ``None``: retired (counted out; the worker exits, unless
            :meth:`rejoin` takes it back). Otherwise the time to ask again.
        """
        due = self.parked.due(worker, now)
        if now < due:
            return due
        if not self._reapable(backlog):
            return now + (self.parked.timeout or INF)
        self.parked.unpark(worker)
        self.workers -= 1
        return None

    def rejoin(self, worker: Hashable, now: float) -> bool:
        """A worker just retired by :meth:`reap` saw a task arrive: may it stay?

        The race it closes: a submitter queued a task after the reaper read
        an empty queue, but read ``workers`` before the reaper counted itself
        out, saw the pool full and started nobody. The submitter queued
        before it read, so the task is visible to the reaper's second look.
        """
        if self.closed or self.workers >= self.max_workers:
            return False
        self.workers += 1
        self.parked.park(worker, now)
        return True

    def maintain(self, now: float, backlog: int) -> Tick:
        """The reaping tick of a driver with one timer: which idle workers retire.

        Retires, longest idle first, parked workers idle for ``idle_timeout``
        while the pool keeps more than ``min_workers`` and has no backlog.
        They are counted out here; the driver wakes each so it exits.

        Returns:
            The workers to retire and when to tick again (``None``: not until
            a worker parks again or the bounds change). Never a time already
            past, so a driver that re-arms its timer with it cannot spin.
        """
        timeout = self.parked.timeout
        if timeout is None or not self.parked or self.closed:
            return Tick((), None)
        if backlog:
            # Workers will wake for those tasks (or are held by a pause):
            # nobody is reaped now; look again one idle_timeout later.
            return Tick((), now + timeout if self.workers > self.min_workers else None)
        retire = self.parked.overdue(now, most=self.workers - self.min_workers)
        self.workers -= len(retire)
        return Tick(tuple(retire), self.next_reap())

    def next_reap(self) -> float | None:
        """When the longest-idle parked worker may be reaped, if any is surplus (open pools)."""
        if self.closed or self.workers <= self.min_workers:
            return None
        return self.parked.earliest()

    def at_gate(self, control: bool) -> Gate:
        """A worker took a task (``control``: a driver message) while the gate was up.

        ``LEAVE`` counts the worker out already; the driver hands the task
        back to the queue (its place in line moves to the end, the price of
        not interrupting a task running elsewhere) and the worker exits.
        """
        if self.paused and not self.closed:
            return Gate.PAUSED
        if self.closed:
            return Gate.RUN if control or not self.cancel_pending else Gate.CANCEL
        if self.workers > self.max_workers:
            self.workers -= 1
            self._set_gate()
            return Gate.LEAVE
        return Gate.RUN

    def next_step(self, backlog: int) -> Step:
        """A worker with nothing in hand, queue length ``backlog``: what next."""
        if self.closed:
            if self.cancel_pending and backlog:
                return Step.CANCEL
            if backlog:
                return Step.RUN
            self.workers -= 1
            return Step.EXIT
        if self.workers > self.max_workers:
            self.workers -= 1
            self._set_gate()
            return Step.EXIT
        if backlog and not self.paused:
            return Step.RUN
        return Step.PARK

    def may_exit(self, backlog: int) -> bool:
        """A worker got a stop message: exit, unless it is the last one and tasks wait."""
        return not (self.workers == 1 and backlog)

    def retire(self, counted: bool) -> bool:
        """A worker exits (``counted``: still in ``workers``); True once: drain now.

        Returns:
            Whether this was the last worker of a closed pool whose queue was
            not drained yet: the caller runs or cancels what is left, then
            calls :meth:`drained_now`.
        """
        if counted:
            self.workers -= 1
        return self.closed and self.workers == 0 and not self.drained

    def drained_now(self) -> None:
        """The final drain emptied the queue of a closed pool with no worker left."""
        self.drained = True

    # --------------------------------------------------------- lifecycle

    def _set_gate(self) -> None:
        self.gate = self.paused or self.closed or self.workers > self.max_workers

    def close(self, cancel: bool) -> Closing:
        """Stop taking tasks; ``cancel``: cancel queued ones (sticky once set)."""
        first = not self.closed
        self.closed = True
        self.cancel_pending = self.cancel_pending or cancel
        self.paused = False
        self.gate = True
        return Closing(
            first=first,
            pills=self.workers if first else 0,
            cancel=cancel,
            drain=self.workers == 0 and not self.drained,
        )

    def break_(self, what: str, cause: BaseException | None) -> int:
        """A worker failed to start or died: the pool is broken and closed.

        Queued tasks are to fail with :meth:`broken_error` (the driver cancels
        them with that error); the first cause is kept.

        Returns:
            Stop messages to send (one per worker if the pool was open).
        """
        return self.fail(f"{what}; queued tasks were failed, create a new pool", cause)

    def break_forked(self, reason: str) -> None:
        """The pool was inherited by a forked child that cannot use it (asyncio)."""
        self.fail(reason, None)

    def fail(self, reason: str, cause: BaseException | None) -> int:
        """Break the pool with ``reason`` as the whole message (first reason wins).

        Returns:
            Stop messages to send (one per worker if the pool was open).
        """
        if self.broken is None:
            self.broken = reason
            self.broken_cause = cause
        pills = 0 if self.closed else self.workers
        self.closed = True
        self.cancel_pending = True
        self.gate = True
        return pills

    def cancel_rest(self) -> None:
        """A stop gave up waiting: from now on every queued task is cancelled."""
        self.cancel_pending = True

    def pause(self) -> None:
        """Hold queued tasks until :meth:`resume`; running ones finish."""
        self.paused = True
        self.gate = True

    def resume(self) -> None:
        """Start queued tasks again."""
        self.paused = False
        self._set_gate()

    def resize(
        self,
        max_workers: int | None,
        min_workers: int | None,
        *,
        backlog: int,
        idle: int | None = None,
    ) -> Resizing:
        """Change the worker bounds (``None`` keeps one).

        Growing reserves workers for queued tasks (and up to the new
        ``min_workers``); shrinking raises the gate so the surplus leaves at
        its next task.

        Raises:
            PoolClosed, PoolBroken: the pool is closed.
            ValueError, TypeError: bad bounds (the message names the argument).
        """
        self.check_open()
        old = self.options
        # The same checks as at construction, on the two bounds that change.
        changed = PoolOptions.build(
            max_workers=old.max_workers if max_workers is None else max_workers,
            min_workers=old.min_workers if min_workers is None else min_workers,
        )
        self.options = dataclasses.replace(
            old, max_workers=changed.max_workers, min_workers=changed.min_workers
        )
        self.max_workers = self.options.max_workers
        self.min_workers = self.options.min_workers
        self.intake.resize(self.options)
        surplus = self.workers - self.max_workers
        self._set_gate()
        grow = max(
            self.min_workers - self.workers,
            spawn_count(
                workers=self.workers,
                max_workers=self.max_workers,
                backlog=backlog,
                idle=len(self.parked) if idle is None else idle,
            ),
            0,
        )
        self.workers += grow
        return Resizing(surplus=max(0, surplus), start=grow)

    def forget_workers(self) -> None:
        """After ``os.fork()``: the parent's workers do not exist in the child."""
        self.workers = 0
        self.parked.clear()
        self.intake.forget()
        if self.closed:
            self.drained = True
        self._set_gate()

    # ------------------------------------------------------------- stats

    def stats(
        self,
        *,
        submitted: int,
        succeeded: int,
        failed: int,
        cancelled: int,
        expired: int,
        running: int,
        queued: int,
        idle: int | None = None,
        blocked: int | None = None,
    ) -> WorkerPoolStats:
        """The ``stats()`` snapshot: the driver's counters and the core's state."""
        return WorkerPoolStats(
            max_workers=self.max_workers,
            workers=self.workers,
            idle=min(self.idle if idle is None else idle, self.workers),
            running=running,
            queued=queued,
            waiting=self.intake.blocked if blocked is None else blocked,
            submitted=submitted,
            completed=succeeded + failed,
            succeeded=succeeded,
            failed=failed,
            overloads=self.intake.dropped,
            cancelled=cancelled,
            expired=expired,
            paused=self.paused,
            closed=self.closed,
            broken=self.broken is not None,
            name=self.name,
        )
