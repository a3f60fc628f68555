"""The lifecycle core decides reaping, stop, resize, pause, wait and break, on a fake clock.

Every test drives :class:`~poolkit.workers._lifecycle.Lifecycle` directly:
the time is a number the test moves, the queue length an argument. No
thread, no task, no sleep.
"""

from __future__ import annotations

import pytest

from poolkit import PoolBroken, PoolClosed, PoolDeadlock, PoolOverload
from poolkit.workers._core import Admission, PoolOptions
from poolkit.workers._idle import IdleSet
from poolkit.workers._lifecycle import Lifecycle
from poolkit.workers._lifecycle_plans import INF, WAKE_IDLE, WAKE_ROOM, Gate, Step, Tick

T0 = 1000.0


def core_of(**options: object) -> Lifecycle:
    """A core with ``options`` (``max_workers`` defaults to 4) and its min workers started."""
    options.setdefault("max_workers", 4)
    core = Lifecycle(PoolOptions.build(**options))
    core.start_min()
    return core


def gate_up(core: Lifecycle) -> bool:
    """The core's gate, read fresh (each call may have changed it)."""
    return core.gate


def started(core: Lifecycle, backlog: int) -> int:
    """Reserve workers for ``backlog`` queued tasks, as a driver's submit does."""
    return core.spawn(backlog)


# ----------------------------------------------------------- idle reaping


def test_a_surplus_worker_is_reaped_only_after_idle_timeout() -> None:
    core = core_of(idle_timeout=2.0)
    assert started(core, 1) == 1
    assert core.park("w", T0) == T0 + 2.0
    assert core.reap("w", T0 + 1.999, backlog=0) == T0 + 2.0  # not yet: ask again then
    assert core.workers == 1
    assert core.reap("w", T0 + 2.0, backlog=0) is None  # retired
    assert (core.workers, core.idle) == (0, 0)


def test_min_workers_are_never_reaped() -> None:
    core = core_of(min_workers=1, idle_timeout=2.0)
    assert core.workers == 1
    core.park("w", T0)
    assert core.reap("w", T0 + 60.0, backlog=0) == T0 + 62.0  # kept; look again later
    assert core.workers == 1
    assert core.maintain(T0 + 600.0, backlog=0) == Tick((), None)


def test_no_worker_is_reaped_while_tasks_wait_or_after_close() -> None:
    core = core_of(idle_timeout=2.0)
    started(core, 2)
    core.park("a", T0)
    core.park("b", T0)
    assert core.reap("a", T0 + 5.0, backlog=1) == T0 + 7.0
    assert core.maintain(T0 + 5.0, backlog=1) == Tick((), T0 + 7.0)
    core.close(cancel=False)
    assert core.reap("a", T0 + 50.0, backlog=0) == T0 + 52.0
    assert core.maintain(T0 + 50.0, backlog=0) == Tick((), None)
    assert core.workers == 2


def test_idle_timeout_none_keeps_every_worker() -> None:
    core = core_of(idle_timeout=None)
    started(core, 1)
    assert core.park("w", T0) is None
    assert core.reap("w", T0 + 1e9, backlog=0) == INF
    assert core.maintain(T0 + 1e9, backlog=0) == Tick((), None)
    assert core.workers == 1


def test_maintain_retires_the_longest_idle_first_down_to_min_workers() -> None:
    core = core_of(min_workers=1, idle_timeout=2.0)
    started(core, 3)  # 1 min worker + 3 for the backlog
    assert core.workers == 4
    for i, worker in enumerate("abcd"):
        core.park(worker, T0 + i)  # a idles longest
    tick = core.maintain(T0 + 4.5, backlog=0)  # a, b, c are due; d is not
    assert tick == Tick(("a", "b", "c"), None)  # only 3 may go: min_workers=1 stays
    assert (core.workers, core.idle) == (1, 1)
    assert core.unpark("d")  # d is still parked: it was not retired
    assert not core.unpark("a")  # a woke up to learn it was retired


def test_maintain_says_when_to_tick_again_and_never_a_past_time() -> None:
    core = core_of(idle_timeout=2.0)
    started(core, 2)
    core.park("a", T0)
    core.park("b", T0 + 1.0)
    tick = core.maintain(T0 + 2.5, backlog=0)
    assert tick == Tick(("a",), T0 + 3.0)
    assert core.maintain(T0 + 2.6, backlog=3).wake_at == T0 + 4.6  # backlog: later, not past


def test_a_worker_parking_again_goes_to_the_back_of_the_line() -> None:
    core = core_of(idle_timeout=2.0)
    started(core, 2)
    core.park("a", T0)
    core.park("b", T0 + 1.0)
    assert core.unpark("a")
    core.park("a", T0 + 1.5)
    assert core.maintain(T0 + 3.2, backlog=0).retire == ("b",)


