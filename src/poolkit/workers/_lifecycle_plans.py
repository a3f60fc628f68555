"""What the lifecycle core returns: verdicts and plans the drivers act on.

:class:`~poolkit.workers._lifecycle.Lifecycle` decides; these plain values
say what the driver must do (start workers, send stop messages, wake
someone, retire idle workers, look again at some time).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = [
    "INF",
    "WAKE_IDLE",
    "WAKE_ROOM",
    "Closing",
    "Gate",
    "Resizing",
    "Step",
    "Tick",
]

INF = float("inf")

# release_slot() says whom to wake, as bits (no allocation per task).
WAKE_ROOM = 1  # a blocked submitter: a slot is free
WAKE_IDLE = 2  # wait() callers: nothing is outstanding


class Gate(enum.Enum):
    """What a worker does with a task it took while the gate was up."""

    RUN = "run"  # run it
    CANCEL = "cancel"  # cancel it (stop with cancel_pending, or broken)
    LEAVE = "leave"  # surplus after a shrink: hand it back and exit (already counted out)
    PAUSED = "paused"  # wait for resume (or stop), then ask again


class Step(enum.Enum):
    """What a worker with nothing in hand does next (:meth:`Lifecycle.next_step`)."""

    RUN = "run"  # take the next queued task
    CANCEL = "cancel"  # cancel every queued task, then ask again
    EXIT = "exit"  # exit (already counted out)
    PARK = "park"  # wait for work (:meth:`Lifecycle.park`)


@dataclass(frozen=True, slots=True)
class Closing:
    """What :meth:`Lifecycle.close` asks of the driver.

    Attributes:
        first: this call closed the pool (later ones change only ``cancel``).
        pills: stop messages to send, one per worker (first close only).
        cancel: cancel the queued tasks now.
        drain: no worker is left to empty the queue: the caller drains it
            (runs or cancels each task) and then calls :meth:`Lifecycle.drained_now`.
    """

    first: bool
    pills: int
    cancel: bool
    drain: bool


@dataclass(frozen=True, slots=True)
class Resizing:
    """What :meth:`Lifecycle.resize` asks of the driver.

    Attributes:
        surplus: workers above the new ``max_workers``: wake that many idle
            ones so they meet the gate and leave.
        start: workers reserved (already in ``workers``) to start now.
    """

    surplus: int
    start: int


@dataclass(frozen=True, slots=True)
class Tick:
    """What :meth:`Lifecycle.maintain` asks of the driver.

    Attributes:
        retire: idle workers already counted out: wake each so it exits.
        wake_at: when to call ``maintain`` again (``None``: on the next park).
    """

    retire: tuple[Hashable, ...]
    wake_at: float | None
