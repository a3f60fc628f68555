"""Waits of any length on primitives that refuse long timeouts.

Every timeout poolkit accepts is either a finite number of seconds ≥ 0 of any
size, or "no limit" (``None`` where the docstring says so, or ``math.inf``).
The primitives underneath do not all agree: ``threading.Lock.acquire``,
``Condition.wait``, ``Event.wait`` and ``Thread.join`` raise ``OverflowError``
above ``threading.TIMEOUT_MAX`` (about 292 years on Linux, far less on some
platforms), ``socket.settimeout`` and ``select.poll`` above their C types, and
``time.monotonic() + 1e300`` is a deadline no ``timedelta`` can hold.

So a wait never hands a caller's number to a primitive as is: it computes a
deadline as a float (``math.inf`` when there is none), then waits in slices of
at most :data:`MAX_WAIT_SLICE` seconds, looping until its condition holds or
the deadline passes. The slice is long enough that the loop costs nothing
measurable (one wake-up an hour) and short enough for every primitive on every
platform.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = [
    "MAX_WAIT_SLICE",
    "NO_LIMIT",
    "deadline_after",
    "event_wait",
    "join_thread",
    "left_until",
    "slice_of",
    "wait_for",
]

# One hour: below threading.TIMEOUT_MAX everywhere (Windows' is ~49 days), below
# what select/poll take in milliseconds as a C int (~24.8 days), and below
# asyncio's own MAXIMUM_SELECT_TIMEOUT (24 h), so one slice is valid for all.
MAX_WAIT_SLICE = 3600.0

# "Wait without limit", spelled the same for every timeout that allows it.
NO_LIMIT = math.inf


def deadline_after(seconds: float | None, now: float | None = None) -> float:
    """The monotonic deadline ``seconds`` from ``now`` (``math.inf`` for no limit).

    ``None`` and ``math.inf`` both mean no limit; any finite value, however
    large, gives a finite float deadline (``1e300`` seconds stays a float).
    """
    if seconds is None or seconds == math.inf:
        return math.inf
    return (time.monotonic() if now is None else now) + seconds


def left_until(deadline: float, now: float | None = None) -> float:
    """Seconds left before ``deadline`` (≥ 0; ``math.inf`` for no deadline)."""
    if deadline == math.inf:
        return math.inf
    return max(deadline - (time.monotonic() if now is None else now), 0.0)


def slice_of(left: float | None) -> float:
    """One wait's worth of ``left`` seconds: at most :data:`MAX_WAIT_SLICE`.

    ``None`` (no limit) gives a full slice. The caller loops until its own
    condition holds or its deadline has passed.
    """
    if left is None or left > MAX_WAIT_SLICE:
        return MAX_WAIT_SLICE
    return max(left, 0.0)


def event_wait(event: threading.Event, timeout: float | None) -> bool:
    """``event.wait(timeout)`` for any timeout (``None``/``inf`` = no limit)."""
    deadline = deadline_after(timeout)
    while True:
        if event.wait(slice_of(left_until(deadline))):
            return True
        if time.monotonic() >= deadline:
            return False


def join_thread(thread: threading.Thread, timeout: float | None) -> bool:
    """``thread.join(timeout)`` for any timeout; True once the thread has ended."""
    deadline = deadline_after(timeout)
    while True:
        thread.join(slice_of(left_until(deadline)))
        if not thread.is_alive():
            return True
        if time.monotonic() >= deadline:
            return False


def wait_for(cv: threading.Condition, predicate: Callable[[], object], deadline: float) -> bool:
    """``cv.wait_for(predicate)`` until a monotonic ``deadline`` of any size.

    The caller holds ``cv``. ``Condition.wait_for`` hands its remaining time
    to ``wait`` as is (an ``OverflowError`` past ``threading.TIMEOUT_MAX``);
    this waits in slices instead.

    Returns:
        Whether ``predicate()`` held; False once the deadline passed first.
    """
    while not predicate():
        left = left_until(deadline)
        if left <= 0:
            return False
        cv.wait(slice_of(left))
    return True
