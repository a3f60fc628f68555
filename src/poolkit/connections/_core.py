"""The sans-io core of the connection pools: every decision, no I/O, no waiting.

Both drivers (threads in ``_sync.py``, asyncio in ``_async.py``) and the keyed
pools call this core; it never opens, checks or closes a connection, never
sleeps and never takes a lock. It decides, and leaves what must be done in an
outbox the driver empties after each call: connections to close (with the
reason), how many connections to open, waiters to wake.

Invariants (checked by the state-machine test):

- ``size = len(idle) + in_use_count + creating + closing <= max_size`` at all
  times (unless ``resize()`` just lowered ``max_size``): a connection being
  created counts, so concurrent dials cannot overshoot (database/sql
  ``numOpen``, net/http ``MaxConnsPerHost``), and so does one being closed,
  until the driver reports that its ``close()`` returned (:meth:`close_done`):
  a server with a ``max_connections`` budget still counts it until then.
- ``min_size`` counts only live connections (idle, in use, being created):
  one on its way out does not keep the pool from topping up, once its slot
  is free.
- An entry is in exactly one place: ``idle``, in use (``Entry.out``), or the
  close outbox (then ``closing`` until the driver reports the close done).
  ``entries`` holds the first two: every open connection not retired.
- Waiters are woken first come, first served, one per connection that comes
  back: the core marks the first waiter not yet woken (``notified``) and the
  driver wakes it; the woken waiter then takes an idle connection itself. A
  waiter that gives up (timeout, cancellation) after being woken passes the
  wake-up to the next waiter, so a connection never sits idle while someone
  waits for it.
- A caller that finds an idle connection takes it even while waiters are being
  woken. Handing connections straight to sleeping waiters (psycopg_pool,
  net/http) would be stricter, but under the GIL it turns every release into a
  context switch once a queue forms (a lock convoy: measured 17 µs a cycle
  against 2 µs here with 8 threads on 4 connections). Waiters still get
  connections in arrival order among themselves.
- Until a waiter starves: once the first waiter has waited ``HANDOFF_AFTER``
  (1 ms, as Go's ``sync.Mutex`` switches to its starvation mode), a connection
  that comes back is handed to it directly (``Waiter.entry``) instead of being
  left idle for whoever runs first. Without this, callers that keep releasing
  and re-acquiring on a busy pool take every connection ahead of a woken
  waiter, which then times out while connections cycle (measured: 36 of 40
  queued callers timed out, 8 threads on 4 connections, 4 ms holds, 0.1 s
  timeout). A waiter that gives up after a hand-off gives the connection back.

The driver calls every method under its lock (sync) or from its event loop
thread (asyncio), so the core itself has no synchronisation.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from poolkit._errors import PoolBroken, PoolClosed, PoolOverload, ReleaseError
from poolkit._histogram import FIRST_BOUND, Histogram, Recorder
from poolkit.connections._options import PoolOptions
from poolkit.connections._stats import CLOSE_REASONS, ConnectionPoolStats

__all__ = ["Entry", "PoolCore", "Waiter", "broken_error"]

INF = math.inf
# Seconds (on the pool's clock) the first waiter may wait before connections
# that come back are handed to it rather than left for whoever runs first.
HANDOFF_AFTER = 0.001


def broken_error(cause: BaseException) -> PoolBroken:
    """The error a broken pool raises (chain it from ``cause``)."""
    return PoolBroken(
        f"the connection pool is broken: its cleaner died of {cause!r}, so idle "
        "expiry, leak warnings and min_size top-up stopped; close it and create a new pool"
    )


class Entry:
    """One open connection and the pool's bookkeeping about it."""

    __slots__ = (
        "acquired_at",
        "conn",
        "core",
        "created_at",
        "due",
        "expires_at",
        "generation",
        "holder",
        "idle_since",
        "leak_reported",
        "out",
        "proxy",
    )

    def __init__(self, core: PoolCore, conn: Any, now: float, expires_at: float) -> None:
        self.core = core
        self.conn = conn
        self.created_at = now
        self.expires_at = expires_at
        # The earlier of expires_at and the idle deadline, set when it goes idle.
        self.due = expires_at
        self.idle_since = now
        self.acquired_at = now
        self.generation = core.generation
        # The holder's record (poolkit.connections._leaks.Holder) when leak
        # tracking is on; None otherwise.
        self.holder: Any = None
        self.leak_reported = False
        # Checked out (in use): a flag rather than a set of the entries in
        # use, whose add and remove cost a tenth of an uncontended cycle.
        self.out = True
        # The driver's: None while a proxy holds the connection; once given
        # back, the proxy it came back through, detached by this very store
        # and kept for the next lease to reuse (poolkit.connections._proxy).
        self.proxy: Any = None

    def __repr__(self) -> str:
        return f"<Entry {self.conn!r}>"


