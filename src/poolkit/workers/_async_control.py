"""AsyncWorkerPool's lifecycle: wait, pause, resume, resize, stop and stats."""

from __future__ import annotations

import asyncio
import math

from poolkit._errors import PoolDeadlock, PoolTimeout
from poolkit._validate import check_bool, check_optional_seconds
from poolkit.workers._async_base import AsyncPoolState
from poolkit.workers._core import PoolOptions, WorkerPoolStats, capacity, spawn_count

__all__ = ["AsyncPoolBase"]


class AsyncPoolBase(AsyncPoolState):
    """Lifecycle operations on top of :class:`AsyncPoolState`."""

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until every task submitted so far has finished, without stopping.

        ``timeout`` may be any number of seconds; ``None`` or ``math.inf``
        waits without limit.

        Raises:
            PoolTimeout: not idle within ``timeout`` seconds.
            PoolDeadlock: called from one of this pool's tasks.
        """
        seconds = _no_inf(check_optional_seconds("timeout", timeout, allow_inf=True))
        if not self._pending:
            return
        loop = self._bind()
        if self._in_own_task():
            raise PoolDeadlock(
                f"wait() called from a task of {self._options.name}: it would wait for itself"
            )
        waiter: asyncio.Future[None] = loop.create_future()
        self._idle_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), seconds)
        except TimeoutError:
            raise PoolTimeout(
                f"{self._options.name} still had work after {seconds} s "
                f"({len(self._queue)} queued); raise timeout"
            ) from None
        finally:
            if waiter in self._idle_waiters:
                self._idle_waiters.remove(waiter)

    def pause(self) -> None:
        """Stop starting queued tasks until :meth:`resume` (gammazero ``Pause``)."""
        self._paused = True
        self._set_gate(True)

    def resume(self) -> None:
        """Start queued tasks again."""
        self._paused = False
        self._set_gate(self._nworkers > self._max_workers or self._closed)
        if self._loop is not None:
            for _ in range(min(len(self._queue), len(self._idle))):
                waiter = self._idle.popleft()
                if not waiter.done():
                    waiter.set_result(True)
            if self._queue and self._nworkers < self._max_workers:
                self._spawn(min(len(self._queue), self._max_workers - self._nworkers))

    def resize(self, max_workers: int | None = None, min_workers: int | None = None) -> None:
        """Change the worker bounds (ants ``Tune``, pond ``Resize``).

        Growing starts workers for queued tasks and wakes blocked submitters;
        shrinking lets surplus workers finish their task and exit.

        Raises:
            PoolClosed: the pool is stopped.
            ValueError: bad bounds (the message names the argument).
        """
        self._check_open()
        old = self._options
        self._options = PoolOptions.build(
            max_workers=old.max_workers if max_workers is None else max_workers,
            min_workers=old.min_workers if min_workers is None else min_workers,
            idle_timeout=old.idle_timeout,
            queue_size=old.queue_size,
            nonblocking=old.nonblocking,
            max_blocking=old.max_blocking,
            on_error=old.on_error,
            name=old.name,
        )
        self._max_workers = self._options.max_workers
        self._limit = capacity(self._max_workers, self._options.queue_size)
        self._set_gate(self._paused or self._nworkers > self._max_workers)
        if self._loop is None:
            return
        if self._gate:
            for waiter in list(self._idle):  # idle surplus workers: wake up and leave
                if not waiter.done():
                    waiter.set_result(False)
        grow = max(
            self._options.min_workers - self._nworkers,
            spawn_count(
                workers=self._nworkers,
                max_workers=self._max_workers,
                backlog=len(self._queue),
                idle=len(self._idle),
            ),
        )
        if grow > 0:
            self._spawn(grow)
        for _ in range(len(self._room)):
            if self._limit is not None and self._pending >= self._limit:
                break
            self._wake_room()

    async def stop(
        self,
        wait: bool = True,
        cancel_pending: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Stop the pool; same modes as ``WorkerPool.stop``.

        ``stop()`` drains queued tasks and waits; ``stop(wait=False)`` cancels
        queued ones and returns; after ``timeout`` the running tasks are
        cancelled (unlike threads, coroutines can be) and ``PoolTimeout`` is
        raised. After a stop that waited no worker task is left.

        ``timeout`` may be any number of seconds; ``None`` or ``math.inf``
        waits without limit.

        Raises:
            TypeError: ``wait`` or ``cancel_pending`` is not a bool.
            PoolTimeout: tasks still running after ``timeout`` (now cancelled).
            PoolDeadlock: ``wait`` requested from one of this pool's tasks.
        """
        seconds = _no_inf(check_optional_seconds("timeout", timeout, allow_inf=True))
        check_bool("wait", wait)
        if cancel_pending is not None:
            check_bool("cancel_pending", cancel_pending)
        cancel = (not wait) if cancel_pending is None else cancel_pending
        if wait and self._in_own_task():
            raise PoolDeadlock(
                f"stop(wait=True) called from a task of {self._options.name}; "
                "use stop(wait=False) inside tasks"
            )
        self._closed = True
        self._cancel_pending = self._cancel_pending or cancel
        self._paused = False
        self._set_gate(True)
        if self._cancel_pending:
            self._cancel_queued()
        self._wake_all()
        if not wait or not self._tasks:
            return
        tasks = list(self._tasks)
        _done, running = await asyncio.wait(tasks, timeout=seconds)
        if running:
            self._cancel_pending = True
            self._cancel_queued()
            for task in running:
                task.cancel()
            await asyncio.wait(running)
            raise PoolTimeout(
                f"{self._options.name} did not stop within {seconds} s: "
                f"{len(running)} tasks were still running and were cancelled"
            )

    async def aclose(self) -> None:
        """``await stop()``: drain and wait."""
        await self.stop()

    @property
    def max_workers(self) -> int:
        """The current bound on workers."""
        return self._max_workers

    @property
    def closed(self) -> bool:
        """Whether the pool is stopped or stopping."""
        return self._closed

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        idle = len(self._idle)
        queued = len(self._queue)
        # Every submitted task is pending or has one outcome; successes are
        # the rest, so the hot paths count nothing for them.
        succeeded = self._submitted - self._pending - self._failed - self._cancelled - self._expired
        return WorkerPoolStats(
            max_workers=self._max_workers,
            workers=self._nworkers,
            idle_workers=idle,
            running=max(0, self._pending - queued),
            queued=queued,
            blocked=len(self._room),
            submitted=self._submitted,
            completed=succeeded + self._failed,
            succeeded=succeeded,
            failed=self._failed,
            dropped=self._dropped,
            cancelled=self._cancelled,
            expired=self._expired,
            paused=self._paused,
            closed=self._closed,
            broken=self._broken is not None,
        )


def _no_inf(seconds: float | None) -> float | None:
    """``None`` for ``math.inf``: asyncio's timeouts spell "no limit" that way.

    Finite values of any size are fine as they are: the event loop caps each
    select() wait at a day and re-checks its timers.
    """
    return None if seconds == math.inf else seconds
