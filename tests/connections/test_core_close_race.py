"""The sans-io core at close(): a creation in flight when the pool closes."""

from __future__ import annotations

import random

from poolkit.connections._core import PoolCore
from poolkit.connections._options import make_options


def test_a_connection_opened_after_close_is_retired_not_kept_idle() -> None:
    """A create planned before close() that returns after it is closed at once.

    Kept idle, it would sit in a closed pool where a racing acquire could take
    it (seen as a rare failure of the SQLite pool test that closes while a
    min_size top-up is still connecting).
    """
    core = PoolCore(make_options(min_size=1, max_size=2), random.Random(0))
    core._plan_creates()
    _to_close, to_create, _to_wake = core.take_outbox()
    assert to_create == 1  # the min_size top-up is now "connecting"
    core.close()
    core.take_outbox()
    core.opened("late connection", 0.0)
    to_close, _to_create, _to_wake = core.take_outbox()
    assert [(entry.conn, reason) for entry, reason in to_close] == [
        ("late connection", "pool_closed")
    ]
    assert list(core.idle) == []
    assert core.checkout(0.0) is None
