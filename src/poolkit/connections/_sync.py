"""The threaded driver: :class:`ConnectionPool`.

Every decision is the core's (``_core.py``); this driver holds one short lock
around each core call and does the I/O outside it: opening connections in
creator threads (so a hanging ``create()`` cannot hold a caller past its
timeout), closing them, waking waiters. An uncontended acquisition is a deque
pop under that lock, with no condition wait.

Waiting: a waiter is a pre-acquired ``threading.Lock`` the core hands an entry
to (under the pool lock) before the driver releases it. A waiter that times
out re-takes the pool lock and asks the core to give up; if an entry arrived in
between, the waiter keeps it (it did not time out after all), so nothing is
lost and nothing is handed twice.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from typing import Any, Generic, TypeVar

from poolkit import _fork
from poolkit._errors import PoolClosed, PoolTimeout
from poolkit._waits import deadline_after, join_thread, left_until, slice_of, wait_for
from poolkit.connections._core import Entry, PoolCore, Waiter, broken_error
from poolkit.connections._driver import (
    CREATE_BACKOFF_INITIAL,
    DriverBase,
    backoff,
    call_hook,
    logger,
    run_cleaner,
)
from poolkit.connections._leaks import (
    timeout_message,
    warn_dropped,
    warn_held,
)
from poolkit.connections._lease import Lease
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
from poolkit.connections._protocols import Connector
from poolkit.connections._proxy import PooledConnection, attach, set_entry, set_pool

__all__ = ["ConnectionPool"]

C = TypeVar("C")


def _stop_cleaner(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


class ConnectionPool(DriverBase, Generic[C]):
    """A thread-safe pool of connections made by a :class:`~poolkit.Connector`.

    Args:
        connector: opens and closes connections (see :class:`~poolkit.Connector`).
        min_size: connections opened in the background and kept open.
        max_size: cap on open connections, counting those being created.
        max_idle: cap on idle connections; surplus ones are closed on return
            (default: ``max_size``).
        timeout: default seconds :meth:`acquire` waits; 0 fails at once,
            ``math.inf`` waits without limit. Any size works (waits are sliced).
        max_waiting: cap on queued callers, beyond which :class:`~poolkit.PoolOverload`
            is raised (``None``: no cap; callers are bounded by threads).
        max_lifetime: seconds after which a connection is closed (shortened by up to
            ``lifetime_jitter`` at random); ``None`` or ``math.inf`` keeps them forever.
        lifetime_jitter: fraction of ``max_lifetime`` taken off at random, in [0, 1).
        max_idle_time: seconds idle after which a connection is closed (never
            below ``min_size``); ``None`` or ``math.inf``: never.
        order: ``"lifo"`` reuses the warmest connection (idle surplus ages out);
            ``"fifo"`` rotates through all (spreads load behind a balancer).
        ping_after: ping (``connector.ping``) at checkout a connection idle longer
            than this many seconds; ``None``: never ping.
        leak_timeout: record who acquires each connection and warn
            (:class:`~poolkit.LeakWarning`) when it is held longer than this
            (``None`` or ``math.inf``: never warn).
        clock: monotonic clock in seconds for ages and deadlines (tests pass a fake).
        on_create: ``hook(conn)`` after a connection is opened.
        on_acquire: ``hook(conn)`` after a connection is checked out.
        on_release: ``hook(conn)`` when a connection is given back.
        on_discard: ``hook(conn, reason)`` before a connection is closed.
        name: shown in ``repr()``, thread names, warnings and logs.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range (the message names it).
    """

    def __init__(
        self,
        connector: Connector[C],
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
        _lock: Any = None,
    ) -> None:
        opts = make_options(
            min_size=min_size, max_size=max_size, max_idle=max_idle, timeout=timeout,
            max_waiting=max_waiting, max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter, max_idle_time=max_idle_time, order=order,
            ping_after=ping_after, leak_timeout=leak_timeout, clock=clock,
            on_create=on_create, on_acquire=on_acquire, on_release=on_release,
            on_discard=on_discard, name=name,
        )  # fmt: skip
        self._init_common(connector, opts, is_async=False)
        # PooledConnection, or the connector's subclass (its proxy_class).
        self._proxy_class: type[PooledConnection[Any]] = self._hooks.proxy_class
        self._budget = _budget
        self._keyed = _lock is not None
        self._setup(_lock if _lock is not None else threading.Lock())
        _fork.track(self)
        if not self._keyed:  # a keyed pool's sub-pools have no min_size
            with self._lock:
                self._core._plan_creates()
            self._flush()

    def _setup(self, lock: Any) -> None:
        self._core = PoolCore(self._opts, self._rng, self._budget)
        self._core.owner = self
        self._lock = lock
        self._closed_cond = threading.Condition(lock)
        self._stop = threading.Event()
        self._cleaner_event = threading.Event()
        self._cleaner: threading.Thread | None = None
        self._cleaner_claimed = False
        self._threads: set[threading.Thread] = set()
        self._dropped_entries: list[Entry] = []
        opts = self._opts
        self._needs_cleaner = not self._keyed and (
            opts.max_lifetime is not None
            or opts.max_idle_time is not None
            or opts.leak_timeout is not None
            or opts.min_size > 0
        )

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist here and its lock may have been
        # held at fork time: start over with a fresh core, never touching the
        # parent's connections. Proxies still held point to the old core and
        # are dropped silently on release.
        closed, broken = self._core.closed, self._core.broken
        self._setup(threading.Lock() if not self._keyed else self._lock)
        self._core.closed = closed
        self._core.broken = broken

    # -- acquire ------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> PooledConnection[C]:
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
        """
        if timeout is not None:
            timeout = check_timeout(timeout, self._timeout)
        core, lock = self._core, self._lock
        # acquire()/release() in try/finally, not `with`: the same guarantee,
        # measured ~150 ns cheaper per lock round trip on CPython 3.11.
        lock.acquire()
        try:
            entry = core.checkout(self._clock())
        finally:
            lock.release()
        if entry is None or self._extra_checkout or core.dirty or self._dropped_entries:
            return self._acquire_slow(entry, timeout)
        # attach() inlined: this is half of every acquire/release cycle.
        proxy = self._proxy_class()
        set_pool(proxy, self)
        set_entry(proxy, entry)
        return proxy

    def _acquire_slow(self, entry: Entry | None, timeout: float | None) -> PooledConnection[C]:
        """Acquire's other paths: wait, flush the outbox, run the checkout extras."""
        core = self._core
        deadline: float | None = None
        while True:
            if core.broken is not None:
                if entry is not None:
                    self._give_back(entry, None)
                raise broken_error(core.broken) from core.broken
            if entry is None:
                with self._lock:
                    entry = core.checkout(self._clock())
            if entry is None:
                limit = self._timeout if timeout is None else timeout
                if deadline is None:
                    deadline = deadline_after(limit)
                entry = self._wait(deadline, limit)
            if core.dirty or self._dropped_entries:
                try:
                    self._flush()
                except BaseException:
                    # A close of another connection raised (a KeyboardInterrupt
                    # in connector.close or on_discard): this caller gets the
                    # error, and the connection it was about to get goes back.
                    self._give_back(entry, None)
                    raise
            if not self._extra_checkout or self._checkout_extras(entry):
                return attach(self._proxy_class, self, entry)
            entry = None

    def _wait(self, deadline: float, timeout: float) -> Entry:
        core, lock = self._core, self._lock
        gate = threading.Lock()
        gate.acquire()
        waiter = Waiter(gate.release)
        with self._lock:
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
        start = time.monotonic()
        gave_up = False
        try:
            # Always: even with nothing planned here, queueing may have evicted
            # another key's idle connection, whose close makes the room.
            self._flush()
            while True:
                # One slice at a time: Lock.acquire refuses timeouts past
                # threading.TIMEOUT_MAX (acquire(timeout=1e10)).
                woken = gate.acquire(timeout=slice_of(left_until(deadline)))
                lock.acquire()
                try:
                    if waiter.closed:
                        self._raise_stopped_waiting()
                    # Even on timeout, take a connection that came back just now.
                    entry = core.claim(waiter, self._clock())
                    if entry is not None:
                        return entry
                    if not woken and time.monotonic() >= deadline:
                        core.give_up(waiter)
                        gave_up = True
                        core.timeouts += 1
                        raise PoolTimeout(
                            timeout_message(core, timeout, self._clock())
                        ) from core.last_create_error
                finally:
                    lock.release()
        except BaseException:
            # KeyboardInterrupt in the wait, or the errors above: leave the
            # queue, passing on a wake-up this waiter did not use.
            if not gave_up:
                with self._lock:
                    core.give_up(waiter)
            if core.dirty:
                self._flush()
            raise
        finally:
            # Every queued wait is timed, however it ended (as the async twin).
            with self._lock:
                core.wait_time += time.monotonic() - start

    def _raise_stopped_waiting(self) -> None:
        broken = self._core.broken
        if broken is not None and not self._core.closed:
            raise broken_error(broken) from broken
        raise PoolClosed("the connection pool was closed while waiting for a connection")

    def _checkout_extras(self, entry: Entry) -> bool:
        """Health check, ping, leak record, hook; False if the entry was discarded.

        A ``BaseException`` (``KeyboardInterrupt``) inside the check, the ping
        or the ``on_acquire`` hook must not strand the connection in use: it is
        closed (its state is unknown) or, from the hook, given back, and the
        exception goes on.
        """
        stage: str | None = "check_failed"
        try:
            reason = "check_failed" if self._check_failed(entry) else None
            now = self._clock()
            if reason is None and self._ping_due(entry, now):
                stage = "ping_failed"
                try:
                    if self._hooks.ping(entry.conn) is False:  # type: ignore[misc]
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

    def _rouse_cleaner(self) -> None:
        self._cleaner_event.set()

    def connection(self, timeout: float | None = None) -> Lease[C]:
        """A context manager: acquire on entry, release on exit.

        When the block exits normally and the connector has ``commit(conn)``,
        the connection is committed before it is given back; an error from
        ``commit`` propagates (the connection is discarded if the error broke
        it). An exception inside the block never commits: the connection goes
        back (``reset`` rolls back), or is discarded when the connector calls
        the error broken (``is_broken``; by default any ``OSError``) or it is a
        ``BaseException`` such as ``KeyboardInterrupt``.

        Args:
            timeout: as for :meth:`acquire`.

        Returns:
            The context manager; ``with pool.connection() as conn:``.
        """
        return Lease(self, timeout)

    # -- release ------------------------------------------------------------

    def release(self, conn: PooledConnection[C]) -> None:
        """Give a connection back (reset first, if the connector can).

        Raises:
            ReleaseError: released twice, or not acquired from this pool.
        """
        # _detach() inlined: this is half of every acquire/release cycle.
        entry = conn._entry if type(conn) is self._proxy_class and conn._pool is self else None
        if entry is None:
            self._detach(conn, self._proxy_class)  # raises the precise error
            return
        set_entry(conn, None)
        core, lock = self._core, self._lock
        if entry.core is not core:
            # Acquired before a fork: the parent's. Forgotten here, never
            # reset, committed or closed (that would end the parent's work).
            return
        if self._extra_release:
            self._give_back(entry, self._release_extras(entry))
            return
        lock.acquire()
        try:
            waiter = core.checkin(entry, self._clock())
        finally:
            lock.release()
        if waiter is not None:
            waiter.wake()
        if core.dirty or self._dropped_entries:
            self._flush()

    def discard(self, conn: PooledConnection[C], reason: str = "discarded") -> None:
        """Close a connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: already released, or not acquired from this pool.
        """
        self._give_back(self._detach(conn, self._proxy_class), reason)

    def _release_extras(self, entry: Entry) -> str | None:
        reason = None
        if self._hooks.reset is not None:
            try:
                self._hooks.reset(entry.conn)
            except Exception:
                logger.debug("connection reset raised", exc_info=True)
                reason = "reset_failed"
            except BaseException:
                # Interrupted mid-reset (KeyboardInterrupt): the connection's
                # state is unknown, so close it, then let the exception go on.
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
        with self._lock:
            waiter = core.checkin(entry, self._clock(), reason)
        if waiter is not None:
            waiter.wake()
        self._flush()

    def _dropped(self, entry: Entry) -> None:
        # Called from a proxy's finalizer, which may run in any thread at any
        # point, even inside this pool's own locked section: so no lock here.
        # list.append is atomic; the next flush closes the connection.
        if entry.core is not self._core:
            return  # the parent's (acquired before a fork): forget it quietly
        self._dropped_entries.append(entry)
        self._cleaner_event.set()
        warn_dropped(entry, self._name)

    # -- the outbox ---------------------------------------------------------

    def _flush(self) -> None:
        """Do what the core decided: close, open, wake; start the cleaner."""
        core = self._core
        wakes: list[Waiter] = []
        with self._lock:
            while self._dropped_entries:
                entry = self._dropped_entries.pop()
                if entry.core is core and entry in core.in_use:
                    waiter = core.checkin(entry, self._clock(), "dropped")
                    if waiter is not None:
                        wakes.append(waiter)
            to_close, to_create, to_wake = core.take_outbox()
            rouse = core.wake_cleaner
            core.wake_cleaner = False
            if core.closed:
                self._closed_cond.notify_all()
            # Claimed under the lock: flushes run in several threads at once
            # (the caller, a connect thread, the cleaner), and each seeing
            # "no cleaner yet" would start one of its own.
            start_cleaner = self._needs_cleaner and not self._cleaner_claimed and not core.closed
            self._cleaner_claimed = self._cleaner_claimed or start_cleaner
        for waiter in wakes:
            waiter.wake()
        for waiter in to_wake:
            waiter.wake()
        # Creations before closes: the core already counts closing
        # connections against max_size, and a BaseException out of a close
        # must not lose planned creations that waiters count on.
        try:
            for _ in range(to_create):
                self._start_thread(self._create_loop, "connect")
            if start_cleaner:
                body = functools.partial(
                    run_cleaner, weakref.ref(self), self._stop, self._cleaner_event, self._clock
                )
                self._cleaner = self._start_thread(body, "cleaner")
                # Dropped without close(): stop the cleaner when the pool is collected.
                weakref.finalize(self, _stop_cleaner, self._stop, self._cleaner_event)
            elif rouse:
                self._cleaner_event.set()
        finally:
            # Even when a thread could not start ("can't start new thread"):
            # the closes taken from the outbox must happen, or they would
            # count against max_size for ever.
            if to_close:
                try:
                    self._close_all(to_close)
                finally:
                    # Each close freed a slot: a waiter or min_size may take it now.
                    self._after_closes()

    def _after_closes(self) -> None:
        if self._core.dirty or self._dropped_entries:
            self._flush()

    def _close_all(self, to_close: list[tuple[Entry, str]]) -> None:
        """Close each entry; the first ``BaseException`` is re-raised after all are closed."""
        error: BaseException | None = None
        for entry, reason in to_close:
            try:
                self._close_entry(entry, reason)
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def _close_entry(self, entry: Entry, reason: str) -> None:
        try:
            if self._opts.on_discard is not None:
                call_hook(self._opts.on_discard, entry.conn, reason)
        finally:
            try:
                self._connector.close(entry.conn)
            except Exception:
                logger.warning("closing a connection (%s) failed", reason, exc_info=True)
            finally:
                # Only now is its slot free (the server may count it until then).
                with self._lock:
                    entry.core.close_done()
                    if entry.core.closed:
                        self._closed_cond.notify_all()

    def _start_thread(self, target: Any, role: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"poolkit-{role}-{self._name}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _create_loop(self) -> None:
        core, delay = self._core, CREATE_BACKOFF_INITIAL
        try:
            while True:
                try:
                    conn = self._connector.create()
                except BaseException as exc:
                    # BaseExceptions too: this thread has no caller to raise
                    # to, and a dead creator would leave its waiter stranded.
                    logger.warning("opening a connection failed: %r", exc)
                    with self._lock:
                        retry = core.create_failed(exc) and core is self._core
                    if not retry:
                        break
                    sleep, delay = backoff(delay, self._rng)
                    if self._stop.wait(sleep):
                        with self._lock:
                            core.abandon_create()
                        break
                    continue
                with self._lock:
                    core.opened(conn, self._clock())
                if self._opts.on_create is not None:
                    try:
                        call_hook(self._opts.on_create, conn)
                    except BaseException:
                        logger.exception("connection pool on_create hook failed")
                break
            if core is self._core:
                self._flush()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def maintain(self) -> float:
        """Run the cleaner's pass now: retire expired idle connections, top up
        ``min_size``, warn about connections held past ``leak_timeout``.

        The pool's cleaner thread runs it at each deadline; call it yourself
        after moving a fake clock in tests.

        Returns:
            The clock time of the next deadline (``math.inf``: none).
        """
        with self._lock:
            now = self._clock()
            leaked = self._core.maintain(now)
            next_wake = self._core.next_wake
        self._flush()
        if leaked:
            warn_held(leaked, now, self._name)
        return next_wake

    # -- management ---------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Close the pool: fail waiters, close idle connections, wait for busy ones.

        Busy connections are closed as they come back; this waits up to
        ``timeout`` seconds for them (and for connections being opened or
        closed). Idempotent.

        Args:
            timeout: seconds to wait (``None``: 5 s; ``math.inf``: no limit).
        """
        limit = check_timeout(timeout, DEFAULT_CLOSE_TIMEOUT)
        with self._lock:
            self._core.close()
        self._stop.set()
        self._cleaner_event.set()
        self._flush()
        deadline = deadline_after(limit)
        with self._closed_cond:
            core = self._core
            if not wait_for(
                self._closed_cond,
                lambda: not (core.in_use or core.creating or core.closing),
                deadline,
            ):
                logger.warning(
                    "pool %s closed with %d connections still in use; they will be "
                    "closed when returned",
                    self._name,
                    len(core.in_use),
                )
            threads = list(self._threads)
        for thread in threads:
            # A thread registered but not started yet has nothing to wait for.
            if thread is not threading.current_thread() and thread.ident is not None:
                join_thread(thread, left_until(deadline))

    def __enter__(self) -> ConnectionPool[C]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