class Waiter:
    """A queued acquisition; the driver's ``wake`` callback rouses it.

    ``notified`` is set when the core has woken it for a returned connection;
    ``entry`` when the core handed it a connection directly (it starved, see
    the module docstring); ``closed`` when the pool closed (or broke, see
    :attr:`PoolCore.broken`) under it. ``since`` is when it started waiting,
    on the pool's clock.
    """

    __slots__ = ("closed", "entry", "notified", "since", "wake")

    def __init__(self, wake: Callable[[], object], since: float = 0.0) -> None:
        self.notified = False
        self.closed = False
        self.entry: Entry | None = None
        self.since = since
        self.wake = wake


class PoolCore:
    """Limits, waiters, lifetimes, idle ordering, counters: the pool's decisions.

    Args:
        options: the validated pool options.
        rng: randomness for lifetime jitter (tests pass a seeded one).
        budget: the global caps shared with the other keys of a keyed pool.
    """

    # Slots: the drivers read and write a core's attributes on every acquire
    # and release, and an instance dict of this many keys is not shared
    # (CPython 3.11+ shares up to 29), which makes each of those accesses
    # and method calls slower.
    __slots__ = (
        "acquire_wait",
        "acquired",
        "broken",
        "budget",
        "capped_filing",
        "closed",
        "closed_by_reason",
        "closing",
        "create_errors",
        "create_time",
        "created",
        "creating",
        "dirty",
        "entries",
        "filing",
        "generation",
        "hold_floor",
        "hold_time",
        "holds_carried",
        "idle",
        "jitter",
        "last_create_error",
        "leak_timeout",
        "lifo",
        "max_idle",
        "max_idle_time",
        "max_lifetime",
        "max_size",
        "max_waiting",
        "min_size",
        "name",
        "next_wake",
        "overloads",
        "owner",
        "reconnects_failed",
        "refill_held",
        "retries",
        "rng",
        "shrunk",
        "take",
        "timeouts",
        "timings",
        "to_close",
        "to_create",
        "to_wake",
        "wait_time",
        "waited",
        "waited_for_create",
        "waiters",
        "wake_cleaner",
    )

    def __init__(
        self, options: PoolOptions, rng: random.Random | None = None, budget: Any = None
    ) -> None:
        self.name = options.name
        self.timings = options.timings
        self.min_size = options.min_size
        self.max_size = options.max_size
        self.max_idle = options.max_idle
        self.max_waiting = options.max_waiting
        self.max_lifetime = INF if options.max_lifetime is None else options.max_lifetime
        self.jitter = options.lifetime_jitter
        self.max_idle_time = INF if options.max_idle_time is None else options.max_idle_time
        self.lifo = options.order == "lifo"
        self.leak_timeout = options.leak_timeout
        self.rng = rng if rng is not None else random.Random()
        self.budget = budget
        self.owner: Any = None  # the driver, for keyed pools' cross-key closes
        self.idle: deque[Entry] = deque()
        # Takes the next idle connection to hand out: most recently returned
        # first (LIFO) or oldest first (FIFO). The deque object is never
        # replaced, so the bound method stays valid. The drivers inline
        # checkout()'s common case with it (see checkout_due()).
        self.take = self.idle.pop if self.lifo else self.idle.popleft
        # Every open connection not retired: idle (in ``idle`` as well) or in
        # use (``Entry.out``). Changes only when one opens or retires.
        self.entries: set[Entry] = set()
        self.creating = 0
        # Retired connections whose close() has not returned yet: they still
        # hold their slot (see close_done()).
        self.closing = 0
        self.waiters: deque[Waiter] = deque()
        self.closed = False
        # Why the pool can no longer serve (its cleaner died), or None.
        self.broken: BaseException | None = None
        self.generation = 0
        # Set by resize() when max_size fell below the size: returns close
        # surplus connections until the pool fits again.
        self.shrunk = False
        self._set_plain()
        # Outbox, emptied by the driver through take_outbox().
        self.dirty = False
        self.to_close: list[tuple[Entry, str]] = []
        self.to_create = 0
        self.to_wake: list[Waiter] = []
        # When the cleaner will next wake by itself; an earlier deadline sets
        # wake_cleaner so the driver rouses it.
        self.next_wake = INF
        self.wake_cleaner = False
        self.last_create_error: BaseException | None = None
        # Set when a connection attempt gave up (reconnect_timeout): min_size
        # is not topped up again until the cleaner's next pass or a connection
        # opens, so a dead server is not dialled without pause. Waiters still
        # get attempts of their own.
        self.refill_held = False
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.acquired = 0
        self.waited = 0
        self.waited_for_create = 0
        self.wait_time = 0.0
        self.timeouts = 0
        self.overloads = 0
        self.created = 0
        self.create_errors = 0
        self.reconnects_failed = 0
        self.retries = 0
        self.closed_by_reason = dict.fromkeys(CLOSE_REASONS, 0)
        # Durations (None with timings=False). Acquisitions that found an idle
        # connection are not timed (they waited 0 s): stats() adds them as
        # zeros, so the fast path pays nothing for acquire_wait.
        timings = self.timings
        self.acquire_wait = Recorder() if timings else None
        self.hold_time = Recorder() if timings else None
        self.create_time = Recorder() if timings else None
        # Holds of the first bucket are not counted one by one either: every
        # checkout comes back once (with a hold time), so stats() works their
        # number out from the checkouts (see _timings). These are the
        # connections out now, whose holds end after the reset, uncounted by it.
        self.holds_carried = self.in_use_count
        # A hold at most this long changes neither the longest hold nor a
        # bucket of its own: min(FIRST_BOUND, hold_time.max), see checkin().
        self.hold_floor = 0.0

    @property
    def in_use_count(self) -> int:
        """Connections checked out."""
        return len(self.entries) - len(self.idle)

    @property
    def in_use(self) -> set[Entry]:
        """The entries checked out (a new set: the cleaner, leak reports and stats)."""
        return {entry for entry in self.entries if entry.out}

    @property
    def size(self) -> int:
        """Connections the server may see: open, being created, being closed."""
        return len(self.entries) + self.creating + self.closing

    @property
    def live(self) -> int:
        """Connections that stay: idle, in use, being created (what ``min_size`` counts)."""
        return len(self.entries) + self.creating

    # -- checkout ---------------------------------------------------------

    def checkout(self, now: float) -> Entry | None:
        """Take an idle connection (LIFO or FIFO), retiring expired ones on the way.

        Returns:
            The entry, now in use, or None when no idle connection is left.
        """
        idle, take = self.idle, self.take
        while idle:
            entry = take()
            # The wall-clock check at checkout (net/http): a machine resuming
            # from suspend must not reuse a connection the cleaner had no
            # chance to retire. One comparison against the entry's earliest
            # deadline on the hot path; the reason is worked out only past it.
            if now >= entry.due:
                if now >= entry.expires_at:
                    self._retire(entry, "lifetime")
                    continue
                # Only above min_size (live counts this entry): a connection
                # kept for min_size past its idle deadline waits for its lifetime.
                if self.live > self.min_size:
                    self._retire(entry, "idle_time")
                    continue
            entry.acquired_at = now
            entry.out = True
            self.acquired += 1
            return entry
        return None

    def checkout_due(self, entry: Entry, now: float) -> Entry | None:
        """:meth:`checkout` for a driver whose inlined common case took ``entry``
        (the next idle connection, ``take()``) and found it due.

        The entry goes back where ``take()`` found it, and checkout decides.
        """
        (self.idle.append if self.lifo else self.idle.appendleft)(entry)
        return self.checkout(now)

    def add_waiter(self, waiter: Waiter) -> None:
        """Queue ``waiter`` and plan the connections it needs.

        A waiter that a planned or running creation will serve counts in
        ``waited_for_create``; one that must wait for a connection to come
        back, the pool being at its limit, in ``waited`` (database/sql
        ``WaitCount``).

        Raises:
            PoolClosed: the pool is closed.
            PoolBroken: the pool is broken (:attr:`broken` is the cause).
            PoolOverload: ``max_waiting`` waiters are already queued.
        """
        if self.closed:
            raise PoolClosed("the connection pool is closed; create a new pool")
        if self.broken is not None:
            raise broken_error(self.broken) from self.broken
        if self.max_waiting is not None and len(self.waiters) >= self.max_waiting:
            self.overloads += 1
            raise PoolOverload(
                f"{len(self.waiters)} callers are already waiting for a connection "
                f"(max_waiting={self.max_waiting}); raise max_waiting or max_size, "
                "or shed load upstream"
            )
        self.waiters.append(waiter)
        self._plan_creates(for_waiters=True)
        # Waiters are served in order: this one (the last) is covered by a
        # creation when there are at least as many coming as waiting.
        if len(self.waiters) <= self.creating + len(self.idle):
            self.waited_for_create += 1
        else:
            self.waited += 1

    def claim(self, waiter: Waiter, now: float) -> Entry | None:
        """A woken ``waiter`` takes an idle connection, leaving the queue if it got one.

        Returns:
            The entry (handed to it, or idle), or None (someone took it
            first): the waiter waits on, still at its place in the queue.
        """
        entry = waiter.entry
        if entry is not None:
            waiter.entry = None
            return entry  # handed over: already in use, the waiter already out of the queue
        entry = self.checkout(now)
        if entry is not None:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
        else:
            waiter.notified = False
        return entry

    def give_up(self, waiter: Waiter) -> None:
        """``waiter`` stops waiting (timeout, cancellation).

        A wake-up it received and did not use moves on to the next waiter; a
        connection handed to it goes back as if released (to the next waiter,
        idle, or closed when the pool was drained or closed meanwhile).
        """
        entry = waiter.entry
        if entry is not None:
            waiter.entry = None
            self.acquired -= 1  # it never reached the caller
            nxt = self.checkin(entry, entry.acquired_at, held=False)
            if nxt is not None:
                self.to_wake.append(nxt)
            self.dirty = True
            return
        # Absent when close() already failed it.
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)
        if waiter.notified and self.idle:
            nxt = self._notify_next()
            if nxt is not None:
                self.to_wake.append(nxt)
                self.dirty = True

    def _notify_next(self) -> Waiter | None:
        for waiter in self.waiters:
            if not waiter.notified:
                waiter.notified = True
                return waiter
        return None

    # -- return -------------------------------------------------------------

    def checkin(
        self, entry: Entry, now: float, reason: str | None = None, held: bool = True
    ) -> Waiter | None:
        """Take ``entry`` back; close it if ``reason`` is given or it is due.

        ``held=False``: no caller ever held it (a hand-off its waiter gave
        up), so no hold time is recorded.

        Returns:
            A waiter to wake (the first one not woken yet), if any.
        """
        if not entry.out or entry.core is not self:
            raise ReleaseError(
                "this connection is not checked out of this pool (released twice?); "
                "release each acquired connection exactly once"
            )
        entry.out = False
        entry.holder = None
        hold = self.hold_time
        if hold is not None and held:
            # Recorder.record(), cheaper: a hold in the first bucket is not
            # counted here (stats() counts those from the checkouts, see
            # _reset_counters), so one that is no longer than hold_floor, all
            # a busy fast path sees, costs a sum and a compare.
            seconds = now - entry.acquired_at
            hold.sum += seconds
            if seconds > self.hold_floor:
                self.long_hold(hold, seconds)
        expires = entry.expires_at
        if (
            reason is None
            and (
                entry.generation == self.filing  # plain, and of this generation
                or (entry.generation == self.capped_filing and len(self.idle) < self.max_idle)
            )
            and not self.waiters
            and now < expires
        ):
            # The common give-back: filed idle, no cap to check or room below
            # max_idle (see _set_plain), no waiter to serve, not due to close.
            entry.idle_since = now
            due = now + self.max_idle_time
            if expires < due:
                due = expires
            entry.due = due
            self.idle.append(entry)
            if due < self.next_wake:
                self.next_wake = due
                self.wake_cleaner = self.dirty = True
            return None
        if reason is None:
            # close() and drain() bump the generation, so one test covers both.
            if entry.generation != self.generation:
                reason = "pool_closed" if self.closed else "drained"
            elif now >= expires:
                reason = "lifetime"
            elif self.shrunk:
                # Do the others (live counts this entry) already fill the
                # max_size that resize() lowered? Connections being closed
                # are on their way out and do not count here; the pool is
                # back within its limit once they are gone too.
                if self.live - 1 >= self.max_size:
                    reason = "resized"
                elif self.size - 1 < self.max_size:
                    self.shrunk = False
                    self._set_plain()
        if reason is not None:
            self._retire(entry, reason)
            return None
        entry.idle_since = now
        due = now + self.max_idle_time
        if expires < due:
            due = expires
        entry.due = due
        if self.waiters:
            first = self.waiters[0]
            if now - first.since >= HANDOFF_AFTER:
                # It starved: hand it this connection (see the module docstring).
                self.waiters.popleft()
                if first.notified and self.idle:
                    # It was woken for an idle connection it will not take
                    # now: that wake-up goes to the next waiter.
                    nxt = self._notify_next()
                    if nxt is not None:
                        self.to_wake.append(nxt)
                        self.dirty = True
                first.entry = entry
                first.notified = True
                entry.acquired_at = now
                entry.out = True
                self.acquired += 1
                return first
            self.idle.append(entry)
            return self._notify_next()
        if len(self.idle) >= self.max_idle:
            self._retire(entry, "max_idle")
            return None
        if self.budget is not None and self.budget.place_idle(self, now):
            self._retire(entry, "evicted")
            return None
        self.idle.append(entry)
        if due < self.next_wake:
            self.next_wake = due
            self.wake_cleaner = self.dirty = True
        return None

    def _set_plain(self) -> None:
        """Work out :attr:`filing` and ``capped_filing``, the tests of the plain give-back.

        ``entry.generation == filing`` holds when the pool is :attr:`plain`
        and the entry is of the current generation; -1 when the pool is not
        plain (no entry's). ``capped_filing`` is the same for a pool that is
        not plain only because ``max_idle`` is below ``max_size`` (QueuePool's
        ``pool_size`` with overflow): its give-back is plain while fewer than
        ``max_idle`` connections are idle. Called wherever the generation, or
        one of the conditions of :attr:`plain`, changes.
        """
        uncapped = not self.shrunk and self.budget is None
        plain = uncapped and self.max_idle >= self.max_size
        self.filing = self.generation if plain else -1
        self.capped_filing = self.generation if uncapped and not plain else -1

    @property
    def plain(self) -> bool:
        """Whether a give-back can skip the idle caps.

        True when no cap can refuse a connection coming back: ``max_idle`` is
        at least ``max_size`` (a returning connection was counted in the size,
        so the idle ones are fewer than ``max_size``), the pool is not above
        a lowered ``max_size`` and no keyed pool's budget applies.
        """
        return self.filing >= 0

    def long_hold(self, hold: Recorder, seconds: float) -> None:
        """Record a hold longer than :attr:`hold_floor`: its bucket, the maximum."""
        if seconds > FIRST_BOUND:
            hold.record_bucket(seconds)
        if seconds > hold.max:
            hold.max = seconds
            self.hold_floor = min(seconds, FIRST_BOUND)

    # -- creation -----------------------------------------------------------

    def _room(self, for_waiters: bool) -> bool:
        if self.size >= self.max_size:
            return False
        budget = self.budget
        return budget is None or budget.room(self, for_waiters)

    def _plan_creates(self, for_waiters: bool = False) -> None:
        if self.closed:
            return
        floor = 0 if self.refill_held else self.min_size - self.live
        want = max(len(self.waiters) - self.creating - len(self.idle), floor)
        planned = 0
        while planned < want and self._room(for_waiters or bool(self.waiters)):
            self.creating += 1
            if self.budget is not None:
                self.budget.total += 1
            planned += 1
        if planned:
            self.to_create += planned
            self.dirty = True

    def opened(self, conn: Any, now: float, seconds: float | None = None) -> Entry:
        """A planned connection opened: hand it to the first waiter or keep it idle.

        ``seconds``: how long ``create()`` took (recorded in ``create_time``).

        Returns:
            Its entry (for the driver's ``on_create`` hook).
        """
        entry = self._new_entry(conn, now)  # in use: checkin() takes it from there
        # A creation still in flight when close() ran finishes with the new
        # generation: without this it would land idle in a closed pool and be
        # handed out by a racing acquire.
        if seconds is not None and self.create_time is not None:
            self.create_time.record(seconds)
        # Filed through checkin(), but nobody held it: no hold time.
        hold, self.hold_time = self.hold_time, None
        try:
            waiter = self.checkin(entry, now, "pool_closed" if self.closed else None)
        finally:
            self.hold_time = hold
        if waiter is not None:
            self.to_wake.append(waiter)
            self.dirty = True
        return entry

    def _new_entry(self, conn: Any, now: float) -> Entry:
        """A reserved creation opened: its entry, in use."""
        self.creating -= 1
        self.created += 1
        self.last_create_error = None
        self.refill_held = False  # the server is reachable again
        life = self.max_lifetime * (1.0 - self.jitter * self.rng.random())
        entry = Entry(self, conn, now, now + life)
        self.entries.add(entry)
        return entry

    def reserve_new(self) -> bool:
        """Reserve a slot for a connection opened for one caller, idle ones aside.

        database/sql's ``alwaysNewConn``: the last try of ``run()`` after
        pooled connections failed takes a brand-new connection. Only below
        ``max_size``; at the limit the caller takes a pooled one as usual
        (database/sql then waits for a returned connection too).

        Returns:
            True when reserved: the driver opens the connection, then calls
            :meth:`opened_for_caller`, or :meth:`abandon_create` if it failed.
        """
        if self.closed or self.broken is not None or not self._room(True):
            return False
        self.creating += 1
        if self.budget is not None:
            self.budget.total += 1
        return True

    def opened_for_caller(self, conn: Any, now: float) -> Entry:
        """The connection reserved by :meth:`reserve_new` opened: it is checked out."""
        entry = self._new_entry(conn, now)
        entry.acquired_at = now
        self.acquired += 1
        return entry

    def new_failed(self, exc: BaseException) -> None:
        """The connection reserved by :meth:`reserve_new` failed to open."""
        self.create_errors += 1
        self.last_create_error = exc
        self.abandon_create()

    def create_failed(self, exc: BaseException) -> bool:
        """A planned connection failed to open.

        Returns:
            True when it is still needed: the caller keeps the reservation and
            retries after a backoff. False: the reservation is dropped.
        """
        self.create_errors += 1
        self.last_create_error = exc
        still_needed = (
            len(self.waiters) >= self.creating + len(self.idle) or self.live <= self.min_size
        )
        if still_needed and not self.closed:
            return True
        self.creating -= 1
        self._slot_freed()
        return False

    # -- retirement ---------------------------------------------------------

    def _retire(self, entry: Entry, reason: str) -> None:
        # The slot stays taken until close_done(): freeing it now would let
        # a creation start while the server still counts this connection.
        self.entries.remove(entry)
        self.closed_by_reason[reason] += 1
        self.closing += 1
        if self.budget is not None:
            self.budget.closing += 1
        self.to_close.append((entry, reason))
        self.dirty = True

    def close_done(self) -> None:
        """The driver's ``close()`` of a retired connection returned (or failed).

        Its slot is free from now on: a waiter or ``min_size`` may use it.
        """
        self.closing -= 1
        if self.budget is not None:
            self.budget.closing -= 1
        if self.shrunk and self.size <= self.max_size:
            self.shrunk = False
            self._set_plain()
        self._slot_freed()

    def _slot_freed(self) -> None:
        if self.budget is not None:
            self.budget.slot_freed(self)
        elif self.waiters or self.min_size:
            self._plan_creates()

    def evict_oldest_idle(self) -> float:
        """Retire this key's least recently used idle connection (keyed pools).

        Returns:
            When it was last used.
        """
        entry = self.idle.popleft()
        self._retire(entry, "evicted")
        return entry.idle_since

    def drain(self) -> None:
        """Close every idle connection now, and every busy one when it comes back."""
        self.generation += 1
        self._set_plain()
        while self.idle:
            self._retire(self.idle.popleft(), "drained")

    def resize(self, min_size: int, max_size: int) -> None:
        """Change the limits; surplus idle connections close now, busy ones on return."""
        self.shrunk = max_size < self.size
        self.min_size = min_size
        self.max_size = max_size
        self.max_idle = max(min(self.max_idle, max_size), min_size)
        self._set_plain()
        while self.idle and self.live > max_size:
            self._retire(self.idle.popleft(), "resized")
        self._plan_creates()

    def close(self) -> None:
        """Fail every waiter, close idle connections; busy ones close on return."""
        self.closed = True
        self.generation += 1
        self._set_plain()
        while self.waiters:
            waiter = self.waiters.popleft()
            waiter.closed = True
            self.to_wake.append(waiter)
        while self.idle:
            self._retire(self.idle.popleft(), "pool_closed")
        self.dirty = True

    def break_(self, cause: BaseException) -> None:
        """The pool can no longer serve (its cleaner died of ``cause``): fail every waiter.

        Connections in use can still come back and idle ones close as usual;
        the driver refuses new acquisitions with :class:`~poolkit.PoolBroken`.
        """
        if self.broken is None:
            self.broken = cause
        while self.waiters:
            waiter = self.waiters.popleft()
            waiter.closed = True
            self.to_wake.append(waiter)
        self.dirty = True

    def give_up_create(self) -> None:
        """A creator kept failing for ``reconnect_timeout``: it stops, freeing its slot.

        ``min_size`` is not topped up again before the cleaner's next pass
        (:meth:`maintain`); a waiter that needs a connection starts a new
        attempt at once.
        """
        self.reconnects_failed += 1
        self.refill_held = True
        self.abandon_create()

    def abandon_create(self) -> None:
        """A creator kept its reservation for a retry, then gave up (pool closing)."""
        self.creating -= 1
        self._slot_freed()

    # -- cleaner ------------------------------------------------------------

    def maintain(self, now: float) -> list[Entry]:
        """Retire idle connections past their deadlines, top up ``min_size``.

        Sets :attr:`next_wake` to the next deadline (idle time, lifetime or
        leak) so the cleaner sleeps exactly until then.

        Returns:
            Busy entries held longer than ``leak_timeout``, each reported once.
        """
        keep: deque[Entry] = deque()
        next_due = INF
        # Oldest first, so the connections kept for min_size are the newest.
        # Decide on the whole list before retiring any: _retire plans new
        # connections from the pool's size, which must be final by then.
        total = self.live
        doomed: list[tuple[Entry, str]] = []
        for entry in self.idle:
            idle_due = entry.idle_since + self.max_idle_time
            if now >= entry.expires_at:
                doomed.append((entry, "lifetime"))
                total -= 1
            elif now >= idle_due and total > self.min_size:
                doomed.append((entry, "idle_time"))
                total -= 1
            else:
                keep.append(entry)
                # A connection kept for min_size past its idle deadline only
                # waits for its lifetime: counting the past deadline would spin.
                next_due = min(next_due, entry.expires_at, idle_due if idle_due > now else INF)
        self.idle.clear()
        self.idle.extend(keep)
        for entry, reason in doomed:
            self._retire(entry, reason)
        leaked: list[Entry] = []
        in_use = self.in_use
        if self.leak_timeout is not None:
            for entry in in_use:
                if entry.leak_reported or entry.holder is None:
                    continue
                due = entry.acquired_at + self.leak_timeout
                if now >= due:
                    entry.leak_reported = True
                    leaked.append(entry)
                else:
                    next_due = min(next_due, due)
        # A busy connection comes back with an idle deadline of at least
        # now + max_idle_time (or its lifetime). Planning for that bound keeps
        # checkins from rousing the cleaner: a pass that found every connection
        # busy would otherwise plan "no deadline", the next checkin would wake
        # it again, and under load the two would ping-pong on every cycle.
        if in_use:
            bound = now + self.max_idle_time
            for entry in in_use:
                if now < entry.expires_at < bound:
                    bound = entry.expires_at
            next_due = min(next_due, bound)
        self.refill_held = False
        self._plan_creates()
        self.next_wake = next_due
        return leaked

    # -- outbox and stats ---------------------------------------------------

    def take_outbox(self) -> tuple[list[tuple[Entry, str]], int, list[Waiter]]:
        """What the driver must do now: (entries to close, connections to open, waiters to wake)."""
        out = (self.to_close, self.to_create, self.to_wake)
        self.to_close = []
        self.to_create = 0
        self.to_wake = []
        self.dirty = False
        return out

    def end_wait(self, seconds: float, served: bool) -> None:
        """A queued acquisition stopped waiting after ``seconds``; ``served``: it got one."""
        self.wait_time += seconds
        if served and self.acquire_wait is not None:
            self.acquire_wait.record(seconds)

    def _timings(self) -> dict[str, Histogram | None]:
        if self.acquire_wait is None or self.hold_time is None or self.create_time is None:
            return {"acquire_wait": None, "hold_time": None, "create_time": None}
        # Checkouts that never queued waited 0 s.
        zeros = self.acquired - self.acquire_wait.count
        # Every checkout comes back once, with its hold time: those not in a
        # bucket of their own were in the first one (see checkin()).
        holds = self.acquired - self.in_use_count + self.holds_carried
        return {
            "acquire_wait": self.acquire_wait.snapshot(zeros),
            "hold_time": self.hold_time.snapshot(holds - self.hold_time.count),
            "create_time": self.create_time.snapshot(),
        }

    def stats(self, pop: bool = False) -> ConnectionPoolStats:
        """A snapshot; ``pop`` resets the counters afterwards."""
        snap = ConnectionPoolStats(
            total=self.size,
            idle=len(self.idle),
            in_use=self.in_use_count,
            creating=self.creating,
            closing=self.closing,
            waiting=len(self.waiters),
            min_size=self.min_size,
            max_size=self.max_size,
            acquired=self.acquired,
            waited=self.waited,
            waited_for_create=self.waited_for_create,
            wait_time=self.wait_time,
            timeouts=self.timeouts,
            overloads=self.overloads,
            created=self.created,
            create_errors=self.create_errors,
            reconnects_failed=self.reconnects_failed,
            retries=self.retries,
            closed_by_reason=dict(self.closed_by_reason),
            broken=self.broken is not None,
            name=self.name,
            **self._timings(),
        )
        if pop:
            self._reset_counters()
        return snap
