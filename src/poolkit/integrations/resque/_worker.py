"""ResqueWorker: goworker's Resque-compatible worker on a poolkit pool.

Threads and their jobs:

* the *control thread* (the one calling ``run()``) is the only one that
  fetches and acks: each turn of its loop sends one pipeline with the acks
  of the jobs that finished and one fetch per free slot, then hands the jobs
  it got to the runner and waits for the next event;
* the *runner's* threads, loop or processes run the handlers and report
  each end on ``events`` (a ``queue.SimpleQueue``: thread-safe, and safe to
  put into from a signal handler, which is how ``stop()`` wakes the loop);
* a *heartbeat* thread writes the slots' heartbeats and prunes dead workers.

Invariants: a slot holds at most one job; a job taken from Redis is in its
slot's processing list until it is acked (done or failed) or put back at
the head of its queue, so at every instant Redis holds each job once.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import iscoroutinefunction
from typing import Any

from poolkit import PoolClosed, TaskTimeout, _registry
from poolkit._registry import NamedClosable
from poolkit._validate import check_bool, check_seconds
from poolkit._waits import event_wait
from poolkit.integrations.resque._options import (
    DEFAULT_GRACE,
    DEFAULT_INTERVAL,
    HEARTBEAT_INTERVAL,
    PRUNE_INTERVAL,
    WorkerOptions,
)
from poolkit.integrations.resque._runners import make_runner
from poolkit.integrations.resque._stats import ResqueWorkerStats
from poolkit.integrations.resque._store import (
    Ack,
    Fetched,
    Store,
    connect,
)
from poolkit.integrations.resque._wire import (
    DEFAULT_NAMESPACE,
    Keys,
    PayloadError,
    backtrace,
    decode_job,
    exception_name,
    failure_record,
    text,
)

__all__ = ["ResqueWorker"]

_LOG = logging.getLogger("poolkit.integrations.resque")

# Backoff while Redis is unreachable: from 0.1 s, doubling, at most 5 s.
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0

# Slot numbers are unique in the process and ids this process registered are
# remembered, so a prune by a second worker of the same process never takes
# a live slot of the first for a stale registration of a recycled pid.
_SLOT_NUMBERS = itertools.count()
_LIVE_IDS: set[str] = set()


@dataclass
class _Running:
    queue: str
    raw: bytes | str
    payload: dict[str, Any]


@dataclass
class _Counts:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    unknown_class: int = 0
    timed_out: int = 0
    recovered: int = 0
    pruned: int = 0
    polls: int = 0


class ResqueWorker(NamedClosable):
    """A Resque-compatible worker: jobs from Redis, handlers on a poolkit pool.

    Consumes what Ruby Resque, goworker or :func:`enqueue` put in Redis, in
    Resque's format, and writes back what Resque's tools read (worker
    registrations, ``<ns>:worker:<id>``, counters, ``<ns>:failed``).

    Args:
        redis: a URL (``redis://127.0.0.1:6379/0``) or a ``redis.Redis``.
        queues: ``"high,low"`` or ``["high", "low"]`` (priority order), or
            ``"high=2,low=1"`` / ``{"high": 2, "low": 1}`` (weighted, goworker).
        concurrency: handlers running at once (default 25, goworker's; for
            ``mode="processes"`` one per core).
        namespace: the key prefix (``"resque"``, so ``resque:queue:<name>``).
        mode: ``"threads"`` (a ``WorkerPool``), ``"asyncio"`` (coroutine
            handlers on an ``AsyncWorkerPool``) or ``"processes"`` (a
            ``ProcessPool``; handlers must be picklable).
        interval: seconds between polls while every queue is empty.
        grace: seconds running jobs get to finish after ``stop()``; then
            they are stopped (processes killed, coroutines cancelled,
            threads abandoned) and put back at the head of their queue.
        job_timeout: seconds one job may run (``"processes"``: the process is
            killed; ``"asyncio"``: the coroutine is cancelled); the job fails
            with ``TaskTimeout``. ``None``: no limit.
        heartbeat_interval: seconds between heartbeats (Resque: 60).
        prune_interval: a worker whose heartbeat is older is dead (Resque: 300).
        pool_options: more keyword arguments for the pool (``initializer``,
            ``max_tasks_per_child``, ...); ``max_workers`` is ``concurrency``.
        hostname: the host part of the worker ids (default: this host's name).
        name: shown in ``repr()``, logs and metrics (``None``: generated, like
            ``ResqueWorker-1``); see :func:`poolkit.pools`.

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        redis: object,
        queues: object,
        *,
        concurrency: int | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        mode: str = "threads",
        interval: float = DEFAULT_INTERVAL,
        grace: float = DEFAULT_GRACE,
        job_timeout: float | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        prune_interval: float = PRUNE_INTERVAL,
        pool_options: Mapping[str, Any] | None = None,
        hostname: str | None = None,
        name: str | None = None,
    ) -> None:
        self._name = _registry.name_for(self, name)
        self._opt = opt = WorkerOptions.build(
            queues=queues,
            concurrency=concurrency,
            namespace=namespace,
            mode=mode,
            interval=interval,
            grace=grace,
            job_timeout=job_timeout,
            heartbeat_interval=heartbeat_interval,
            prune_interval=prune_interval,
            pool_options=pool_options,
            hostname=hostname,
        )
        self._keys = Keys(opt.namespace)
        self._store = Store(connect(redis), self._keys)
        qs = ",".join(opt.order.names)
        self._ids = tuple(
            f"{opt.host}:{os.getpid()}-{next(_SLOT_NUMBERS)}:{qs}" for _ in range(opt.concurrency)
        )
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._running: dict[str, _Running] = {}
        self._counts = _Counts()
        self._rng = random.Random()
        self._started = self._closed = self._paused = self._broken = False
        self._aborting = False
        self._stop_asked = 0
        _registry.add(self)

    # -- configuration ------------------------------------------------------

    def register(self, class_name: str, fn: Callable[..., Any]) -> None:
        """Run ``fn(*args)`` for jobs of class ``class_name`` (goworker's ``Register``).

        Raises:
            TypeError: ``class_name`` is not a str, ``fn`` is not callable, or a
                coroutine function was given outside ``mode="asyncio"``.
            ValueError: ``class_name`` is empty.
        """
        if not isinstance(class_name, str):
            raise TypeError(f"class_name must be a str, got {type(class_name).__name__}")
        if not class_name:
            raise ValueError("class_name must not be empty")
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
        if iscoroutinefunction(fn) and self._opt.mode != "asyncio":
            raise TypeError(
                f"fn for {class_name!r} is a coroutine function: create the worker with "
                "mode='asyncio' to run coroutine handlers"
            )
        self._handlers[class_name] = fn

    @property
    def worker_ids(self) -> tuple[str, ...]:
        """The ids this worker registers, one per slot (``host:pid-N:queues``)."""
        return self._ids

    # -- running ------------------------------------------------------------

    def run(self, burst: bool = False, *, handle_signals: bool = True) -> None:
        """Work until stopped (or, with ``burst=True``, until the queues are empty).

        Prunes dead workers (requeueing their jobs), registers, then fetches
        and runs jobs. On ``stop()`` (or SIGTERM / SIGINT when called in the
        main thread with ``handle_signals``), it stops fetching, gives
        running jobs ``grace`` seconds, puts back the ones still running,
        unregisters and returns. A second signal skips the grace.

        Raises:
            PoolClosed: ``run()`` was already called on this worker.
            TypeError: ``burst`` or ``handle_signals`` is not a bool.
            redis.RedisError: Redis failed at start or stayed unreachable
                past the grace of a stop.
        """
        check_bool("burst", burst)
        check_bool("handle_signals", handle_signals)
        if self._started:
            raise PoolClosed("this ResqueWorker already ran; create a new one to run again")
        self._started = True
        runner = make_runner(
            self._opt.mode, self._opt.concurrency, self._opt.pool_options, self._opt.job_timeout
        )
        # Live before registered: a worker of this process pruning meanwhile
        # must not take these ids (this pid, not its own) for stale ones.
        _LIVE_IDS.update(self._ids)
        try:
            self._prune()
            self._store.register(self._ids)
        except BaseException:
            _LIVE_IDS.difference_update(self._ids)
            raise
        beat_stop = threading.Event()
        beats = threading.Thread(
            target=self._beat, args=(beat_stop,), name="resque-heartbeat", daemon=True
        )
        try:
            with self._signals(handle_signals):
                runner.start()
                beats.start()
                try:
                    self._work(runner, burst)
                except BaseException:
                    self._broken = True
                    runner.abort()
                    raise
        finally:
            self._closed = True
            beat_stop.set()
            if beats.is_alive():
                beats.join()
            try:
                if not self._running:
                    self._store.unregister(self._ids)
            finally:
                # Left registered (Redis failed, jobs still in processing
                # lists): the next prune, here or elsewhere, recovers them.
                _LIVE_IDS.difference_update(self._ids)

    def stop(self, grace: float | None = None) -> None:
        """Ask ``run()`` to stop; returns at once (safe in a signal handler).

        Args:
            grace: seconds running jobs may still take (default: the worker's
                ``grace``); ``0`` puts them back at once.

        Raises:
            TypeError, ValueError: a bad ``grace``.
        """
        if grace is not None:
            grace = check_seconds("grace", grace)
        self._stop_asked += 1
        self._events.put(("stop", grace))

    # -- the control loop ---------------------------------------------------

    def _work(self, runner: Any, burst: bool) -> None:
        free = list(self._ids)
        acks: list[Ack] = []
        grace: float | None = None
        while grace is None:
            if free:
                fetches = [(slot, self._opt.order.order(self._rng)) for slot in free]
                got = self._retry(self._store.exchange, acks, fetches)
                acks.clear()
                self._counts.polls += 1
                self._paused = any(f.paused for f in got)
                jobs = [f for f in got if f.raw is not None]
                for fetched in jobs:
                    free.remove(fetched.slot_id)
                    self._start(runner, fetched, acks, free)
                if jobs:
                    grace = self._take_events(acks, free, block=False)
                    continue
                if burst and not self._running:
                    break
                grace = self._take_events(acks, free, block=True, timeout=self._opt.interval)
            else:
                grace = self._take_events(acks, free, block=True)
        # Stopping: fetch nothing more; let running jobs finish within grace.
        deadline = time.monotonic() + (grace if grace is not None else 0.0)
        while self._running and grace is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = self._take_events(acks, free, block=True, timeout=left)
            if more is not None and more < grace:  # a second stop: less (or no) grace
                grace, deadline = more, min(deadline, time.monotonic() + more)
            self._retry(self._store.ack, acks)
            acks.clear()
        self._retry(self._store.ack, acks)
        if self._running:
            runner.abort()
            # Jobs that ended before the abort took effect are acked; the
            # ones it stopped (killed, cancelled) report an error and stay
            # in _running, to be put back below.
            self._aborting = True
            self._take_events(acks, free, block=False)
            self._retry(self._store.ack, acks)
            for slot, job in list(self._running.items()):
                self._retry(self._store.requeue, slot, job.queue, job.raw)
                self._counts.cancelled += 1
                _LOG.warning("stopped with a %s job still running: put back on %s", slot, job.queue)
            self._running.clear()
        else:
            runner.shutdown()

    def _take_events(
        self, acks: list[Ack], free: list[str], *, block: bool, timeout: float | None = None
    ) -> float | None:
        """Handle every pending event (waiting for one if ``block``); a stop's grace or None."""
        grace: float | None = None
        try:
            event = self._events.get(block=block, timeout=timeout)
            while True:
                if event[0] == "done":
                    self._finish(event[1], event[2], acks, free)
                else:
                    grace = self._opt.grace if event[1] is None else event[1]
                    if self._stop_asked > 1:
                        grace = 0.0  # a second stop (a second SIGTERM): no more grace
                event = self._events.get_nowait()
        except queue.Empty:
            pass
        return grace

    def _start(self, runner: Any, fetched: Fetched, acks: list[Ack], free: list[str]) -> None:
        slot, queue_name, raw = fetched.slot_id, fetched.queue or "", fetched.raw or ""
        self._counts.submitted += 1
        try:
            job = decode_job(raw)
        except PayloadError as exc:
            self._fail_unstarted(slot, queue_name, text(raw), exc, "PayloadError", acks, free)
            return
        fn = self._handlers.get(job.class_name)
        if fn is None:
            self._counts.unknown_class += 1
            error = LookupError(
                f"no handler for job class {job.class_name!r} (queue {queue_name!r}); "
                f"register one with worker.register({job.class_name!r}, fn); "
                f"registered: {sorted(self._handlers)}"
            )
            self._fail_unstarted(
                slot, queue_name, job.payload, error, "UnknownJobClass", acks, free
            )
            return
        self._running[slot] = _Running(queue_name, raw, job.payload)
        runner.run(slot, fn, job.args, self._report)

    def _fail_unstarted(
        self,
        slot: str,
        queue_name: str,
        payload: object,
        error: Exception,
        exception: str,
        acks: list[Ack],
        free: list[str],
    ) -> None:
        self._counts.failed += 1
        record = failure_record(
            payload=payload,
            exception=exception,
            error=str(error),
            backtrace=[],
            worker=slot,
            queue=queue_name,
            when=datetime.now(UTC),
        )
        acks.append(Ack(slot, record))
        free.append(slot)

    def _report(self, slot: str, error: BaseException | None) -> None:
        self._events.put(("done", slot, error))

    def _finish(
        self, slot: str, error: BaseException | None, acks: list[Ack], free: list[str]
    ) -> None:
        if self._aborting and error is not None:
            return  # stopped by the abort: it is put back, not failed
        job = self._running.pop(slot, None)
        if job is None:
            return  # a job already put back by a stop: its late report is ignored
        free.append(slot)
        if error is None:
            self._counts.succeeded += 1
            acks.append(Ack(slot))
            return
        self._counts.failed += 1
        if isinstance(error, TaskTimeout):
            self._counts.timed_out += 1
        name = exception_name(error)
        if name.startswith("poolkit."):
            name = f"poolkit.{type(error).__qualname__}"  # the public name, not the module
        record = failure_record(
            payload=job.payload,
            exception=name,
            error=str(error),
            backtrace=backtrace(error),
            worker=slot,
            queue=job.queue,
            when=datetime.now(UTC),
        )
        acks.append(Ack(slot, record))

    def _retry(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a Redis call, retrying with backoff while Redis is unreachable.

        Gives up (raises) once a stop's grace has passed; jobs taken by then
        stay in their processing lists and are requeued by the next worker.
        """
        import redis

        delay = _RETRY_FIRST
        give_up_at = math.inf
        while True:
            try:
                return call(*args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._stop_asked and give_up_at == math.inf:
                    give_up_at = time.monotonic() + self._opt.grace
                if time.monotonic() >= give_up_at:
                    raise
                _LOG.warning("redis unreachable (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    # -- heartbeats and pruning ---------------------------------------------

    def _prune(self) -> None:
        report = self._store.prune(
            own=_LIVE_IDS.__contains__,
            host=self._opt.host,
            prune_interval=self._opt.prune_interval,
        )
        self._counts.pruned += report.pruned
        self._counts.recovered += report.requeued

    def _beat(self, stop: threading.Event) -> None:
        next_prune = time.monotonic() + self._opt.prune_interval
        while not event_wait(stop, self._opt.heartbeat_interval):
            try:
                self._store.heartbeat(self._ids)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self._opt.prune_interval
                    self._prune()
            except Exception as exc:  # Redis away: the control loop reports it
                _LOG.warning("resque heartbeat failed: %r", exc)

    @contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, frame: object) -> None:
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- introspection ------------------------------------------------------

    def stats(self) -> ResqueWorkerStats:
        """A snapshot in the worker-pool vocabulary (see :class:`ResqueWorkerStats`)."""
        c = self._counts
        active = self._started and not self._closed
        running = len(self._running)
        return ResqueWorkerStats(
            max_workers=self._opt.concurrency,
            workers=self._opt.concurrency if active else 0,
            idle=self._opt.concurrency - running if active else 0,
            running=running,
            queued=0,
            waiting=0,
            submitted=c.submitted,
            completed=c.succeeded + c.failed,
            succeeded=c.succeeded,
            failed=c.failed,
            overloads=0,
            cancelled=c.cancelled,
            expired=0,
            paused=self._paused,
            closed=self._closed or self._stop_asked > 0,
            broken=self._broken,
            unknown_class=c.unknown_class,
            timed_out=c.timed_out,
            recovered=c.recovered,
            pruned=c.pruned,
            polls=c.polls,
            name=self._name,
        )

    def __repr__(self) -> str:
        s = self.stats()
        state = "broken" if s.broken else ("closed" if s.closed else "open")
        return (
            f"<ResqueWorker {self._keys.ns}:{','.join(self._opt.order.names)} "
            f"{self._opt.mode} {state} "
            f"[{s.running}/{s.max_workers} running | done: {s.succeeded} ok, {s.failed} failed, "
            f"{s.cancelled} put back | {s.recovered} recovered]>"
        )
