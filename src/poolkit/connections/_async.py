"""The asyncio driver: :class:`AsyncConnectionPool`, the twin of ``ConnectionPool``.

Same core, same options, same semantics; the differences are the waiting (a
future per waiter instead of a lock) and the I/O (tasks instead of threads).
The pool needs no lock: every core call runs on the loop thread without an
``await`` inside, so it is atomic. An uncontended acquisition awaits nothing
that yields to the loop (unless a ping is due), and closing or opening
connections happens in background tasks, never on the caller's path.

A pool binds to the event loop it is first used in; use from another loop
raises :class:`~poolkit.EventLoopMismatch` instead of hanging on futures of a
loop that is not running.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from poolkit import _fork
from poolkit._errors import EventLoopMismatch, PoolClosed, PoolTimeout
from poolkit._waits import deadline_after
from poolkit.connections._core import Entry, PoolCore, Waiter, broken_error
from poolkit.connections._driver import (
    CREATE_BACKOFF_INITIAL,
    NO_LOCK,
    DriverBase,
    backoff,
    call_hook,
    logger,
    run_async_cleaner,
)
from poolkit.connections._leaks import (
    timeout_message,
    warn_dropped,
    warn_held,
)
from poolkit.connections._lease import AsyncLease
from poolkit.connections._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_IDLE_TIME,
    DEFAULT_MAX_LIFETIME,
    DEFAULT_MAX_SIZE,
    DEFAULT_TIMEOUT,
    LIFETIME_JITTER,
    check_timeout,
    make_options,
)
from poolkit.connections._protocols import AsyncConnector
from poolkit.connections._proxy import AsyncPooledConnection, attach, set_entry, set_pool

__all__ = ["AsyncConnectionPool"]

C = TypeVar("C")


class _Gate:
    """A waiter's wake-up: a future, re-armed when a wake-up came to nothing."""

    __slots__ = ("fut",)

    def __init__(self, fut: asyncio.Future[None]) -> None:
        self.fut = fut

    def wake(self) -> None:
        if not self.fut.done():
            self.fut.set_result(None)


