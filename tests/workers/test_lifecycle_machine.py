"""A Hypothesis state machine over the worker pools' lifecycle core.

The machine plays a driver, as the asyncio pool drives the core: tasks are
ids in a model queue; a worker is parked (idle), free (asks ``next_step``)
or busy with one task; time is a float the machine moves. Rules: submit
(bounded or not), a free worker's next step, a busy worker finishing (or
failing), waking a parked worker for a queued task, time passing with the
reaping tick (``maintain``) or one parked worker's own timer (``reap``,
as the thread pool does), pause, resume, resize, close in each mode, break.

Invariants after every step: counts are never negative and match the
model (``workers`` = workers alive, ``idle`` = parked, ``outstanding`` =
admitted and unfinished in a bounded pool, and a slot is only taken
below the limit); the gate is up exactly when the
pool is paused, closed or above ``max_workers``; an open pool keeps
``min_workers <= workers`` and never exceeds ``max_workers`` but through a
shrink in progress; a closed core admits nothing and starts nobody; no task
ends twice. At the end the machine closes the pool and runs it dry: every
admitted task has ended exactly once (completed, failed or cancelled) and
no worker is left.
"""

from __future__ import annotations

from collections import deque

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poolkit import PoolBroken, PoolClosed
from poolkit.workers._core import Admission, PoolOptions
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._lifecycle_plans import Step