def test_a_reaped_worker_rejoins_when_a_task_raced_in() -> None:
    """A task queued while the reaper counted itself out, by a submitter that
    saw the pool full, is taken by the reaper, not stranded."""
    core = core_of(max_workers=1, idle_timeout=2.0)
    started(core, 1)
    core.park("w", T0)
    assert core.reap("w", T0 + 2.0, backlog=0) is None
    assert core.workers == 0
    assert core.rejoin("w", T0 + 2.0)
    assert (core.workers, core.idle) == (1, 1)


def test_a_reaped_worker_does_not_rejoin_a_closed_or_full_pool() -> None:
    core = core_of(max_workers=1, idle_timeout=2.0)
    started(core, 1)
    core.park("w", T0)
    core.reap("w", T0 + 2.0, backlog=0)
    assert started(core, 1) == 1  # the submitter started a new worker after all
    assert not core.rejoin("w", T0 + 2.0)
    core.close(cancel=False)
    assert not core.rejoin("w", T0 + 2.0)


def test_idle_set_lists_overdue_workers_in_park_order() -> None:
    idle = IdleSet(2.0)
    idle.park("a", T0)
    idle.park("b", T0 + 1.0)
    assert idle.earliest() == T0 + 2.0
    assert idle.due("b", T0) == T0 + 3.0
    assert idle.overdue(T0 + 10.0, most=1) == ["a"]
    assert list(idle.overdue(T0 + 10.0, most=5)) == ["b"]
    assert len(idle) == 0


# -------------------------------------------------------------- stop modes


def test_the_first_close_sends_one_stop_message_per_worker_and_later_ones_none() -> None:
    core = core_of(min_workers=3)
    first = core.close(cancel=False)
    assert (first.first, first.pills, first.cancel, first.drain) == (True, 3, False, False)
    again = core.close(cancel=True)
    assert (again.first, again.pills, again.cancel) == (False, 0, True)
    assert core.cancel_pending  # sticky once asked


def test_closing_a_pool_with_no_worker_asks_the_caller_to_drain_once() -> None:
    core = core_of()
    assert core.close(cancel=False).drain
    core.drained_now()
    assert not core.close(cancel=False).drain


def test_the_last_worker_of_a_closed_pool_drains_it() -> None:
    core = core_of(min_workers=2)
    core.close(cancel=False)
    assert not core.retire(counted=True)
    assert core.retire(counted=True)  # the last one: drain what is left
    core.drained_now()
    assert not core.retire(counted=False)


def test_a_closed_pool_admits_nothing_and_starts_nobody() -> None:
    core = core_of()
    core.close(cancel=False)
    with pytest.raises(PoolClosed, match="is stopped"):
        core.check_open()
    assert core.spawn(10) == 0
    assert core.start_min() == 0
    with pytest.raises(PoolClosed):
        core.resize(8, None, backlog=0)


def test_a_closed_pool_may_start_a_drainer_for_a_stranded_task() -> None:
    """The asyncio driver has no final drain: a task queued on a closed pool
    with no worker gets one that runs or cancels it."""
    core = core_of()
    core.close(cancel=False)
    assert core.spawn(1, idle=0, closed_ok=True) == 1


def test_workers_of_a_closed_pool_run_the_queue_then_exit() -> None:
    core = core_of(min_workers=2)
    core.close(cancel=False)
    assert core.next_step(backlog=2) is Step.RUN
    assert core.next_step(backlog=0) is Step.EXIT
    assert core.workers == 1


def test_workers_of_a_pool_stopped_with_cancel_cancel_the_queue() -> None:
    core = core_of(min_workers=1)
    core.close(cancel=True)
    assert core.next_step(backlog=2) is Step.CANCEL
    assert core.at_gate(control=False) is Gate.CANCEL
    assert core.at_gate(control=True) is Gate.RUN  # stop messages still reach the worker


def test_the_last_worker_keeps_going_on_a_stop_message_while_tasks_wait() -> None:
    core = core_of(min_workers=2)
    assert core.may_exit(backlog=5)  # another worker is left to run them
    core.retire(counted=True)
    assert not core.may_exit(backlog=5)
    assert core.may_exit(backlog=0)


# ----------------------------------------------------------------- resize


def test_resize_up_starts_workers_for_the_backlog_and_for_min_workers() -> None:
    core = core_of(max_workers=1)
    started(core, 1)
    plan = core.resize(4, None, backlog=3)
    assert (plan.surplus, plan.start) == (0, 3)
    plan = core.resize(None, 4, backlog=0)
    assert plan.start == 0  # already 4
    assert (core.max_workers, core.min_workers, core.workers) == (4, 4, 4)


