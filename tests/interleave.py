"""Run one pool call at each point where another call could be switched out.

Under the GIL a thread is switched out only where the interpreter checks for
a switch request: when a C call returns, when a Python function starts, and
at a loop's jump back. A signal handler runs at those same points, on the
main thread, and a finalizer at any allocation. So every interleaving of two
pool calls is the second one landing at one of those points of the first.

:func:`interleaved` makes one happen, deterministically: a profile hook runs
the second call at the ``at``-th such point of the first (a C call's return
or a Python call's start). A thread hammer meets the same interleavings only
by chance.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

__all__ = ["SWITCH_POINTS", "interleaved", "switch_points"]

P = TypeVar("P")

# The profile events at which the GIL build can switch threads. (Not
# "c_exception": a call that raises goes to the handler without a check.)
SWITCH_POINTS = ("call", "c_return")


@contextmanager
def _profiled(hook: Callable[[FrameType, str, Any], None]) -> Iterator[None]:
    """Run the block with ``hook`` as the profiler and the collector paused.

    A collection would run finalizers (other tests' leftovers) and add points
    of theirs, so that two runs of one step would not count the same points.
    """
    collecting = gc.isenabled()
    gc.disable()
    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(None)
        if collecting:
            gc.enable()


def _counts(event: str, frame: FrameType, within: str | None) -> bool:
    return event in SWITCH_POINTS and (within is None or within in frame.f_code.co_filename)


def switch_points(step: Callable[[P], object], pool: P, within: str | None = None) -> int:
    """How many switch points ``step(pool)`` passes (see SWITCH_POINTS).

    ``within``: count only the points in code whose file path contains it
    (``"/poolkit/"``: the library's own code, not the standard library's).
    """
    count = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if _counts(event, frame, within):
            count += 1

    with _profiled(hook):
        step(pool)
    return count


def interleaved(
    step: Callable[[P], object],
    other: Callable[[P], object],
    at: int,
    pool: P,
    within: str | None = None,
) -> bool:
    """Run ``step(pool)``, with ``other(pool)`` run at its ``at``-th switch point.

    Returns whether ``other`` ran: a step whose path varies (a pool with
    background threads) may pass fewer points this time. ``within`` as for
    :func:`switch_points`. If ``other`` raises,
    so does this, with ``other``'s exception.
    """
    seen = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal seen
        if _counts(event, frame, within):
            seen += 1
            if seen == at:
                other(pool)  # the profiler is off inside a hook: runs plainly

    with _profiled(hook):
        step(pool)
    return seen >= at
