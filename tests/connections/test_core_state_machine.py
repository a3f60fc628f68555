"""A Hypothesis state machine over the sans-io core.

Rules: acquire (hit, or queue a waiter and let planned connections open),
a connection opened for one caller (``run()``'s last try, or its failure),
release (normal, broken, or by a waiter giving up), a pending close returning
(closes are slow: the driver reports each one back), time passing with the
cleaner's pass, drain, resize, close, the pool breaking. Invariants after every
step: the pool never exceeds max_size, and neither does the number of
connections the server sees (open, being created, or being closed until the
close returns); no connection is held twice or is both idle and in use; the
counters add up (created = open + closed, waits = waits at the limit + waits
for a creation); no expired connection is ever handed out; no connection idles
while a waiter sleeps.
"""

from __future__ import annotations

import random
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poolkit import PoolBroken, PoolClosed, PoolOverload
from poolkit.connections._core import Entry, PoolCore, Waiter
from poolkit.connections._options import make_options


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.next_id = 0
        self.core: PoolCore | None = None
        self.held: list[Entry] = []
        self.waiters: list[Waiter] = []
        self.closed_conns: set[int] = set()
        # Open at the server: from creation until the close returns.
        self.open_conns: set[int] = set()
        # Retired, close not returned yet (still open at the server).
        self.closing: list[int] = []
        self.queued = 0
        # The server refuses connections: planned creations stay in flight
        # (`pending`), failing and retrying, until they give up or it is back.
        self.down = False
        self.pending = 0
        self.gave_up = 0
        self.given_back = 0

    @rule(
        max_size=st.integers(1, 5),
        min_size=st.integers(0, 2),
        order=st.sampled_from(["lifo", "fifo"]),
        max_waiting=st.none() | st.integers(1, 3),
        max_idle=st.none() | st.integers(2, 5),
    )
    @precondition(lambda self: self.core is None)
    def build(
        self,
        max_size: int,
        min_size: int,
        order: str,
        max_waiting: int | None,
        max_idle: int | None,
    ) -> None:
        opts = make_options(
            min_size=min(min_size, max_size),
            max_size=max_size,
            max_idle=None if max_idle is None else max(max_idle, min(min_size, max_size)),
            max_waiting=max_waiting,
            max_lifetime=50.0,
            max_idle_time=20.0,
            order=order,
            leak_timeout=30.0,
        )
        self.core = PoolCore(opts, random.Random(0))
        self.core._plan_creates()
        self._flush()

    def _flush(self) -> None:
        """Play the driver: close, open (synchronously), wake."""
        core = self.core
        assert core is not None
        while core.dirty:
            to_close, to_create, _to_wake = core.take_outbox()
            for entry, _reason in to_close:
                assert entry.conn not in self.closed_conns, "closed twice"
                assert entry.conn not in self.closing, "closed twice"
                self.closing.append(entry.conn)
            if self.down:
                self.pending += to_create
            else:
                for _ in range(to_create):
                    self._open()
            core.wake_cleaner = False

    def _open(self) -> None:
        core = self.core
        assert core is not None
        self.next_id += 1
        self.open_conns.add(self.next_id)
        core.opened(self.next_id, self.now)

    def _serve_waiters(self) -> None:
        core = self.core
        assert core is not None
        for waiter in list(self.waiters):
            if waiter.notified:
                entry = core.claim(waiter, self.now)
                if entry is not None:
                    assert self.now < entry.expires_at, "an expired connection was handed out"
                    self.waiters.remove(waiter)
                    self.held.append(entry)
        self._flush()

    @precondition(lambda self: self.core is not None and not self.core.closed)
    @rule()
    def acquire(self) -> None:
        core = self.core
        assert core is not None
        entry = core.checkout(self.now)
        if entry is not None:
            assert self.now < entry.expires_at, "an expired connection was handed out"
            self.held.append(entry)
        else:
            waiter = Waiter(lambda: None, self.now)
            try:
                core.add_waiter(waiter)
            except (PoolOverload, PoolBroken):
                pass
            else:
                self.waiters.append(waiter)
                self.queued += 1
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None)
    @rule(fails=st.booleans())
    def acquire_new(self, fails: bool) -> None:
        """run()'s last try: a connection opened for the caller, only below max_size."""
        core = self.core
        assert core is not None
        room = not core.closed and core.broken is None and core.size < core.max_size
        reserved = core.reserve_new()
        assert reserved == room
        if reserved:
            if fails:
                core.new_failed(ConnectionRefusedError("refused"))
            else:
                self.next_id += 1
                self.open_conns.add(self.next_id)
                self.held.append(core.opened_for_caller(self.next_id, self.now))
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and bool(self.held))
    @rule(data=st.data(), broken=st.booleans())
    def release(self, data: Any, broken: bool) -> None:
        core = self.core
        assert core is not None
        entry = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        waiter = core.checkin(entry, self.now, "broken" if broken else None)
        self.given_back += 1
        if waiter is not None:
            assert waiter.notified
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and bool(self.waiters))
    @rule(data=st.data())
    def waiter_gives_up(self, data: Any) -> None:
        core = self.core
        assert core is not None
        waiter = self.waiters.pop(data.draw(st.integers(0, len(self.waiters) - 1)))
        core.give_up(waiter)
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and bool(self.closing))
    @rule(data=st.data())
    def close_returns(self, data: Any) -> None:
        """The driver's close() of a retired connection returns: its slot frees."""
        core = self.core
        assert core is not None
        conn = self.closing.pop(data.draw(st.integers(0, len(self.closing) - 1)))
        self.open_conns.discard(conn)
        self.closed_conns.add(conn)
        core.close_done()
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and self.core.broken is None)
    @rule()
    def cleaner_dies(self) -> None:
        core = self.core
        assert core is not None
        core.break_(RuntimeError("cleaner died"))
        self._flush()
        for waiter in self.waiters:
            assert waiter.closed
        self.waiters.clear()

    @precondition(lambda self: self.core is not None)
    @rule(seconds=st.sampled_from([0.5, 5.0, 25.0, 60.0]))
    def time_passes(self, seconds: float) -> None:
        core = self.core
        assert core is not None
        self.now += seconds
        leaked = core.maintain(self.now)
        assert all(e in core.in_use for e in leaked)
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and not self.down)
    @rule()
    def server_goes_down(self) -> None:
        self.down = True

    @precondition(lambda self: self.down)
    @rule()
    def server_comes_back(self) -> None:
        """Creations still retrying succeed."""
        self.down = False
        pending, self.pending = self.pending, 0
        for _ in range(pending):
            self._open()
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and self.pending > 0)
    @rule(give_up=st.booleans())
    def creation_fails(self, give_up: bool) -> None:
        """A creation in flight fails; ``give_up``: past ``reconnect_timeout``."""
        core = self.core
        assert core is not None
        before = core.stats().reconnects_failed
        retry = core.create_failed(ConnectionRefusedError("down"))
        if not retry:
            self.pending -= 1
        elif give_up:
            self.pending -= 1
            self.gave_up += 1
            core.give_up_create()
            assert core.stats().reconnects_failed == before + 1
            # min_size is not topped up again by this give-up (only waiters plan).
            if not core.waiters:
                assert not core.dirty or core.to_create == 0
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None)
    @rule()
    def drain(self) -> None:
        assert self.core is not None
        self.core.drain()
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and not self.core.closed)
    @rule(max_size=st.integers(1, 6))
    def resize(self, max_size: int) -> None:
        core = self.core
        assert core is not None
        core.resize(min(core.min_size, max_size), max_size)
        self._flush()
        self._serve_waiters()

    @precondition(lambda self: self.core is not None and not self.core.closed)
    @rule()
    def close(self) -> None:
        core = self.core
        assert core is not None
        core.close()
        self._flush()
        for waiter in self.waiters:
            assert waiter.closed
        self.waiters.clear()
        try:
            core.add_waiter(Waiter(lambda: None))
        except PoolClosed:
            pass
        else:
            raise AssertionError("a closed pool queued a waiter")

    @invariant()
    def limits_hold(self) -> None:
        core = self.core
        if core is None:
            return
        if not core.shrunk:
            assert core.size <= core.max_size
        assert len(core.idle) <= max(core.max_idle, len(core.waiters) + len(core.idle))

    @invariant()
    def server_never_sees_more_than_max_size(self) -> None:
        """A connection being closed keeps its slot until its close returns."""
        core = self.core
        if core is None:
            return
        assert len(self.open_conns) + core.creating == core.size
        if not core.shrunk:
            assert len(self.open_conns) + core.creating <= core.max_size

    @invariant()
    def nothing_held_twice(self) -> None:
        core = self.core
        if core is None:
            return
        idle_ids = [e.conn for e in core.idle]
        busy_ids = [e.conn for e in core.in_use]
        held_ids = [e.conn for e in self.held]
        assert len(set(idle_ids)) == len(idle_ids)
        assert not set(idle_ids) & set(busy_ids)
        assert sorted(held_ids) == sorted(busy_ids)
        assert not (set(idle_ids) | set(busy_ids)) & self.closed_conns

    @invariant()
    def counts_add_up(self) -> None:
        core = self.core
        if core is None:
            return
        stats = core.stats()
        assert stats.created == len(self.open_conns) + len(self.closed_conns)
        assert stats.closed == len(self.closed_conns) + len(self.closing)
        assert stats.closing == len(self.closing)
        assert len(self.open_conns) == len(core.idle) + len(core.in_use) + len(self.closing)
        assert stats.waiting == len(self.waiters)
        assert stats.waited + stats.waited_for_create == self.queued
        assert stats.reconnects_failed == self.gave_up
        # Every creation in flight is counted, none twice.
        assert core.creating == self.pending

    @invariant()
    def the_plain_give_back_flag_is_current(self) -> None:
        """A give-back skips the idle caps only while none can refuse it."""
        core = self.core
        if core is None:
            return
        assert core.plain == (
            not core.shrunk and core.budget is None and core.max_idle >= core.max_size
        )
        assert core.filing == (core.generation if core.plain else -1)
        capped = not core.plain and not core.shrunk and core.budget is None
        assert core.capped_filing == (core.generation if capped else -1)

    @invariant()
    def every_give_back_has_one_hold(self) -> None:
        """Holds counted from the checkouts: one per connection given back."""
        core = self.core
        if core is None or core.hold_time is None:
            return
        stats = core.stats()
        assert stats.hold_time is not None
        assert stats.hold_time.count == self.given_back
        assert min(stats.hold_time.counts) >= 0

    @invariant()
    def no_idle_connection_while_a_waiter_sleeps(self) -> None:
        """Once woken waiters have run, no connection is idle while someone waits."""
        core = self.core
        if core is None:
            return
        assert not (core.idle and core.waiters)


CoreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_core_state_machine = CoreMachine.TestCase
