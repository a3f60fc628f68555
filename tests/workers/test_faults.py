"""WorkerPool under faults: stop racing submit, resize under load,
KeyboardInterrupt during wait, tasks raising BaseException."""

from __future__ import annotations

import signal
import threading

import pytest

from poolkit import PoolClosed, WorkerPool
from tests.workers.conftest import PROMPT, eventually, pool_threads


@pytest.mark.parametrize("cancel", [False, True])
def test_stop_racing_submitters_never_loses_a_task(cancel: bool) -> None:
    """Each go() either raises PoolClosed or its task is run or counted cancelled."""
    wp = WorkerPool(3, thread_name_prefix=f"race-{cancel}")
    ran = [0] * 4
    accepted = [0] * 4
    start = threading.Barrier(5)

    def submitter(slot: int) -> None:
        start.wait()
        while True:
            try:
                wp.go(ran.__setitem__, slot, 0)  # overwritten below
            except PoolClosed:
                return
            accepted[slot] += 1

    def count(slot: int) -> None:
        ran[slot] += 1

    def submitter_counting(slot: int) -> None:
        start.wait()
        while True:
            try:
                wp.go(count, slot)
            except PoolClosed:
                return
            accepted[slot] += 1

    threads = [threading.Thread(target=submitter_counting, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    start.wait()
    eventually(lambda: sum(accepted) > 2000, "submitters got going")
    wp.stop(wait=True, cancel_pending=cancel)
    for t in threads:
        t.join(PROMPT)
    stats = wp.stats()
    assert sum(accepted) == stats.submitted
    assert stats.submitted == stats.succeeded + stats.cancelled
    assert sum(ran) == stats.succeeded
    if not cancel:
        assert stats.cancelled == 0
    assert pool_threads(f"race-{cancel}") == []


def test_resize_under_load_grows_and_shrinks_without_losing_tasks() -> None:
    """Growing starts workers at once; shrinking lets running tasks finish."""
    gate = threading.Event()
    with WorkerPool(2, thread_name_prefix="resize") as wp:
        for _ in range(6):
            wp.go(gate.wait)
        eventually(lambda: wp.stats().running == 2, "2 running")
        wp.resize(max_workers=6)
        eventually(lambda: wp.stats().running == 6, "grew to 6 running")
        wp.resize(max_workers=1)
        assert wp.stats().running == 6  # shrinking interrupts nobody
        gate.clear()
        gate.set()
        for _ in range(100):
            wp.go(lambda: None)
        wp.wait()
        eventually(lambda: wp.stats().workers == 1, "shrank to 1 worker")
        assert wp.stats().succeeded == 106


def test_resize_wakes_blocked_submitters() -> None:
    gate = threading.Event()
    with WorkerPool(1, queue_size=0) as wp:
        wp.go(gate.wait)
        done = threading.Event()

        def blocked() -> None:
            wp.go(done.set)

        t = threading.Thread(target=blocked)
        t.start()
        eventually(lambda: wp.stats().waiting == 1, "submitter blocked")
        wp.resize(max_workers=2)
        assert done.wait(PROMPT)
        t.join(PROMPT)
        gate.set()


def test_resize_bad_arguments_name_the_parameter() -> None:
    with WorkerPool(2) as wp:
        with pytest.raises(ValueError, match="max_workers"):
            wp.resize(max_workers=0)
        with pytest.raises(ValueError, match="min_workers"):
            wp.resize(min_workers=5)
    with pytest.raises(PoolClosed):
        wp.resize(max_workers=3)


def test_keyboard_interrupt_during_wait_leaves_the_pool_usable() -> None:
    """Ctrl-C in the main thread while it waits: the wait is interrupted,
    the pool's bookkeeping stays right and it still runs and stops cleanly."""
    gate = threading.Event()
    wp = WorkerPool(2, thread_name_prefix="kbint")

    def interrupt_then_block() -> None:
        # Interrupt only once the main thread is inside wait().
        eventually(lambda: wp._core.intake.waiters == 1, "main thread waiting")
        # A real SIGINT aimed at the main thread, as Ctrl-C delivers it: it
        # wakes a blocking lock wait (interrupt_main() would not).
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        gate.wait()

    # Ctrl-C as a terminal delivers it, even when the suite runs as a shell's
    # background job (which starts with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        wp.go(interrupt_then_block)
        with pytest.raises(KeyboardInterrupt):
            wp.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert wp._core.intake.waiters == 0
    gate.set()
    wp.wait()
    assert wp.submit(lambda: 5).result(PROMPT) == 5
    wp.stop()
    assert pool_threads("kbint") == []


def test_task_raising_base_exception_reaches_its_future() -> None:
    with WorkerPool(1) as wp:

        def exit_task() -> None:
            raise SystemExit(3)

        fut = wp.submit(exit_task)
        with pytest.raises(SystemExit):
            fut.result(PROMPT)
        assert wp.submit(lambda: 1).result(PROMPT) == 1


def test_many_failing_tasks_keep_the_pool_going() -> None:
    errors: list[BaseException] = []
    lock = threading.Lock()

    def on_error(exc: BaseException, task: object) -> None:
        with lock:
            errors.append(exc)

    with WorkerPool(3, on_error=on_error) as wp:
        for i in range(300):
            wp.go(divmod, 1, i % 2)
        wp.wait()
        assert (wp.stats().failed, wp.stats().succeeded) == (150, 150)
    assert len(errors) == 150


def test_pause_holds_queued_tasks_until_resume() -> None:
    with WorkerPool(2) as wp:
        wp.pause()
        ran: list[int] = []
        for i in range(10):
            wp.go(ran.append, i)
        assert wp.stats().paused
        assert "paused" in repr(wp)
        # No task may start while paused: wait briefly for a chance to misbehave.
        with pytest.raises(TimeoutError):
            wp.wait(timeout=0.05)
        assert ran == []
        wp.resume()
        wp.wait()
        assert list(range(10)) == sorted(ran)


def test_stop_unpauses_and_drains() -> None:
    wp = WorkerPool(1)
    wp.pause()
    ran: list[int] = []
    wp.go(ran.append, 1)
    wp.stop()
    assert ran == [1]
