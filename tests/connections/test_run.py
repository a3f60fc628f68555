# Generated from tests/connections/test_async_run.py by scripts/gen_sync.py: do not edit.
# Change the source, then run `python scripts/gen_sync.py`.
"""``pool.run(fn, *args)``: database/sql's retry on a bad connection, on both twins.

The source of ``test_run.py`` (``scripts/gen_sync.py``). The rule under test
(``connections/_run.py``): two tries on pooled connections, then one on a
connection opened for the call; :class:`~poolkit.BadConnection` (dead before the
write) is always retried; any other broken error only with
``retry="idempotent"``; nothing else ever is.
"""

from __future__ import annotations

from typing import Any

import pytest

from poolkit import (
    BadConnection,
    ConnectionPool,
    KeyedConnectionPool,
    PoolClosed,
    PooledConnection,
)
from poolkit.connections._core import PoolCore
from poolkit.connections._options import make_options
from poolkit.testing import FakeConnection, FakeConnector
from tests.connections.twins import run

Conn = PooledConnection[FakeConnection]


def stocked(n: int, **kw: Any) -> tuple[ConnectionPool[FakeConnection], FakeConnector]:
    """A pool holding ``n`` idle connections (ids 1..n; LIFO hands out n first)."""
    fake = FakeConnector()
    kw.setdefault("timeout", 5.0)
    pool = ConnectionPool(fake, **kw)
    held = [pool.acquire() for _ in range(n)]
    for conn in held:
        conn.close()
    return pool, fake


def test_run_returns_what_fn_returns_and_gives_the_connection_back() -> None:
    def main() -> None:
        pool, _ = stocked(1)

        def fn(conn: Conn, a: int, b: int) -> tuple[int, int]:
            return conn.raw.use(), a + b

        assert pool.run(fn, 2, 3) == (1, 5)
        stats = pool.stats()
        assert (stats.idle, stats.in_use, stats.retries) == (1, 0, 0)
        pool.close()

    run(main)


def test_bad_connection_is_retried_twice_pooled_then_on_a_brand_new_connection() -> None:
    """database/sql db.retry: maxBadConnRetries tries on pooled connections, then alwaysNewConn."""

    def main() -> None:
        pool, _ = stocked(3, max_size=5)
        seen: list[int] = []

        def fn(conn: Conn) -> int:
            seen.append(conn.raw.id)
            if conn.raw.id <= 3:
                raise BadConnection("found dead before the write")
            return conn.raw.use()

        assert pool.run(fn) == 4
        # Pooled 3 and 2 (LIFO), then a new one although 1 is still idle.
        assert seen == [3, 2, 4]
        stats = pool.stats()
        assert (stats.retries, stats.created, stats.idle) == (2, 4, 2)
        assert stats.closed_by_reason["broken"] == 2
        pool.close()

    run(main)


def test_the_last_error_goes_to_the_caller_after_three_tries() -> None:
    def main() -> None:
        pool, _ = stocked(3)
        tries: list[int] = []

        def fn(conn: Conn) -> None:
            tries.append(conn.raw.id)
            raise BadConnection(f"dead {conn.raw.id}")

        with pytest.raises(BadConnection, match="dead 4"):
            pool.run(fn)
        assert tries == [3, 2, 4]
        assert pool.stats().retries == 2
        pool.close()

    run(main)


def test_a_broken_error_after_the_write_is_never_retried_by_default() -> None:
    """The statement may have run: doing it twice is worse than the error."""

    def main() -> None:
        pool, fake = stocked(2)
        tries: list[int] = []

        def fn(conn: Conn) -> int:
            tries.append(conn.raw.id)
            fake.break_connection(conn.raw)  # dies mid-flight
            return conn.raw.use()

        with pytest.raises(ConnectionResetError):
            pool.run(fn)
        assert tries == [2]
        stats = pool.stats()
        assert (stats.retries, stats.closed_by_reason["broken"]) == (0, 1)
        pool.close()

    run(main)


