"""The sans-io core both worker pools share: options, admission, sizing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolkit.workers._core import (
    Admission,
    PoolOptions,
    admit,
    capacity,
    default_max_workers,
    spawn_count,
)


def test_capacity_is_workers_plus_queue_and_none_when_unbounded() -> None:
    assert (capacity(4, None), capacity(4, 0), capacity(4, 10)) == (None, 4, 14)


@given(
    outstanding=st.integers(0, 50),
    limit=st.one_of(st.none(), st.integers(1, 50)),
    blocked=st.integers(0, 10),
    nonblocking=st.booleans(),
    max_blocking=st.one_of(st.none(), st.integers(0, 10)),
)
def test_admit_accepts_iff_there_is_room_and_waits_only_when_allowed(
    outstanding: int,
    limit: int | None,
    blocked: int,
    nonblocking: bool,
    max_blocking: int | None,
) -> None:
    """Room → ACCEPT; no room → OVERLOAD if the caller may not wait, else WAIT."""
    decision = admit(
        outstanding, limit, blocked=blocked, nonblocking=nonblocking, max_blocking=max_blocking
    )
    room = limit is None or outstanding < limit
    may_wait = not nonblocking and (max_blocking is None or blocked < max_blocking)
    expected = Admission.ACCEPT if room else (Admission.WAIT if may_wait else Admission.OVERLOAD)
    assert decision == expected


@given(
    workers=st.integers(0, 32),
    max_workers=st.integers(1, 32),
    backlog=st.integers(0, 100),
    idle=st.integers(0, 32),
)
def test_spawn_count_never_exceeds_max_workers_nor_the_uncovered_backlog(
    workers: int, max_workers: int, backlog: int, idle: int
) -> None:
    count = spawn_count(workers=workers, max_workers=max_workers, backlog=backlog, idle=idle)
    assert count >= 0
    assert workers + count <= max(workers, max_workers)
    assert count <= max(0, backlog - idle)


def test_options_default_to_thread_pool_executor_sizing() -> None:
    options = PoolOptions.build(max_workers=None)
    assert (options.max_workers, options.min_workers, options.queue_size) == (
        default_max_workers(),
        0,
        None,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 1, "min_workers": 2}, "min_workers"),
        ({"max_workers": 1, "idle_timeout": 0}, "idle_timeout"),
        ({"max_workers": 1, "queue_size": -1}, "queue_size"),
        ({"max_workers": 1, "max_blocking": -1}, "max_blocking"),
    ],
)
def test_options_name_the_bad_parameter(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PoolOptions.build(**kwargs)