class AsyncConnectionPool(DriverBase, Generic[C]):
    """An asyncio pool of connections made by an :class:`~poolkit.AsyncConnector`.

    Takes the same arguments as :class:`~poolkit.ConnectionPool` (see there);
    ``connector.create/close/ping/reset`` are coroutines, ``check`` and
    ``is_broken`` plain functions. Event hooks are plain functions.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        connector: AsyncConnector[C],
        *,
        min_size: int = 0,
        max_size: int = DEFAULT_MAX_SIZE,
        max_idle: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_waiting: int | None = None,
        max_lifetime: float | None = DEFAULT_MAX_LIFETIME,
        lifetime_jitter: float = LIFETIME_JITTER,
        max_idle_time: float | None = DEFAULT_MAX_IDLE_TIME,
        order: str = "lifo",
        ping_after: float | None = None,
        leak_timeout: float | None = None,
        clock: Any = None,
        on_create: Any = None,
        on_acquire: Any = None,
        on_release: Any = None,
        on_discard: Any = None,
        name: str | None = None,
        _budget: Any = None,
        _keyed: bool = False,
    ) -> None:
        opts = make_options(
            min_size=min_size, max_size=max_size, max_idle=max_idle, timeout=timeout,
            max_waiting=max_waiting, max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter, max_idle_time=max_idle_time, order=order,
            ping_after=ping_after, leak_timeout=leak_timeout, clock=clock,
            on_create=on_create, on_acquire=on_acquire, on_release=on_release,
            on_discard=on_discard, name=name,
        )  # fmt: skip
        self._init_common(connector, opts, is_async=True)
        # AsyncPooledConnection, or the connector's subclass (its proxy_class).
        self._proxy_class: type[AsyncPooledConnection[Any]] = self._hooks.proxy_class
        self._lock = NO_LOCK
        self._budget = _budget
        self._keyed = _keyed
        self._setup()
        _fork.track(self)

    def _setup(self) -> None:
        self._core = PoolCore(self._opts, self._rng, self._budget)
        self._core.owner = self
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creators: set[asyncio.Task[Any]] = set()
        self._cleaner: asyncio.Task[None] | None = None
        self._cleaner_event: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._dropped_entries: list[Entry] = []
        opts = self._opts
        self._needs_cleaner = not self._keyed and (
            opts.max_lifetime is not None
            or opts.max_idle_time is not None
            or opts.leak_timeout is not None
            or opts.min_size > 0
        )

    def _after_fork_in_child(self) -> None:
        # The parent's loop and tasks do not run here: start over unbound,
        # without touching the parent's connections.
        closed, broken = self._core.closed, self._core.broken
        self._setup()
        self._core.closed = closed
        self._core.broken = broken

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._loop is not None:
            raise EventLoopMismatch(
                f"connection pool {self._name!r} is bound to the event loop it was first "
                "used in, and this is another one (each asyncio.run() starts a new loop); "
                "create one pool per event loop"
            )
        self._loop = loop
        if self._cleaner_event is None:  # a keyed pool may have set its own
            self._cleaner_event = asyncio.Event()
        self._drained = asyncio.Event()
        self._core._plan_creates()
        self._flush()
        return loop

    async def open(self) -> None:
        """Bind to the running loop and start opening ``min_size`` connections.

        Optional: the first :meth:`acquire` does it too.

        Raises:
            EventLoopMismatch: the pool is bound to another loop.
        """
        self._bind()

    # -- acquire ------------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> AsyncPooledConnection[C]:
        """Check out a connection; wait up to ``timeout`` seconds for one.

        Args:
            timeout: seconds to wait (``None``: the pool's ``timeout``; 0: don't
                wait; ``math.inf``: no limit).

        Returns:
            A proxy to the connection; give it back with :meth:`release` or its
            ``close()``. Prefer :meth:`connection`, which always does.

        Raises:
            PoolTimeout: none became free in time (the message says why: who
                holds them, or the error that opening one failed with).
            PoolOverload: ``max_waiting`` callers are already waiting.
            PoolClosed: the pool is closed.
            PoolBroken: the pool's cleaner died; chained from the cause.
            EventLoopMismatch: called from a loop other than the pool's.
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._timeout)
        if asyncio.get_running_loop() is not self._loop:
            self._bind()
        core = self._core
        entry = core.checkout(self._clock())
        if entry is None or self._extra_checkout or core.dirty or self._dropped_entries:
            return await self._acquire_slow(entry, timeout)
        # attach() inlined: this is half of every acquire/release cycle.
        proxy = self._proxy_class()
        set_pool(proxy, self)
        set_entry(proxy, entry)
        return proxy

    async def _acquire_slow(
        self, entry: Entry | None, timeout: float | None
    ) -> AsyncPooledConnection[C]:
        """Acquire's other paths: wait, flush the outbox, run the checkout extras."""
        core = self._core
        deadline: float | None = None
        while True:
            if core.broken is not None:
                if entry is not None:
                    self._give_back(entry, None)
                raise broken_error(core.broken) from core.broken
            if entry is None:
                entry = core.checkout(self._clock())
            if entry is None:
                limit = self._timeout if timeout is None else timeout
                if deadline is None:
                    deadline = deadline_after(limit)
                entry = await self._wait(deadline, limit)
            if core.dirty or self._dropped_entries:
                self._flush()
            if not self._extra_checkout or await self._checkout_extras(entry):
                return attach(self._proxy_class, self, entry)
            entry = None

    async def _wait(self, deadline: float, timeout: float) -> Entry:
        core = self._core
        loop = asyncio.get_running_loop()
        gate = _Gate(loop.create_future())
        waiter = Waiter(gate.wake)
        start = time.monotonic()
        if deadline <= start:
            if core.closed:
                raise PoolClosed("the connection pool is closed; create a new pool")
            core.timeouts += 1
            raise PoolTimeout(
                timeout_message(core, timeout, self._clock())
            ) from core.last_create_error
        core.add_waiter(waiter)
        # Always: even with nothing planned here, queueing may have evicted
        # another key's idle connection, whose close makes the room.
        self._flush()
        try:
            while True:
                # No limit: no timer at all (asyncio takes huge finite ones).
                when = None if math.isinf(deadline) else loop.time() + deadline - time.monotonic()
                try:
                    async with asyncio.timeout_at(when):
                        await gate.fut
                    woken = True
                except TimeoutError:
                    woken = False
                if waiter.closed:
                    if core.broken is not None and not core.closed:
                        raise broken_error(core.broken) from core.broken
                    raise PoolClosed(
                        "the connection pool was closed while waiting for a connection"
                    )
                entry = core.claim(waiter, self._clock())
                if entry is not None:
                    core.wait_time += time.monotonic() - start
                    return entry
                if not woken:
                    core.timeouts += 1
                    raise PoolTimeout(
                        timeout_message(core, timeout, self._clock())
                    ) from core.last_create_error
                gate.fut = loop.create_future()
        except BaseException:
            # Cancelled (or timed out): leave the queue, passing on a wake-up
            # this waiter received but will not use.
            core.give_up(waiter)
            core.wait_time += time.monotonic() - start
            self._flush()
            raise

    async def _checkout_extras(self, entry: Entry) -> bool:
        """Health check, ping, leak record, hook; False if the entry was discarded.

        A ``BaseException`` inside the check or the ``on_acquire`` hook gives
        the connection back (closed after a check) before it goes on.
        """
        try:
            reason = "check_failed" if self._check_failed(entry) else None
        except BaseException:
            self._give_back(entry, "check_failed")
            raise
        now = self._clock()
        if reason is None and self._ping_due(entry, now):
            try:
                if await self._hooks.ping(entry.conn) is False:  # type: ignore[misc]
                    reason = "ping_failed"
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    # Cancelled mid-ping: the connection's state is unknown.
                    self._give_back(entry, "ping_failed")
                    raise
                logger.debug("connection ping raised", exc_info=True)
                reason = "ping_failed"
        if reason is not None:
            self._give_back(entry, reason)
            return False
        try:
            self._checked_out(entry, now)
        except BaseException:
            self._give_back(entry, None)
            raise
        return True

    def _rouse_cleaner(self) -> None:
        if self._cleaner_event is not None:
            self._cleaner_event.set()

    def connection(self, timeout: float | None = None) -> AsyncLease[C]:
        """An async context manager: acquire on entry, release on exit.

        As :meth:`ConnectionPool.connection`: a block that exits normally
        awaits the connector's ``commit(conn)`` (if any) before giving the
        connection back; an exception never commits, and one the connector
        calls broken (or a cancellation) discards the connection.

        Args:
            timeout: as for :meth:`acquire`.

        Returns:
            The context manager; ``async with pool.connection() as conn:``.
        """
        return AsyncLease(self, timeout)

    # -- release ------------------------------------------------------------

    async def release(self, conn: AsyncPooledConnection[C]) -> None:
        """Give a connection back (reset first, if the connector can).

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
            EventLoopMismatch: called from a loop other than the pool's.
        """
        # _detach() inlined: this is half of every acquire/release cycle.
        entry = conn._entry if type(conn) is self._proxy_class and conn._pool is self else None
        if entry is not None and entry.core is not self._core:
            # Acquired before a fork: the parent's. Forgotten here, never
            # reset, committed or closed (that would end the parent's work).
            set_entry(conn, None)
            return
        # Check the loop first: a refused release must leave the proxy attached.
        if asyncio.get_running_loop() is not self._loop:
            self._bind()
        if entry is None:
            self._detach(conn, self._proxy_class)  # raises the precise error
            return
        set_entry(conn, None)
        if not self._extra_release:
            core = self._core
            if entry.core is core:
                waiter = core.checkin(entry, self._clock())
                if waiter is not None:
                    waiter.wake()
                if core.dirty or self._dropped_entries:
                    self._flush()
            return
        reason = None
        if self._hooks.reset is not None:
            try:
                await self._hooks.reset(entry.conn)
            except BaseException as exc:
                # Cancelled mid-reset too: the state is unknown, so close it.
                self._give_back(entry, "reset_failed")
                if not isinstance(exc, Exception):
                    raise
                logger.debug("connection reset raised", exc_info=True)
                return
        if self._opts.on_release is not None:
            try:
                call_hook(self._opts.on_release, entry.conn)
            except BaseException:
                self._give_back(entry, reason)
                raise
        self._give_back(entry, reason)

    async def discard(self, conn: AsyncPooledConnection[C], reason: str = "discarded") -> None:
        """Close a connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        self._give_back(self._detach(conn, self._proxy_class), reason)

    def _give_back(self, entry: Entry, reason: str | None) -> None:
        core = self._core
        if entry.core is not core:
            return  # acquired before a fork
        waiter = core.checkin(entry, self._clock(), reason)
        if waiter is not None:
            waiter.wake()
        if core.dirty or self._dropped_entries:
            self._flush()

    def _dropped(self, entry: Entry) -> None:
        if entry.core is not self._core:
            return  # the parent's (acquired before a fork): forget it quietly
        self._dropped_entries.append(entry)
        warn_dropped(entry, self._name)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._flush)

    # -- the outbox ---------------------------------------------------------

    def _flush(self) -> None:
        core = self._core
        loop = self._loop
        while self._dropped_entries:
            entry = self._dropped_entries.pop()
            if entry.core is core and entry in core.in_use:
                waiter = core.checkin(entry, self._clock(), "dropped")
                if waiter is not None:
                    waiter.wake()
        to_close, to_create, to_wake = core.take_outbox()
        rouse = core.wake_cleaner
        core.wake_cleaner = False
        for waiter in to_wake:
            waiter.wake()
        if loop is None:
            return
        for entry, reason in to_close:
            self._spawn(self._close_entry(entry, reason))
        for _ in range(to_create):
            creator = self._spawn(self._create_loop())
            self._creators.add(creator)
            creator.add_done_callback(self._creators.discard)
        if self._needs_cleaner and self._cleaner is None and not core.closed:
            assert self._cleaner_event is not None
            self._cleaner = self._spawn(
                run_async_cleaner(weakref.ref(self), self._cleaner_event, self._clock)
            )
        elif rouse and self._cleaner_event is not None:
            self._cleaner_event.set()
        if core.closed and not (core.in_use or core.creating or core.closing) and self._drained:
            self._drained.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _close_entry(self, entry: Entry, reason: str) -> None:
        try:
            if self._opts.on_discard is not None:
                call_hook(self._opts.on_discard, entry.conn, reason)
        finally:
            try:
                await self._connector.close(entry.conn)
            except Exception:
                logger.warning("closing a connection (%s) failed", reason, exc_info=True)
            finally:
                # Only now is its slot free: until close() returned, the
                # server may still count this connection against max_size.
                entry.core.close_done()
                self._after_closes()

    def _after_closes(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._flush()

    async def _create_loop(self) -> None:
        core, delay = self._core, CREATE_BACKOFF_INITIAL
        try:
            while True:
                try:
                    conn = await self._connector.create()
                except Exception as exc:
                    logger.warning("opening a connection failed: %r", exc)
                    if not core.create_failed(exc):
                        return
                    sleep, delay = backoff(delay, self._rng)
                    await asyncio.sleep(sleep)
                    continue
                core.opened(conn, self._clock())
                if self._opts.on_create is not None:
                    call_hook(self._opts.on_create, conn)
                return
        except BaseException:
            # Cancelled by close() mid-create or mid-backoff: drop the
            # reservation so close() does not wait for it.
            core.abandon_create()
            raise
        finally:
            if core is self._core:
                self._flush()

    def maintain(self) -> float:
        """Run the cleaner's pass now (see :meth:`ConnectionPool.maintain`).

        Returns:
            The clock time of the next deadline (``math.inf``: none).
        """
        if asyncio.get_running_loop() is not self._loop:
            self._bind()
        now = self._clock()
        leaked = self._core.maintain(now)
        self._flush()
        if leaked:
            warn_held(leaked, now, self._name)
        return self._core.next_wake

    # -- management ---------------------------------------------------------

    async def close(self, timeout: float | None = None) -> None:
        """Close the pool: fail waiters, close idle connections, wait for busy ones.

        Waits up to ``timeout`` seconds (``None``: 5 s; ``math.inf``: no limit)
        for busy connections to come back and be closed, then cancels what is
        still running. Idempotent.
        """
        limit: float | None = check_timeout(timeout, DEFAULT_CLOSE_TIMEOUT)
        if limit == math.inf:
            limit = None
        core = self._core
        core.close()
        if self._loop is None:
            self._flush()
            return
        if asyncio.get_running_loop() is not self._loop:
            self._bind()
        # Connections being opened are not waited for: cancel them.
        for task in list(self._creators):
            task.cancel()
        if self._cleaner is not None:
            self._cleaner.cancel()
        self._flush()
        if self._drained is not None:
            try:
                async with asyncio.timeout(limit):
                    while core.in_use or core.creating or core.closing:
                        self._drained.clear()
                        self._flush()
                        if not (core.in_use or core.creating or core.closing):
                            break
                        await self._drained.wait()
            except TimeoutError:
                logger.warning(
                    "pool %s closed with %d connections still in use; they will be closed "
                    "when returned",
                    self._name,
                    len(core.in_use),
                )
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=limit)
            for task in still:
                task.cancel()

    async def __aenter__(self) -> AsyncConnectionPool[C]:
        self._bind()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
