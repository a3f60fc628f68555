"""Admission into a worker pool: the slots of a bounded pool and who waits for them.

:class:`Intake` is the part of the lifecycle core that says whether a
submission may enter (:func:`~poolkit.workers._core.admit`, the saturation
policy of the Go anchors) and keeps the ledger that decision needs: slots
taken and not given back, submitters blocked for room, ``wait()`` callers,
submissions refused. Like the rest of the core it does no I/O and takes no
lock: the thread driver calls it under its lock, the asyncio driver on its
loop. An unbounded pool (``limit is None``) never calls it per task.

Invariants: ``outstanding``, ``blocked``, ``waiters`` and ``dropped`` are
never negative; ``outstanding <= limit`` (a slot is only taken on
``ACCEPT``); ``dropped`` only grows.
"""

from __future__ import annotations

from poolkit._errors import PoolDeadlock, PoolOverload
from poolkit.workers._core import Admission, PoolOptions, admit, capacity, overload_message
from poolkit.workers._lifecycle_plans import WAKE_IDLE, WAKE_ROOM

__all__ = ["Intake"]


class Intake:
    """Admission decisions and the slot ledger of one pool.

    Attributes:
        limit: most tasks in the pool (``None``: unbounded).
        outstanding: slots taken and not given back (drivers that count
            every task themselves, as asyncio does, pass ``pending`` instead).
        blocked: submitters waiting for room.
        waiters: ``wait()`` callers.
        dropped: submissions refused.

    Args:
        options: the validated pool options.
    """

    __slots__ = ("blocked", "dropped", "limit", "options", "outstanding", "waiters")

    def __init__(self, options: PoolOptions) -> None:
        self.options = options
        self.limit = capacity(options.max_workers, options.queue_size)
        self.outstanding = 0
        self.blocked = 0
        self.waiters = 0
        self.dropped = 0

    def resize(self, options: PoolOptions) -> None:
        """New bounds: the capacity follows ``max_workers``."""
        self.options = options
        self.limit = capacity(options.max_workers, options.queue_size)

    def admit(self, *, pending: int, blocked: int, block: bool) -> Admission:
        """Decide one submission (counts nothing); ``pending``: tasks in the pool now."""
        return admit(
            pending,
            self.limit,
            blocked=blocked,
            nonblocking=self.options.nonblocking or not block,
            max_blocking=self.options.max_blocking,
        )

    def take(self, *, block: bool) -> Admission:
        """Decide a submission against the ledger's slots and count it.

        ``ACCEPT`` takes a slot (give it back with :meth:`release`),
        ``OVERLOAD`` counts a drop, ``WAIT`` changes nothing: the caller
        checks for a deadlock (:meth:`deadlock`) and waits (:meth:`block`).
        """
        decision = self.admit(pending=self.outstanding, blocked=self.blocked, block=block)
        if decision is Admission.ACCEPT:
            self.outstanding += 1
        elif decision is Admission.OVERLOAD:
            self.dropped += 1
        return decision

    def release(self) -> int:
        """A task that took a slot finished or was cancelled: give the slot back.

        Returns:
            ``WAKE_ROOM`` and/or ``WAKE_IDLE`` bits: whom the driver wakes.
        """
        self.outstanding -= 1
        wake = WAKE_ROOM if self.blocked else 0
        if self.waiters and not self.outstanding:
            wake |= WAKE_IDLE
        return wake

    def block(self) -> None:
        """A submitter starts waiting for room."""
        self.blocked += 1

    def unblock(self) -> None:
        """A submitter stopped waiting for room (admitted, gave up or interrupted)."""
        self.blocked -= 1

    def waiting(self, delta: int) -> None:
        """A ``wait()`` caller starts (``+1``) or stops (``-1``) waiting."""
        self.waiters += delta

    def settled(self, unfinished: int) -> bool:
        """Whether ``wait()`` may return: no task unfinished, every slot given back.

        A bounded pool also waits for its last slot, so a submission right
        after ``wait()`` finds the room it expects.
        """
        return unfinished <= 0 and not self.outstanding

    def count_drop(self) -> None:
        """A submission was refused without an error (``try_submit`` returned ``None``)."""
        self.dropped += 1

    def overload(self, *, pending: int, blocked: int, count: bool = True) -> PoolOverload:
        """Count a refused submission (unless ``count`` is false) and return its error."""
        self.dropped += count
        return PoolOverload(overload_message(self.options, pending, blocked))

    def deadlock(self, pending: int) -> PoolDeadlock:
        """A task would wait for room in its own full pool: count a drop, return the error."""
        self.dropped += 1
        return PoolDeadlock(
            f"a task of {self.options.name} would block submitting to its own full pool "
            f"({pending} tasks, capacity {self.limit}); raise queue_size, use "
            "try_submit, or submit from outside the pool"
        )

    def forget(self) -> None:
        """After ``os.fork()``: nobody in the child holds a slot or waits."""
        self.outstanding = self.blocked = self.waiters = 0
