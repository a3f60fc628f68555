"""A worker pool's task timings: queue wait and run time, when ``timings=True``.

Off by default: a worker pool's fast path is about a microsecond a task, and
three clock reads and two histogram updates would add a third to it. When on,
each queued task is wrapped in :class:`Timed` (:class:`AsyncTimed` for an
asyncio pool, whose eagerly started tasks wait 0 s), which notes when it was queued
and, on a worker, when it started and ended; nothing else in the pool changes
(the worker loop, the queue's items, the pills stay as they are).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from poolkit._histogram import Histogram, Recorder

__all__ = ["AsyncTimed", "TaskTimings", "Timed", "unwrap"]


class TaskTimings:
    """The queue-wait and run-time recorders of one pool, under their own lock.

    The lock is taken once per task, after it ran, by the worker that ran it.
    """

    __slots__ = ("clock", "lock", "queue_wait", "run_time")

    def __init__(self) -> None:
        self.clock = time.perf_counter
        self.lock = threading.Lock()
        self.queue_wait = Recorder()
        self.run_time = Recorder()

    def timed_put(self, put: Callable[[Any], None]) -> Callable[[Any], None]:
        """``put`` for task items ``(fn, args, kwargs, ctx, future)``, timing ``fn``."""
        clock = self.clock

        def put_timed(item: tuple[Any, ...]) -> None:
            fn, args, kwargs, ctx, fut = item
            put((Timed(fn, self, clock()), args, kwargs, ctx, fut))

        return put_timed

    def record(self, queued: float, started: float, ended: float) -> None:
        """One task waited ``started - queued`` and ran ``ended - started`` seconds."""
        with self.lock:
            self.queue_wait.record(started - queued)
            self.run_time.record(ended - started)

    def snapshot(self) -> tuple[Histogram, Histogram]:
        """The stats fields ``(queue_wait, run_time)``."""
        with self.lock:
            return self.queue_wait.snapshot(), self.run_time.snapshot()


class Timed:
    """A queued task that records its queue wait and run time when a worker runs it."""

    __slots__ = ("fn", "queued", "timings")

    def __init__(self, fn: Callable[..., Any], timings: TaskTimings, queued: float) -> None:
        self.fn = fn
        self.timings = timings
        self.queued = queued

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        timings = self.timings
        started = timings.clock()
        try:
            return self.fn(*args, **kwargs)
        finally:
            timings.record(self.queued, started, timings.clock())

    def __repr__(self) -> str:
        return repr(self.fn)


class AsyncTimed(Timed):
    """:class:`Timed` for an asyncio pool: the task's coroutine, timed to its end."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(args, kwargs)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        timings = self.timings
        started = timings.clock()
        try:
            return await self.fn(*args, **kwargs)
        finally:
            timings.record(self.queued, started, timings.clock())


def unwrap(fn: object) -> object:
    """The user's callable behind a :class:`Timed` task (for ``on_error``)."""
    return fn.fn if isinstance(fn, Timed) else fn
