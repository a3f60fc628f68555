"""``pool.run(fn, *args)``: database/sql's retry on a bad connection, on both twins.

The source of ``test_run.py`` (``scripts/gen_sync.py``). The rule under test
(``connections/_run_async.py``): two tries on pooled connections, then one on a
connection opened for the call; :class:`~poolkit.BadConnection` (dead before the
write) is always retried; any other broken error only with
``retry="idempotent"``; nothing else ever is.
"""

from __future__ import annotations

from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    AsyncPooledConnection,
    BadConnection,
    PoolClosed,
)
from poolkit.connections._core import PoolCore
from poolkit.connections._options import make_options
from poolkit.testing import AsyncFakeConnector, FakeConnection
from tests.connections.twins import async_run

Conn = AsyncPooledConnection[FakeConnection]


async def stocked(
    n: int, **kw: Any
) -> tuple[AsyncConnectionPool[FakeConnection], AsyncFakeConnector]:
    """A pool holding ``n`` idle connections (ids 1..n; LIFO hands out n first)."""
    fake = AsyncFakeConnector()
    kw.setdefault("timeout", 5.0)
    pool = AsyncConnectionPool(fake, **kw)
    held = [await pool.acquire() for _ in range(n)]
    for conn in held:
        await conn.close()
    return pool, fake


def test_run_returns_what_fn_returns_and_gives_the_connection_back() -> None:
    async def main() -> None:
        pool, _ = await stocked(1)

        async def fn(conn: Conn, a: int, b: int) -> tuple[int, int]:
            return conn.raw.use(), a + b

        assert await pool.run(fn, 2, 3) == (1, 5)
        stats = pool.stats()
        assert (stats.idle, stats.in_use, stats.retries) == (1, 0, 0)
        await pool.close()

    async_run(main)


def test_bad_connection_is_retried_twice_pooled_then_on_a_brand_new_connection() -> None:
    """database/sql db.retry: maxBadConnRetries tries on pooled connections, then alwaysNewConn."""

    async def main() -> None:
        pool, _ = await stocked(3, max_size=5)
        seen: list[int] = []

        async def fn(conn: Conn) -> int:
            seen.append(conn.raw.id)
            if conn.raw.id <= 3:
                raise BadConnection("found dead before the write")
            return conn.raw.use()

        assert await pool.run(fn) == 4
        # Pooled 3 and 2 (LIFO), then a new one although 1 is still idle.
        assert seen == [3, 2, 4]
        stats = pool.stats()
        assert (stats.retries, stats.created, stats.idle) == (2, 4, 2)
        assert stats.closed_by_reason["broken"] == 2
        await pool.close()

    async_run(main)


def test_the_last_error_goes_to_the_caller_after_three_tries() -> None:
    async def main() -> None:
        pool, _ = await stocked(3)
        tries: list[int] = []

        async def fn(conn: Conn) -> None:
            tries.append(conn.raw.id)
            raise BadConnection(f"dead {conn.raw.id}")

        with pytest.raises(BadConnection, match="dead 4"):
            await pool.run(fn)
        assert tries == [3, 2, 4]
        assert pool.stats().retries == 2
        await pool.close()

    async_run(main)


def test_a_broken_error_after_the_write_is_never_retried_by_default() -> None:
    """The statement may have run: doing it twice is worse than the error."""

    async def main() -> None:
        pool, fake = await stocked(2)
        tries: list[int] = []

        async def fn(conn: Conn) -> int:
            tries.append(conn.raw.id)
            fake.break_connection(conn.raw)  # dies mid-flight
            return conn.raw.use()

        with pytest.raises(ConnectionResetError):
            await pool.run(fn)
        assert tries == [2]
        stats = pool.stats()
        assert (stats.retries, stats.closed_by_reason["broken"]) == (0, 1)
        await pool.close()

    async_run(main)


def test_idempotent_retries_any_broken_error() -> None:
    async def main() -> None:
        pool, fake = await stocked(2)

        async def fn(conn: Conn) -> int:
            if conn.raw.id == 2:
                fake.break_connection(conn.raw)
            return conn.raw.use()

        assert await pool.run(fn, retry="idempotent") == 1
        assert pool.stats().retries == 1
        await pool.close()

    async_run(main)


def test_an_error_that_does_not_break_the_connection_is_never_retried() -> None:
    async def main() -> None:
        pool, _ = await stocked(1)
        tries: list[int] = []

        async def fn(conn: Conn) -> None:
            tries.append(conn.raw.id)
            raise ValueError("unique violation")

        with pytest.raises(ValueError):
            await pool.run(fn, retry="idempotent")
        assert tries == [1]
        stats = pool.stats()
        assert (stats.retries, stats.idle, stats.closed) == (0, 1, 0)
        await pool.close()

    async_run(main)


def test_dead_idle_connections_are_replaced_at_checkout_without_costing_a_try() -> None:
    async def main() -> None:
        pool, fake = await stocked(3)
        for conn in fake.connections:
            fake.break_connection(conn)

        async def fn(conn: Conn) -> int:
            return conn.raw.use()

        assert await pool.run(fn) == 4
        stats = pool.stats()
        assert (stats.retries, stats.closed_by_reason["check_failed"]) == (0, 3)
        await pool.close()

    async_run(main)


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
    async def main() -> None:
        pool, fake = await stocked(2, max_size=5)

        async def fn(conn: Conn) -> None:
            fake.fail_next_creates(1)
            raise BadConnection("dead")

        with pytest.raises(ConnectionRefusedError):
            await pool.run(fn)
        stats = pool.stats()
        assert (stats.retries, stats.create_errors) == (2, 1)
        assert (stats.idle, stats.in_use, stats.creating) == (0, 0, 0)
        await pool.close()

    async_run(main)


def test_run_refuses_bad_arguments_naming_them() -> None:
    async def main() -> None:
        pool, _ = await stocked(0)

        async def fn(conn: Conn) -> None:
            return None

        with pytest.raises(ValueError, match="retry must be"):
            await pool.run(fn, retry="maybe")
        with pytest.raises(TypeError, match="fn"):
            await pool.run(42)  # type: ignore[arg-type]
        await pool.close()
        with pytest.raises(PoolClosed):
            await pool.run(fn)

    async_run(main)


def test_a_keyed_pool_retries_on_the_same_key_and_sums_the_retries() -> None:
    async def main() -> None:
        fakes: dict[str, AsyncFakeConnector] = {}

        def factory(key: str) -> AsyncFakeConnector:
            fakes[key] = AsyncFakeConnector()
            return fakes[key]

        pool = AsyncKeyedConnectionPool(factory, max_size_per_key=3, timeout=5.0)
        seen: list[tuple[str, int]] = []

        async def fn(conn: Conn, key: str) -> int:
            seen.append((key, conn.raw.id))
            if len(seen) == 1:
                raise BadConnection("dead before the write")
            return conn.raw.use()

        assert await pool.run("a", fn, "a") == 2
        assert seen == [("a", 1), ("a", 2)]
        assert pool.stats().retries == 1
        assert list(fakes) == ["a"]
        await pool.close()

    async_run(main)
