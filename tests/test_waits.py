"""Waits of any length: poolkit._waits slices them to what the OS allows."""

from __future__ import annotations

import math
import threading

import pytest

from poolkit import _waits
from poolkit._validate import check_bool, check_seconds


def test_deadline_of_a_huge_timeout_is_a_finite_float() -> None:
    assert _waits.deadline_after(1e300, now=5.0) == 1e300 + 5.0
    assert _waits.deadline_after(None) == math.inf
    assert _waits.deadline_after(math.inf) == math.inf


def test_slices_never_exceed_what_threading_accepts() -> None:
    assert _waits.slice_of(1e300) == _waits.MAX_WAIT_SLICE
    assert _waits.slice_of(None) == _waits.MAX_WAIT_SLICE
    assert _waits.slice_of(-1.0) == 0.0
    assert _waits.MAX_WAIT_SLICE < threading.TIMEOUT_MAX


def test_event_wait_with_a_huge_timeout_returns_when_set() -> None:
    event = threading.Event()
    threading.Timer(0.01, event.set).start()
    assert _waits.event_wait(event, 1e300) is True


def test_event_wait_times_out() -> None:
    assert _waits.event_wait(threading.Event(), 0.01) is False


def test_join_thread_with_no_limit() -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    assert _waits.join_thread(thread, math.inf) is True


def test_check_seconds_takes_any_finite_size_and_inf_only_when_allowed() -> None:
    assert check_seconds("timeout", 1e300) == 1e300
    assert check_seconds("timeout", math.inf, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match=r"timeout must be a finite number of seconds"):
        check_seconds("timeout", math.inf)
    with pytest.raises(ValueError, match="timeout"):
        check_seconds("timeout", -math.inf, allow_inf=True)


def test_check_bool_refuses_truthy_values() -> None:
    with pytest.raises(TypeError, match="ignore_exc must be True or False, got str 'yes'"):
        check_bool("ignore_exc", "yes")
    assert check_bool("flag", False) is False


def test_wait_for_takes_any_deadline_and_reports_the_predicate() -> None:
    cv = threading.Condition()
    state = {"done": False}

    def finish() -> None:
        with cv:
            state["done"] = True
            cv.notify_all()

    threading.Timer(0.01, finish).start()
    with cv:
        assert _waits.wait_for(cv, lambda: state["done"], _waits.deadline_after(1e300)) is True
        assert _waits.wait_for(cv, lambda: False, _waits.deadline_after(0.01)) is False