TIMEOUT = 5.0


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core: Lifecycle | None = None
        self.now = 0.0
        self.next_task = 0
        self.next_worker = 0
        self.queue: deque[int] = deque()
        self.parked: set[int] = set()
        self.free: set[int] = set()
        self.busy: dict[int, int] = {}  # worker -> task
        self.admitted: set[int] = set()
        self.outcomes: dict[int, list[str]] = {}
        self.bounded = False

    # ---------------------------------------------------------------- helpers

    @property
    def c(self) -> Lifecycle:
        assert self.core is not None
        return self.core

    def _start(self, count: int) -> None:
        for _ in range(count):
            self.free.add(self.next_worker)
            self.next_worker += 1

    def _end(self, task: int, outcome: str) -> None:
        self.outcomes.setdefault(task, []).append(outcome)
        if self.bounded:
            self.c.intake.release()

    def _cancel_queue(self) -> None:
        while self.queue:
            self._end(self.queue.popleft(), "cancelled")

    def _wake_all_parked(self) -> None:
        for worker in sorted(self.parked):
            self.parked.discard(worker)
            assert self.c.unpark(worker)
            self.free.add(worker)

    def _alive(self) -> int:
        return len(self.parked) + len(self.free) + len(self.busy)

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: self.core is None)
    @rule(
        max_workers=st.integers(1, 4),
        min_workers=st.integers(0, 2),
        queue_size=st.none() | st.integers(0, 3),
        idle_timeout=st.none() | st.just(TIMEOUT),
    )
    def build(
        self, max_workers: int, min_workers: int, queue_size: int | None, idle_timeout: float | None
    ) -> None:
        options = PoolOptions.build(
            max_workers=max_workers,
            min_workers=min(min_workers, max_workers),
            queue_size=queue_size,
            idle_timeout=idle_timeout,
            nonblocking=True,
        )
        self.core = Lifecycle(options)
        self.bounded = self.core.intake.limit is not None
        self._start(self.core.start_min())

    @precondition(lambda self: self.core is not None)
    @rule()
    def submit(self) -> None:
        core = self.c
        if core.closed:
            with pytest.raises((PoolClosed, PoolBroken)):
                core.check_open()
            assert core.spawn(10) == 0
            return
        if self.bounded:
            before = core.intake.outstanding
            if core.intake.take(block=False) is not Admission.ACCEPT:
                assert core.intake.limit is not None
                assert before >= core.intake.limit
                return
            # A slot is only taken below the limit (a shrink can leave more
            # outstanding than the new limit until they finish).
            assert core.intake.limit is not None
            assert before < core.intake.limit
        task = self.next_task
        self.next_task += 1
        self.admitted.add(task)
        self.queue.append(task)
        if self.parked:
            worker = min(self.parked)  # dispatch wakes one parked worker
            self.parked.discard(worker)
            if core.unpark(worker):
                self.free.add(worker)
        else:
            self._start(core.spawn(len(self.queue), idle=0))

    @precondition(lambda self: self.core is not None and bool(self.free))
    @rule(data=st.data())
    def free_worker_steps(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.free)))
        step = self.c.next_step(len(self.queue))
        if step is Step.RUN:
            assert self.queue
            self.free.discard(worker)
            self.busy[worker] = self.queue.popleft()
        elif step is Step.CANCEL:
            self._cancel_queue()
        elif step is Step.EXIT:
            self.free.discard(worker)
            self.c.retire(counted=False)
        else:
            self.free.discard(worker)
            self.parked.add(worker)
            self.c.park(worker, self.now)

    @precondition(lambda self: self.core is not None and bool(self.busy))
    @rule(data=st.data(), ok=st.booleans())
    def busy_worker_finishes(self, data: st.DataObject, ok: bool) -> None:
        worker = data.draw(st.sampled_from(sorted(self.busy)))
        self._end(self.busy.pop(worker), "completed" if ok else "failed")
        self.free.add(worker)

    @precondition(lambda self: self.core is not None and bool(self.parked) and bool(self.queue))
    @rule()
    def parked_worker_wakes_for_work(self) -> None:
        worker = min(self.parked)
        self.parked.discard(worker)
        assert self.c.unpark(worker)
        self.free.add(worker)

    @precondition(lambda self: self.core is not None)
    @rule(seconds=st.sampled_from([0.5, TIMEOUT / 2, TIMEOUT, 2 * TIMEOUT]))
    def time_passes_and_the_pool_ticks(self, seconds: float) -> None:
        self.now += seconds
        before = self.c.workers
        tick = self.c.maintain(self.now, len(self.queue))
        assert tick.wake_at is None or tick.wake_at > self.now
        for worker in tick.retire:
            assert worker in self.parked
            self.parked.discard(worker)
            assert not self.c.unpark(worker)  # the woken worker learns it was retired
        assert before - len(tick.retire) == self.c.workers

    @precondition(lambda self: self.core is not None and bool(self.parked))
    @rule(seconds=st.sampled_from([0.5, TIMEOUT]))
    def one_parked_workers_timer_fires(self, seconds: float) -> None:
        self.now += seconds
        worker = min(self.parked)
        again = self.c.reap(worker, self.now, len(self.queue))
        if again is None:
            self.parked.discard(worker)
            if self.queue and self.c.rejoin(worker, self.now):
                self.parked.add(worker)
        else:
            assert again > self.now

    @precondition(lambda self: self.core is not None)
    @rule()
    def pause(self) -> None:
        self.c.pause()

    @precondition(lambda self: self.core is not None)
    @rule()
    def resume(self) -> None:
        self.c.resume()
        self._wake_all_parked()

    @precondition(lambda self: self.core is not None)
    @rule(max_workers=st.none() | st.integers(1, 4), min_workers=st.none() | st.integers(0, 2))
    def resize(self, max_workers: int | None, min_workers: int | None) -> None:
        core = self.c
        new_max = core.max_workers if max_workers is None else max_workers
        new_min = core.min_workers if min_workers is None else min_workers
        if core.closed:
            with pytest.raises((PoolClosed, PoolBroken)):
                core.resize(max_workers, min_workers, backlog=len(self.queue))
            return
        if new_min > new_max:
            with pytest.raises(ValueError, match="min_workers"):
                core.resize(max_workers, min_workers, backlog=len(self.queue))
            return
        plan = core.resize(max_workers, min_workers, backlog=len(self.queue))
        self._start(plan.start)
        if core.gate:
            self._wake_all_parked()  # the surplus meets the gate and leaves

    @precondition(lambda self: self.core is not None)
    @rule(cancel=st.booleans())
    def close(self, cancel: bool) -> None:
        closing = self.c.close(cancel)
        if self.c.cancel_pending:
            self._cancel_queue()
        self._wake_all_parked()
        if closing.drain:
            assert self._alive() == 0
            while self.queue:
                self._end(
                    self.queue.popleft(), "cancelled" if self.c.cancel_pending else "completed"
                )
            self.c.drained_now()

    @precondition(lambda self: self.core is not None)
    @rule()
    def a_worker_dies_and_breaks_the_pool(self) -> None:
        pills = self.c.break_("a worker died", RuntimeError("boom"))
        assert pills in (0, self.c.workers)
        self._cancel_queue()
        self._wake_all_parked()
        with pytest.raises(PoolBroken):
            self.c.check_open()

    # ------------------------------------------------------------- invariants

    @invariant()
    def counts_are_never_negative_and_match_the_model(self) -> None:
        if self.core is None:
            return
        core = self.core
        intake = core.intake
        assert min(core.workers, core.idle, intake.blocked, intake.waiters, intake.dropped) >= 0
        assert intake.outstanding >= 0
        assert core.idle <= core.workers
        assert core.workers == self._alive()
        assert core.idle == len(self.parked)
        if self.bounded:
            unfinished = len(self.admitted) - len(self.outcomes)
            assert intake.outstanding == unfinished

    @invariant()
    def the_gate_is_up_exactly_when_workers_must_take_the_slow_path(self) -> None:
        if self.core is None:
            return
        core = self.core
        assert core.gate == (core.paused or core.closed or core.workers > core.max_workers)

    @invariant()
    def an_open_pool_keeps_its_workers_within_bounds(self) -> None:
        if self.core is None or self.core.closed:
            return
        core = self.core
        assert core.min_workers <= core.workers
        assert core.workers <= core.max_workers or core.gate

    @invariant()
    def no_task_ends_twice(self) -> None:
        assert all(len(ends) == 1 for ends in self.outcomes.values())
        assert set(self.outcomes) <= self.admitted

    def teardown(self) -> None:
        if self.core is None:
            return
        core = self.core
        self.close(cancel=False)
        for _ in range(10_000):
            if self.busy:
                worker = min(self.busy)
                self._end(self.busy.pop(worker), "completed")
                self.free.add(worker)
            elif self.free:
                self.free_worker_steps_all()
            elif self.parked:
                self._wake_all_parked()
            else:
                break
        assert self._alive() == 0
        assert core.workers == 0
        assert not self.queue, "a queued task was left with no worker to run it"
        assert set(self.outcomes) == self.admitted
        assert all(len(ends) == 1 for ends in self.outcomes.values())
        with pytest.raises((PoolClosed, PoolBroken)):
            core.check_open()
        assert core.spawn(5) == 0

    def free_worker_steps_all(self) -> None:
        for worker in sorted(self.free):
            step = self.c.next_step(len(self.queue))
            self.free.discard(worker)
            if step is Step.RUN:
                self.busy[worker] = self.queue.popleft()
            elif step is Step.CANCEL:
                self._cancel_queue()
                self.free.add(worker)
            elif step is Step.EXIT:
                self.c.retire(counted=False)
            else:
                raise AssertionError(f"a worker of a closed pool was told to {step}")


LifecycleMachine.TestCase.settings = settings(
    max_examples=1000, stateful_step_count=30, deadline=None
)
test_lifecycle_core = LifecycleMachine.TestCase