def test_resize_down_raises_the_gate_until_the_surplus_has_left() -> None:
    core = core_of(max_workers=4)
    started(core, 4)
    plan = core.resize(2, None, backlog=0)
    assert (plan.surplus, plan.start) == (2, 0)
    assert gate_up(core)
    assert core.at_gate(control=False) is Gate.LEAVE
    assert core.next_step(backlog=0) is Step.EXIT
    assert not gate_up(core)
    assert core.at_gate(control=False) is Gate.RUN
    assert core.workers == 2


def test_a_stop_during_a_shrink_lets_the_surplus_run_the_queue() -> None:
    core = core_of(max_workers=3)
    started(core, 3)
    core.resize(1, None, backlog=0)
    core.close(cancel=False)
    assert core.at_gate(control=False) is Gate.RUN  # closing drains; nobody leaves early


def test_resize_capacity_follows_max_workers() -> None:
    core = core_of(max_workers=2, queue_size=1)
    assert core.intake.limit == 3
    core.resize(5, None, backlog=0)
    assert core.intake.limit == 6


def test_resize_names_the_bad_bound() -> None:
    core = core_of(max_workers=2)
    with pytest.raises(ValueError, match="min_workers"):
        core.resize(None, 3, backlog=0)
    assert core.max_workers == 2


# ----------------------------------------------------------- pause, resume


def test_pause_holds_every_worker_at_the_gate_until_resume() -> None:
    core = core_of(min_workers=1)
    core.pause()
    assert gate_up(core)
    assert core.at_gate(control=False) is Gate.PAUSED
    assert core.next_step(backlog=3) is Step.PARK
    core.resume()
    assert not gate_up(core)
    assert core.at_gate(control=False) is Gate.RUN
    assert core.next_step(backlog=3) is Step.RUN


def test_resume_keeps_the_gate_up_for_a_pending_shrink() -> None:
    core = core_of(max_workers=2)
    started(core, 2)
    core.pause()
    core.resize(1, None, backlog=0)
    core.resume()
    assert gate_up(core)


def test_stop_releases_a_paused_pool() -> None:
    core = core_of(min_workers=1)
    core.pause()
    core.close(cancel=False)
    assert not core.paused
    assert core.at_gate(control=False) is Gate.RUN


# ------------------------------------------------------------ wait, admit


def test_wait_returns_when_nothing_is_unfinished_and_every_slot_is_back() -> None:
    core = core_of(max_workers=1, queue_size=1)
    intake = core.intake
    assert intake.settled(0)
    assert intake.take(block=True) is Admission.ACCEPT
    assert not intake.settled(0)  # the slot is still out
    intake.waiting(1)
    assert intake.release() == WAKE_IDLE
    assert intake.settled(0)
    assert not intake.settled(1)


def test_a_full_pool_waits_or_refuses_by_policy() -> None:
    core = core_of(max_workers=1, queue_size=0, max_blocking=1)
    intake = core.intake
    assert intake.take(block=True) is Admission.ACCEPT
    assert intake.take(block=True) is Admission.WAIT
    intake.block()
    assert intake.take(block=True) is Admission.OVERLOAD  # max_blocking=1 already waits
    assert intake.take(block=False) is Admission.OVERLOAD
    assert intake.dropped == 2
    assert intake.release() == WAKE_ROOM
    assert isinstance(intake.overload(pending=1, blocked=1, count=False), PoolOverload)
    assert isinstance(intake.deadlock(1), PoolDeadlock)
    assert intake.dropped == 3


# ------------------------------------------------------------------ break


def test_breaking_an_open_pool_closes_it_and_stops_every_worker_once() -> None:
    core = core_of(min_workers=2)
    cause = RuntimeError("initializer failed")
    assert core.break_("a worker failed to start", cause) == 2
    assert core.closed
    assert core.cancel_pending
    assert gate_up(core)
    with pytest.raises(PoolBroken, match="a worker failed to start") as raised:
        core.check_open()
    assert raised.value.__cause__ is cause
    assert core.break_("another", RuntimeError("later")) == 0  # the first cause stays
    assert core.broken_error().__cause__ is cause


def test_breaking_a_stopped_pool_sends_no_more_stop_messages() -> None:
    core = core_of(min_workers=2)
    core.close(cancel=False)
    assert core.break_("a worker died", RuntimeError("boom")) == 0
    with pytest.raises(PoolBroken):
        core.check_open()


def test_stats_combine_the_drivers_counters_with_the_cores_state() -> None:
    core = core_of(min_workers=2, queue_size=4)
    core.park("w", T0)
    core.intake.take(block=False)
    core.intake.take(block=False)
    core.pause()
    stats = core.stats(
        submitted=3, succeeded=1, failed=1, cancelled=0, expired=0, running=1, queued=0
    )
    assert (stats.workers, stats.idle, stats.completed, stats.paused) == (2, 1, 2, True)
    assert not stats.closed
    assert not stats.broken