def test_idempotent_retries_any_broken_error() -> None:
    def main() -> None:
        pool, fake = stocked(2)

        def fn(conn: Conn) -> int:
            if conn.raw.id == 2:
                fake.break_connection(conn.raw)
            return conn.raw.use()

        assert pool.run(fn, retry="idempotent") == 1
        assert pool.stats().retries == 1
        pool.close()

    run(main)


def test_an_error_that_does_not_break_the_connection_is_never_retried() -> None:
    def main() -> None:
        pool, _ = stocked(1)
        tries: list[int] = []

        def fn(conn: Conn) -> None:
            tries.append(conn.raw.id)
            raise ValueError("unique violation")

        with pytest.raises(ValueError):
            pool.run(fn, retry="idempotent")
        assert tries == [1]
        stats = pool.stats()
        assert (stats.retries, stats.idle, stats.closed) == (0, 1, 0)
        pool.close()

    run(main)


def test_dead_idle_connections_are_replaced_at_checkout_without_costing_a_try() -> None:
    def main() -> None:
        pool, fake = stocked(3)
        for conn in fake.connections:
            fake.break_connection(conn)

        def fn(conn: Conn) -> int:
            return conn.raw.use()

        assert pool.run(fn) == 4
        stats = pool.stats()
        assert (stats.retries, stats.closed_by_reason["check_failed"]) == (0, 3)
        pool.close()

    run(main)


def test_at_max_size_the_last_try_takes_a_pooled_connection() -> None:
    """database/sql's alwaysNewConn waits for a returned connection at maxOpen too."""
    core = PoolCore(make_options(max_size=2))
    assert core.reserve_new()
    core.opened_for_caller(object(), 0.0)
    assert core.reserve_new()
    entry = core.opened_for_caller(object(), 0.0)
    assert (core.size, core.acquired, core.created) == (2, 2, 2)
    assert not core.reserve_new()  # full: run() falls back to acquire()
    core.checkin(entry, 0.0)
    assert not core.reserve_new()  # an idle one does not make room either
    core.close()
    assert not core.reserve_new()


def test_a_failed_new_connection_ends_the_run_with_the_connect_error() -> None:
    def main() -> None:
        pool, fake = stocked(2, max_size=5)

        def fn(conn: Conn) -> None:
            fake.fail_next_creates(1)
            raise BadConnection("dead")

        with pytest.raises(ConnectionRefusedError):
            pool.run(fn)
        stats = pool.stats()
        assert (stats.retries, stats.create_errors) == (2, 1)
        assert (stats.idle, stats.in_use, stats.creating) == (0, 0, 0)
        pool.close()

    run(main)


def test_run_refuses_bad_arguments_naming_them() -> None:
    def main() -> None:
        pool, _ = stocked(0)

        def fn(conn: Conn) -> None:
            return None

        with pytest.raises(ValueError, match="retry must be"):
            pool.run(fn, retry="maybe")
        with pytest.raises(TypeError, match="fn"):
            pool.run(42)  # type: ignore[arg-type]
        pool.close()
        with pytest.raises(PoolClosed):
            pool.run(fn)

    run(main)


def test_a_keyed_pool_retries_on_the_same_key_and_sums_the_retries() -> None:
    def main() -> None:
        fakes: dict[str, FakeConnector] = {}

        def factory(key: str) -> FakeConnector:
            fakes[key] = FakeConnector()
            return fakes[key]

        pool = KeyedConnectionPool(factory, max_size_per_key=3, timeout=5.0)
        seen: list[tuple[str, int]] = []

        def fn(conn: Conn, key: str) -> int:
            seen.append((key, conn.raw.id))
            if len(seen) == 1:
                raise BadConnection("dead before the write")
            return conn.raw.use()

        assert pool.run("a", fn, "a") == 2
        assert seen == [("a", 1), ("a", 2)]
        assert pool.stats().retries == 1
        assert list(fakes) == ["a"]
        pool.close()

    run(main)
