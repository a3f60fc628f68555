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

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

__all__ = ["SWITCH_POINTS", "interleaved", "switch_points"]

P = TypeVar("P")

# The profile events at which the GIL build can switch threads.
SWITCH_POINTS = ("call", "c_return", "c_exception")


def switch_points(step: Callable[[P], object], pool: P) -> int:
    """How many switch points ``step(pool)`` passes (see SWITCH_POINTS)."""
    count = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in SWITCH_POINTS:
            count += 1

    sys.setprofile(hook)
    try:
        step(pool)
    finally:
        sys.setprofile(None)
    return count


def interleaved(
    step: Callable[[P], object], other: Callable[[P], object], at: int, pool: P
) -> None:
    """Run ``step(pool)``, with ``other(pool)`` run at its ``at``-th switch point."""
    seen = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal seen
        if event in SWITCH_POINTS:
            seen += 1
            if seen == at:
                other(pool)  # the profiler is off inside a hook: runs plainly

    sys.setprofile(hook)
    try:
        step(pool)
    finally:
        sys.setprofile(None)
