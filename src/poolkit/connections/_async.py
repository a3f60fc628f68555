"""A connection pool's driver: the waiting, the I/O and the background work.

Every decision is the core's (``_core.py``); the driver does the waiting and
the I/O around it: opening connections in the background (so a hanging
``create()`` cannot hold a caller past its timeout), closing them, waking
waiters. An uncontended acquisition is a deque pop with no wait.

One source, two twins: ``_async.py`` (the asyncio pool) is the source, and
``scripts/gen_sync.py`` writes ``_sync.py`` (the threaded pool) from it. The
threaded pool runs each core call under its lock (the statements marked
``# locked`` in the source); the asyncio pool needs none, since a core call
without an ``await`` inside is atomic on the loop. What differs otherwise (a
waiter's wake-up, threads or tasks, inline or background closes) is in
``_compat.py``.

Waiting: a waiter has a gate (``_compat``) the core wakes when an entry comes
back. A waiter that times out asks the core to give up; if an entry arrived in
between, the waiter keeps it (it did not time out after all), so nothing is
lost and nothing is handed twice.

The asyncio twin binds to the event loop it is first used in; use from
another loop raises :class:`~poolkit.EventLoopMismatch` instead of hanging on
futures of a loop that is not running.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Callable, Mapping
from logging import ERROR, WARNING
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack, overload

from poolkit import _fork, _registry
from poolkit._errors import EventLoopMismatch, PoolClosed, PoolOverload, PoolTimeout
from poolkit._log import log
from poolkit._typing import with_default
from poolkit._validate import Clock, check_bool, check_seconds
from poolkit._waits import deadline_after
from poolkit.connections._budget import Budget
from poolkit.connections._compat_async import AsyncGate, AsyncRunner, async_new_lock
from poolkit.connections._core import Entry, PoolCore, Waiter, broken_error
from poolkit.connections._driver import (
    CREATE_BACKOFF_INITIAL,
    DriverBase,
    backoff,
    call_hook,
    logger,
)
from poolkit.connections._leaks import timeout_message, warn_dropped, warn_held
from poolkit.connections._lease_async import AsyncLease
from poolkit.connections._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_IDLE_TIME,
    DEFAULT_MAX_LIFETIME,
    DEFAULT_MAX_SIZE,
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_RECONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    LIFETIME_JITTER,
    ConnectionPoolOptions,
    PoolOptions,
    check_timeout,
    make_options,
)
from poolkit.connections._pooled_async import AsyncPooledConnection, AsyncPooledConnectionBase
from poolkit.connections._protocols import AsyncConnector, AsyncProxiedConnector
from poolkit.connections._proxy import (
    SOLE_REFS,
    attach,
    bind,
    getweakrefcount,
    refcount,
    reusable_class,
)
from poolkit.connections._run_async import AsyncRunFn, async_run_with_retries

__all__ = ["AsyncConnectionPool"]

C = TypeVar("C")
T = TypeVar("T")
if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    # What acquire() hands out: the connector's proxy_class (an adapter's
    # typed proxy), else AsyncPooledConnection[C]. PEP 696's default keeps
    # AsyncConnectionPool[C] meaning what it always meant.
    P = DefaultTypeVar("P", bound=AsyncPooledConnectionBase[Any], default=AsyncPooledConnection[C])
else:
    P = TypeVar("P")


class AsyncConnectionPool(DriverBase, Generic[C, P]):
    """An asyncio pool of connections made by an :class:`~poolkit.AsyncConnector`.

    Args:
        connector: opens and closes connections (see :class:`~poolkit.AsyncConnector`).
        min_size: connections opened in the background and kept open.
        max_size: cap on open connections, counting those being created.
        max_idle: cap on idle connections; surplus ones are closed on return
            (default: ``max_size``).
        timeout: default seconds :meth:`acquire` waits; 0 fails at once,
            ``math.inf`` waits without limit. Any size works (waits are sliced).
        max_waiting: cap on queued callers, beyond which :class:`~poolkit.PoolOverload`
            is raised (``None``: no cap).
        max_lifetime: seconds after which a connection is closed (shortened by up to
            ``lifetime_jitter`` at random); ``None`` or ``math.inf`` keeps them forever.
        lifetime_jitter: fraction of ``max_lifetime`` taken off at random, in [0, 1).
        max_idle_time: seconds idle after which a connection is closed (never
            below ``min_size``); ``None`` or ``math.inf``: never.
        order: ``"lifo"`` reuses the warmest connection (idle surplus ages out);
            ``"fifo"`` rotates through all (spreads load behind a balancer).
        ping_after: ping (``connector.ping``) at checkout a connection idle longer
            than this many seconds; ``None``: never ping.
        check: ``check(conn)`` run at every checkout (psycopg_pool's ``check``);
            returning ``False`` or raising discards the connection and the
            checkout takes another. It replaces the connector's own ``check``
            (the default); the ``ping_after`` ping still runs after it. In the
            asyncio pool it may be a coroutine function.
        leak_timeout: record who acquires each connection and warn
            (:class:`~poolkit.LeakWarning`) when it is held longer than this
            (``None`` or ``math.inf``: never warn).
        reconnect_timeout: seconds a background attempt to open a connection
            keeps retrying (with backoff) before it gives up, frees its slot and
            calls ``reconnect_failed`` (psycopg_pool; default 5 minutes;
            ``None`` or ``math.inf``: never give up). ``min_size`` is topped up
            again at the cleaner's next pass; a waiting caller starts a new attempt.
        reconnect_failed: ``hook(pool)`` called when an attempt gave up (a
            coroutine function is awaited in the asyncio pool); counted in
            ``stats().reconnects_failed``.
        clock: monotonic clock in seconds for ages and deadlines (tests pass a fake).
        on_create: ``hook(conn)`` after a connection is opened.
        on_acquire: ``hook(conn)`` after a connection is checked out.
        on_release: ``hook(conn)`` when a connection is given back.
        on_discard: ``hook(conn, reason)`` before a connection is closed.
        name: shown in ``repr()``, thread names, warnings, logs and metrics
            (``None``: a generated one, ``AsyncConnectionPool-1``...); see
            :func:`poolkit.pools`.
        timings: record acquire-wait, hold and creation times in :meth:`stats`
            (histograms; about 0.1 µs per acquire+release). ``False`` leaves
            them ``None``.
        on_timeout: ``hook(seconds)`` when an acquisition gives up with
            :class:`~poolkit.PoolTimeout` after waiting ``seconds``.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    # For type checkers: what acquire() and connection() hand out follows the
    # connector (its proxy_class, typed as the driver's connection by the
    # adapters); the options are checked by name and type either way.
    @overload
    def __init__(
        self: AsyncConnectionPool[C, P],
        connector: AsyncProxiedConnector[C, P],
        **options: Unpack[ConnectionPoolOptions[C]],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncConnectionPool[C, AsyncPooledConnection[C]],
        connector: AsyncConnector[C],
        **options: Unpack[ConnectionPoolOptions[C]],
    ) -> None: ...
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
        check: Callable[[C], object] | None = None,
        leak_timeout: float | None = None,
        reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
        reconnect_failed: Callable[[Self], object] | None = None,
        clock: Clock | None = None,
        on_create: Callable[[C], object] | None = None,
        on_acquire: Callable[[C], object] | None = None,
        on_release: Callable[[C], object] | None = None,
        on_discard: Callable[[C, str], object] | None = None,
        name: str | None = None,
        timings: bool = True,
        on_timeout: Callable[[float], object] | None = None,
    ) -> None:
        name = _registry.name_for(self, name)
        opts = make_options(
            min_size=min_size, max_size=max_size, max_idle=max_idle, timeout=timeout,
            max_waiting=max_waiting, max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter, max_idle_time=max_idle_time, order=order,
            ping_after=ping_after, check=check, leak_timeout=leak_timeout,
            reconnect_timeout=reconnect_timeout, reconnect_failed=reconnect_failed, clock=clock,
            on_create=on_create, on_acquire=on_acquire, on_release=on_release,
            on_discard=on_discard, name=name, timings=timings, on_timeout=on_timeout,
        )  # fmt: skip
        self._build(connector, opts, None, async_new_lock(), None)
        _registry.add(self)

    if not TYPE_CHECKING:

        def __class_getitem__(cls, params):
            # AsyncConnectionPool[C] is AsyncConnectionPool[C, AsyncPooledConnection[C]].
            params = with_default(params, 1, lambda c: AsyncPooledConnection[c])
            return super().__class_getitem__(params)

    @classmethod
    def _for_key(
        cls,
        connector: AsyncConnector[C],
        options: Mapping[str, Any],
        budget: Budget,
        lock: Any,
        wake: Any,
    ) -> Self:
        """A keyed pool's pool for one key (the keyed pool's private way in).

        It counts against ``budget`` (the caps across keys), shares the keyed
        pool's ``lock`` and its cleaner (woken through ``wake``), and opens no
        ``min_size`` connections of its own.

        Raises:
            TypeError: an option has the wrong type.
            ValueError: an option is out of range.
        """
        pool = cls.__new__(cls)
        pool._build(connector, make_options(**options), budget, lock, wake)
        return pool

    def _build(
        self,
        connector: AsyncConnector[C],
        opts: PoolOptions,
        budget: Budget | None,
        lock: Any,
        wake: Any,
    ) -> None:
        self._init_common(connector, opts, is_async=True)
        # AsyncPooledConnection, or the connector's subclass (its proxy_class).
        self._proxy_class: type[P] = self._hooks.proxy_class
        # refcount(entry.proxy) when a released proxy may be reused; -1: never (_proxy.py).
        self._sole_refs = SOLE_REFS if reusable_class(self._proxy_class) else -1
        self._budget = budget
        self._keyed = budget is not None
        self._shared_wake = wake
        self._setup(lock)
        _fork.track(self)
        # sync: if not self._keyed:  # a keyed pool's sub-pools have no min_size
        # sync:     with self._lock:
        # sync:         self._core._plan_creates()
        # sync:     self._flush()

    def _setup(self, lock: Any) -> None:
        self._core = PoolCore(self._opts, self._rng, self._budget)
        self._core.owner = self
        self._lock = lock
        self._runner = AsyncRunner(self._name, lock, self._shared_wake)
        self._loop: asyncio.AbstractEventLoop | None = None  # async-only
        self._dropped_entries: list[Entry] = []
        # Callers in wait(): connections opening wake them.
        self._ready_waits = 0
        opts = self._opts
        self._needs_cleaner = not self._keyed and (
            opts.max_lifetime is not None
            or opts.max_idle_time is not None
            or opts.leak_timeout is not None
            or opts.min_size > 0
        )

    def _after_fork_in_child(self) -> None:
        # The parent's threads and tasks do not run here, and its lock may
        # have been held at fork time: start over with a fresh core, never
        # touching the parent's connections. Proxies still held point to the
        # old core and are dropped silently on release.
        closed, broken = self._core.closed, self._core.broken
        self._setup(self._lock if self._keyed else async_new_lock())
        self._core.closed = closed
        self._core.broken = broken

    def _bind(self) -> asyncio.AbstractEventLoop:  # async-only
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
        self._runner.bind(loop)
        self._core._plan_creates()
        self._flush()
        return loop

    async def open(self, wait: bool = False, timeout: float = DEFAULT_OPEN_TIMEOUT) -> None:
        """Start opening ``min_size`` connections; with ``wait``, fail fast if they can't.

        Optional: the pool starts by itself (the asyncio pool on its first
        use). ``open(wait=True)`` is psycopg_pool's way to find out at start
        that the server is unreachable: see :meth:`wait`.

        Args:
            wait: wait until ``min_size`` connections are open.
            timeout: seconds to wait for them (``math.inf``: no limit).

        Raises:
            PoolTimeout: ``wait`` and they were not open in time (the pool is closed).
            PoolClosed: the pool is closed (a pool cannot be reopened).
            EventLoopMismatch: the pool is bound to another loop.
        """
        check_bool("wait", wait)
        limit = check_seconds("timeout", timeout, allow_inf=True)
        if self._core.closed:
            raise PoolClosed(
                "the connection pool is closed and cannot be reopened; create a new pool"
            )
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        if wait:
            await self.wait(limit)

    async def wait(self, timeout: float = DEFAULT_OPEN_TIMEOUT) -> None:
        """Wait until ``min_size`` connections are open (psycopg_pool ``wait()``).

        Returns at once when they are (always with ``min_size=0``). Failed
        attempts are retried with backoff meanwhile; if the connections are
        still not open after ``timeout`` seconds, the pool is closed and
        :class:`~poolkit.PoolTimeout` is raised, chained from the last
        connection error: a service fails at start, not on its first request.

        Args:
            timeout: seconds to wait (``math.inf``: no limit).

        Raises:
            PoolTimeout: not open in time; the pool is now closed.
            PoolClosed: the pool is (or was meanwhile) closed.
            PoolBroken: the pool broke meanwhile.
        """
        limit = check_seconds("timeout", timeout, allow_inf=True)
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        core = self._core
        if not core.closed:
            self._ready_waits += 1  # locked
            try:
                await self._runner.wait_drained(self._ready, deadline_after(limit))
            finally:
                self._ready_waits -= 1  # locked
        if core.closed:
            raise PoolClosed("the connection pool is closed; create a new pool")
        if core.broken is not None:
            raise broken_error(core.broken) from core.broken
        opened = len(core.idle) + core.in_use_count
        if opened >= core.min_size:
            return
        error = core.last_create_error
        await self.close()
        cause = f"; the last attempt failed with {error!r}" if error is not None else ""
        raise PoolTimeout(
            f"connection pool {self._name!r}: {opened} of min_size={core.min_size} "
            f"connections opened within timeout={limit} s{cause}; the pool is closed "
            "(check that the server is up and reachable, or raise timeout)"
        ) from error

    def _ready(self) -> bool:
        """Whether :meth:`wait` is over: ``min_size`` open, or the pool closed or broken."""
        core = self._core
        return (
            core.closed
            or core.broken is not None
            or len(core.idle) + core.in_use_count >= core.min_size
        )

    # -- acquire ------------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> P:
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
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        core = self._core
        now = self._clock()
        # core.checkout() inlined for its common case, as a half of every
        # acquire/release cycle: the next idle connection is not due yet.
        entry: Entry | None
        if core.idle:  # locked
            entry = core.take()
            if now < entry.due:
                entry.acquired_at = now
                entry.out = True
                core.acquired += 1
            else:
                entry = core.checkout_due(entry, now)
        else:
            entry = None
        if entry is None or self._extra_checkout or core.dirty or self._dropped_entries:
            return await self._acquire_slow(entry, timeout)
        if self._check is not None:
            # The check stage of _checkout_extras, for a pool whose only
            # checkout extra is the check (the adapters' connectors): a
            # failed one goes on in the slow path, which opens or waits for
            # another connection exactly as after a failed check there.
            try:
                failed = await self._check_fails(entry)
            except BaseException:
                # Interrupted mid-check: the connection's state is unknown.
                self._give_back(entry, "check_failed")
                raise
            if failed:
                self._give_back(entry, "check_failed")
                return await self._acquire_slow(None, timeout)
        # attach() inlined: this is half of every acquire/release cycle.
        if refcount(entry.proxy) == self._sole_refs and not getweakrefcount(entry.proxy):
            proxy: P = entry.proxy
            entry.proxy = None  # leased: the caller holds the only reference
            return proxy
        return bind(self._proxy_class, self, entry)

    async def _acquire_slow(self, entry: Entry | None, timeout: float | None) -> P:
        """Acquire's other paths: wait, flush the outbox, run the checkout extras."""
        core = self._core
        deadline: float | None = None
        while True:
            if core.broken is not None:
                if entry is not None:
                    self._give_back(entry, None)
                raise broken_error(core.broken) from core.broken
            if entry is None:
                entry = core.checkout(self._clock())  # locked
            if entry is None:
                limit = self._timeout if timeout is None else timeout
                if deadline is None:
                    deadline = deadline_after(limit)
                try:
                    entry = await self._wait(deadline, limit)
                except (PoolTimeout, PoolOverload) as exc:
                    self._refused(exc, limit)
                    raise
            if core.dirty or self._dropped_entries:
                try:
                    self._flush()
                except BaseException:
                    # A close of another connection raised (a KeyboardInterrupt
                    # in connector.close or on_discard): this caller gets the
                    # error, and the connection it was about to get goes back.
                    self._give_back(entry, None)
                    raise
            bare = self._check is None and not self._extra_checkout
            if bare or await self._checkout_extras(entry):
                return attach(self._proxy_class, self, entry, self._sole_refs)
            entry = None

    async def _wait(self, deadline: float, timeout: float) -> Entry:
        gate = AsyncGate()
        waiter = Waiter(gate.wake, self._clock())
        start = time.monotonic()
        entry: Entry | None = None
        queued = False
        # The try starts before the waiter is queued: an interrupt landing
        # between queueing it and the try would leave it queued for good, to
        # be handed the next connection given back, which nobody then takes.
        try:
            entry = self._enqueue(waiter, deadline, timeout)  # locked
            if entry is not None:
                return entry
            queued = True
            # Always: even with nothing planned here, queueing may have evicted
            # another key's idle connection, whose close makes the room.
            self._flush()
            while True:
                woken = await gate.wait(deadline)
                entry = self._claim(waiter, woken, deadline, timeout)  # locked
                if entry is not None:
                    return entry
        except BaseException:
            if entry is not None:
                # Interrupted after a connection was checked out for this
                # caller, who will not get it: it goes back.
                self._give_back(entry, None)
                entry = None
            else:
                # Interrupted or cancelled in the wait, or the errors above:
                # leave the queue, passing on a wake-up this waiter did not use.
                self._core.give_up(waiter)  # locked
                if self._core.dirty:
                    self._flush()
            raise
        finally:
            # Every queued wait is timed, however it ended; a served one goes
            # in the acquire_wait histogram too.
            if queued:
                self._core.end_wait(time.monotonic() - start, entry is not None)  # locked

    def _enqueue(self, waiter: Waiter, deadline: float, timeout: float) -> Entry | None:
        """Queue ``waiter``, unless a connection came back meanwhile (returned).

        Raises:
            PoolClosed: the pool is closed.
            PoolTimeout: ``deadline`` has passed (``timeout`` was 0).
            PoolOverload: ``max_waiting`` callers are already waiting.
        """
        core = self._core
        entry = core.checkout(self._clock())
        if entry is not None:
            return entry
        if deadline <= time.monotonic():
            if core.closed:
                raise PoolClosed("the connection pool is closed; create a new pool")
            core.timeouts += 1
            raise PoolTimeout(
                timeout_message(core, timeout, self._clock())
            ) from core.last_create_error
        core.add_waiter(waiter)
        return None

    def _claim(self, waiter: Waiter, woken: bool, deadline: float, timeout: float) -> Entry | None:
        """After a wait: the entry ``waiter`` may take, or None to wait on.

        Even on timeout, it takes a connection that came back just now.

        Raises:
            PoolClosed: the pool was closed meanwhile.
            PoolBroken: the pool broke meanwhile.
            PoolTimeout: the deadline passed.
        """
        core = self._core
        if waiter.closed:
            broken = core.broken
            if broken is not None and not core.closed:
                raise broken_error(broken) from broken
            raise PoolClosed("the connection pool was closed while waiting for a connection")
        entry = core.claim(waiter, self._clock())
        if entry is None and not woken and time.monotonic() >= deadline:
            core.timeouts += 1
            raise PoolTimeout(
                timeout_message(core, timeout, self._clock())
            ) from core.last_create_error
        return entry

    async def _checkout_extras(self, entry: Entry) -> bool:
        """Health check, ping, leak record, hook; False if the entry was discarded.

        A ``BaseException`` (``KeyboardInterrupt``, a cancellation) inside the
        check, the ping or the ``on_acquire`` hook must not strand the
        connection in use: it is closed (its state is unknown) or, from the
        hook, given back, and the exception goes on.
        """
        stage: str | None = "check_failed"
        try:
            reason = "check_failed" if await self._check_fails(entry) else None
            now = self._clock()
            if reason is None and self._ping_due(entry, now):
                stage = "ping_failed"
                try:
                    if await self._hooks.ping(entry.conn) is False:  # type: ignore[misc]
                        reason = "ping_failed"
                except Exception:
                    logger.debug("connection ping raised", exc_info=True)
                    reason = "ping_failed"
            if reason is None:
                stage = None  # the connection passed: an interrupted hook gives it back
                self._checked_out(entry, now)
                return True
        except BaseException:
            self._give_back(entry, stage)
            raise
        self._give_back(entry, reason)
        return False

    async def _check_fails(self, entry: Entry) -> bool:
        """Run the checkout check (``check``, or the connector's); True if it failed."""
        check = self._check
        if check is None:
            return False
        try:
            verdict = check(entry.conn)
            if inspect.isawaitable(verdict):  # async-only
                verdict = await verdict
        except Exception:
            logger.debug("connection check raised", exc_info=True)
            return True
        return verdict is False

    def _rouse_cleaner(self) -> None:
        self._runner.rouse()

    async def _acquire_new(self, timeout: float | None) -> P:
        """A connection opened for this caller (``run()``'s last try), or, at
        ``max_size``, a pooled one as :meth:`acquire` gives.

        The connection is opened by the calling thread or task: the
        connector's own connect timeout bounds it.

        Raises:
            Exception: what ``connector.create()`` raised.
            PoolClosed: the pool was closed meanwhile.
        """
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        core = self._core
        reserved = core.reserve_new()  # locked
        if not reserved:
            return await self.acquire(timeout)
        try:
            conn = await self._connector.create()
        except BaseException as exc:
            core.new_failed(exc)  # locked
            self._flush()
            raise
        now = self._clock()
        entry = core.opened_for_caller(conn, now)  # locked
        if self._opts.on_create is not None:
            call_hook(self._opts.on_create, conn)
        if core.closed:
            self._give_back(entry, "pool_closed")
            raise PoolClosed("the connection pool was closed while opening a connection")
        self._checked_out(entry, now)
        return attach(self._proxy_class, self, entry, self._sole_refs)

    def _count_retry(self) -> None:
        self._core.retries += 1  # locked

    async def run(
        self,
        fn: AsyncRunFn[T],
        *args: Any,
        retry: str = "safe",
        timeout: float | None = None,
    ) -> T:
        """Run ``await fn(conn, *args)`` on a pooled connection, retrying on a bad one.

        database/sql's rule (``_run_async.py`` has it in full): a connection
        found dead before anything was sent costs the caller nothing. The
        checkout's ``check`` replaces it before ``fn`` gets it; ``fn`` raising
        :class:`~poolkit.BadConnection` (dead before the write) runs ``fn``
        again. With ``retry="idempotent"``, any error the connector calls
        broken runs it again too. Two tries on pooled connections, then one on
        a connection opened for the call. An error after the write is never
        retried in the default mode: the statement may have run.

        On success the connection is committed (the connector's ``commit``)
        and given back, as a ``connection()`` block does; the retries count in
        ``stats().retries``.

        Args:
            fn: ``async def fn(conn, *args)``; its result is returned.
            *args: passed to ``fn`` after the connection.
            retry: ``"safe"`` (default: only what was not sent) or
                ``"idempotent"`` (``fn`` may run twice).
            timeout: for each checkout, as for :meth:`acquire`.

        Returns:
            What ``fn`` returned.

        Raises:
            TypeError: ``fn`` is not callable.
            ValueError: ``retry`` is not ``"safe"`` or ``"idempotent"``.
            PoolTimeout, PoolClosed, PoolOverload: from the checkout.
            Exception: ``fn``'s error, when it may not (or can no longer) be retried.
        """
        return await async_run_with_retries(self, fn, args, retry, timeout)

    def connection(self, timeout: float | None = None) -> AsyncLease[P]:
        """A context manager: acquire on entry, release on exit.

        When the block exits normally and the connector has ``commit(conn)``,
        the connection is committed before it is given back; an error from
        ``commit`` propagates (the connection is discarded if the error broke
        it). An exception inside the block never commits: the connection goes
        back (``reset`` rolls back), or is discarded when the connector calls
        the error broken (``is_broken``; by default any ``OSError``) or it is a
        ``BaseException`` such as ``KeyboardInterrupt`` or a cancellation.

        Args:
            timeout: as for :meth:`acquire`.

        Returns:
            The context manager; ``async with pool.connection() as conn:``.
        """
        return AsyncLease(self, timeout)

    # -- release ------------------------------------------------------------

    async def release(self, conn: P) -> None:
        """Give a connection back (reset first, if the connector can).

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
            EventLoopMismatch: called from a loop other than the pool's.
        """
        # _detach() inlined: this is half of every acquire/release cycle. An
        # entry of this pool's core was acquired here (each pool has its own
        # core), so the proxy's _pool is read only off the fast path: every
        # read on a proxy goes through its __getattr__ hook (~40 ns).
        core = self._core
        entry = conn._bound if type(conn) is self._proxy_class else None
        if entry is None or entry.proxy is not None or entry.core is not core:
            if entry is not None and entry.proxy is None and conn._pool is self:
                # Acquired before a fork: the parent's. Forgotten here, never
                # reset, committed or closed (that would end the parent's work).
                entry.proxy = conn
                return
            if asyncio.get_running_loop() is not self._loop:  # async-only
                self._bind()
            self._detach(conn, self._proxy_class)  # raises the precise error
            return
        if asyncio.get_running_loop() is not self._loop:  # async-only
            # Checked first: a refused release must leave the proxy attached.
            self._bind()
        # Detaches the proxy (see _proxy.py) and keeps it for the next lease.
        entry.proxy = conn
        if self._extra_release:
            reset = self._reset_only
            if reset is None:
                self._give_back(entry, await self._release_extras(entry))
                return
            # _release_extras inlined for a reset alone.
            try:
                await reset(entry.conn)
            except Exception:
                logger.debug("connection reset raised", exc_info=True)
                self._give_back(entry, "reset_failed")
                return
            except BaseException:
                # Interrupted mid-reset: the connection's state is unknown.
                self._give_back(entry, "reset_failed")
                raise
        now = self._clock()
        # core.checkin()'s plain give-back inlined, the other half of the
        # cycle: it stays idle (a plain pool of the entry's generation, or
        # one capped by max_idle only with room below it, see
        # PoolCore._set_plain), no waiter to serve, not due to close.
        # entry.out: of two racing releases of one proxy, the second raises
        # in checkin().
        if (  # locked
            (
                entry.generation == core.filing
                or (entry.generation == core.capped_filing and len(core.idle) < core.max_idle)
            )
            and entry.out
            and not core.waiters
            and now < entry.expires_at
        ):
            entry.out = False
            entry.holder = None
            hold = core.hold_time
            if hold is not None:
                seconds = now - entry.acquired_at
                hold.sum += seconds
                if seconds > core.hold_floor:
                    core.long_hold(hold, seconds)
            entry.idle_since = now
            due = now + core.max_idle_time
            if entry.expires_at < due:
                due = entry.expires_at
            entry.due = due
            core.idle.append(entry)
            if due < core.next_wake:
                core.next_wake = due
                core.wake_cleaner = core.dirty = True
            waiter = None
        else:
            waiter = core.checkin(entry, now)
        if waiter is not None:
            waiter.wake()
        if core.dirty or self._dropped_entries:
            self._flush()

    async def discard(self, conn: P, reason: str = "discarded") -> None:
        """Close a connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        self._give_back(self._detach(conn, self._proxy_class), reason)

    async def _release_extras(self, entry: Entry) -> str | None:
        """Reset and ``on_release`` hook; the reason to close the entry, if any."""
        reason = None
        if self._hooks.reset is not None:
            try:
                await self._hooks.reset(entry.conn)
            except Exception:
                logger.debug("connection reset raised", exc_info=True)
                reason = "reset_failed"
            except BaseException:
                # Interrupted mid-reset: the connection's state is unknown, so
                # close it, then let the exception go on.
                self._give_back(entry, "reset_failed")
                raise
        if self._opts.on_release is not None:
            try:
                call_hook(self._opts.on_release, entry.conn)
            except BaseException:
                self._give_back(entry, reason)
                raise
        return reason

    def _give_back(self, entry: Entry, reason: str | None) -> None:
        core = self._core
        if entry.core is not core:
            return  # acquired before a fork: forgotten, never closed
        waiter = core.checkin(entry, self._clock(), reason)  # locked
        if waiter is not None:
            waiter.wake()
        if core.dirty or self._dropped_entries:
            self._flush()

    def _dropped(self, entry: Entry) -> None:
        # Called from a proxy's finalizer, which may run in any thread at any
        # point, even inside this pool's own locked section: so no lock here.
        # list.append is atomic; the next flush closes the connection.
        if entry.core is not self._core:
            return  # the parent's (acquired before a fork): forget it quietly
        self._dropped_entries.append(entry)
        self._runner.dropped(self._flush)
        warn_dropped(entry, self._name)

    # -- the outbox ---------------------------------------------------------

    def _flush(self) -> None:
        """Do what the core decided: close, open, wake; start the cleaner."""
        if self._loop is None:  # async-only
            return  # nothing to do before the first use; the binding flushes
        wakes, to_close, to_create, start_cleaner, rouse = self._take_work()  # locked
        for waiter in wakes:
            waiter.wake()
        # Creations before closes: the core already counts closing
        # connections against max_size, and a BaseException out of a close
        # must not lose planned creations that waiters count on.
        try:
            for _ in range(to_create):
                self._runner.start(self._create_loop, "connect")
            if start_cleaner:
                self._runner.start_cleaner(self, self._clock)
            elif rouse:
                self._runner.rouse()
        finally:
            # Even when a thread could not start ("can't start new thread"):
            # the closes taken from the outbox must happen, or they would
            # count against max_size for ever.
            if to_close:
                self._runner.close_all(to_close, self._close_entry, self._after_closes)

    def _take_work(self) -> tuple[list[Waiter], list[tuple[Entry, str]], int, bool, bool]:
        """Empty the core's outbox: (wakes, closes, creations, start cleaner, rouse it)."""
        core = self._core
        wakes: list[Waiter] = []
        while self._dropped_entries:
            entry = self._dropped_entries.pop()
            if entry.core is core and entry.out:
                waiter = core.checkin(entry, self._clock(), "dropped")
                if waiter is not None:
                    wakes.append(waiter)
        to_close, to_create, to_wake = core.take_outbox()
        wakes += to_wake
        rouse = core.wake_cleaner
        core.wake_cleaner = False
        self._notify_if_drained()
        if self._ready_waits:
            self._runner.notify_drained()  # wait() checks whether min_size is open
        start_cleaner = self._needs_cleaner and not core.closed and self._runner.claim_cleaner()
        return wakes, to_close, to_create, start_cleaner, rouse

    def _drained(self) -> bool:
        core = self._core
        return not (core.in_use_count or core.creating or core.closing)

    def _notify_if_drained(self) -> None:
        if self._core.closed and self._drained():
            self._runner.notify_drained()

    def _after_closes(self) -> None:
        if self._core.dirty or self._dropped_entries:
            self._flush()

    async def _close_entry(self, entry: Entry, reason: str) -> None:
        try:
            if self._opts.on_discard is not None:
                call_hook(self._opts.on_discard, entry.conn, reason)
        finally:
            try:
                await self._connector.close(entry.conn)
            except Exception:
                log(
                    logger,
                    WARNING,
                    self._name,
                    "closing a connection (%s) failed",
                    reason,
                    exc_info=True,
                )
            finally:
                # Only now is its slot free (the server may count it until then).
                self._close_done(entry)  # locked

    def _close_done(self, entry: Entry) -> None:
        entry.core.close_done()
        if entry.core is self._core:
            self._notify_if_drained()

    async def _create_loop(self) -> None:
        core, delay = self._core, CREATE_BACKOFF_INITIAL
        reserved = True  # this creation's slot, until opened or dropped
        give_up_at = self._clock() + (self._opts.reconnect_timeout or math.inf)
        try:
            while True:
                started = time.monotonic()
                try:
                    conn = await self._connector.create()
                except self._runner.background_failures as exc:
                    self._create_failed(exc)
                    # A forked child's pool has a new core: this one is the parent's.
                    retry = core.create_failed(exc) and core is self._core  # locked
                    reserved = retry
                    if not retry:
                        return
                    if self._clock() >= give_up_at:
                        reserved = False
                        core.give_up_create()  # locked
                        await self._reconnect_failed()
                        return
                    sleep, delay = backoff(delay, self._rng)
                    if await self._runner.sleep(sleep):
                        reserved = False
                        core.abandon_create()  # locked
                        return
                    continue
                reserved = False
                if core.last_create_error is not None:
                    self._recovered(core.last_create_error)
                core.opened(conn, self._clock(), time.monotonic() - started)  # locked
                if self._opts.on_create is not None:
                    try:
                        call_hook(self._opts.on_create, conn)
                    except BaseException:
                        # No caller to raise to: the connection is in the pool.
                        log(logger, ERROR, self._name, "on_create hook failed", exc_info=True)
                return
        except BaseException:
            # Cancelled by close() mid-create or mid-backoff: drop the
            # reservation so close() does not wait for it.
            if reserved:
                core.abandon_create()  # locked
            raise
        finally:
            if core is self._core:
                self._flush()

    async def _reconnect_failed(self) -> None:
        """An attempt gave up (``reconnect_timeout``): log it, call ``reconnect_failed``."""
        logger.warning(
            "pool %s: opening a connection kept failing for reconnect_timeout=%s s; "
            "giving up this attempt",
            self._name,
            self._opts.reconnect_timeout,
        )
        hook = self._opts.reconnect_failed
        if hook is None:
            return
        try:
            result = hook(self)  # async-only
            # sync: hook(self)
            if inspect.isawaitable(result):  # async-only
                await result
        except Exception:
            logger.exception("connection pool reconnect_failed hook failed")

    def maintain(self) -> float:
        """Run the cleaner's pass now: retire expired idle connections, top up
        ``min_size``, warn about connections held past ``leak_timeout``.

        The pool's cleaner runs it at each deadline; call it yourself after
        moving a fake clock in tests.

        Returns:
            The clock time of the next deadline (``math.inf``: none).
        """
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        now = self._clock()
        leaked = self._core.maintain(now)  # locked
        self._flush()
        if leaked:
            warn_held(leaked, now, self._name)
        return self._core.next_wake

    # -- management ---------------------------------------------------------

    async def close(self, timeout: float | None = None) -> None:
        """Close the pool: fail waiters, close idle connections, wait for busy ones.

        Busy connections are closed as they come back; this waits up to
        ``timeout`` seconds for them (and for connections being closed), then
        stops what is still running. Idempotent.

        Args:
            timeout: seconds to wait (``None``: 5 s; ``math.inf``: no limit).
        """
        limit = check_timeout(timeout, DEFAULT_CLOSE_TIMEOUT)
        self._core.close()  # locked
        if self._loop is None:  # async-only
            return  # never used: nothing opened, nothing running
        if asyncio.get_running_loop() is not self._loop:  # async-only
            self._bind()
        # Connections being opened are not waited for: their creation stops.
        self._runner.stop()
        self._flush()
        deadline = deadline_after(limit)
        if not await self._runner.wait_drained(self._drained, deadline):
            log(
                logger,
                WARNING,
                self._name,
                "closed with %d connections still in use; they will be closed when returned",
                self._core.in_use_count,
            )
        await self._runner.join(deadline)

    async def __aenter__(self) -> Self:
        self._bind()  # async-only
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
