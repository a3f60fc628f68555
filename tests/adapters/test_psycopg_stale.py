"""psycopg through the generic pools: what a holder keeps after the give-back.

DB-API 2.0 says a closed connection and its cursors raise the driver's Error
on use. A pooled connection given back (``conn.close()``, the end of a ``with
pool.connection()`` block) may belong to another caller, maybe another thread,
by then: a cursor kept from it must raise, never run a statement on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from poolkit import AsyncConnectionPool, ConnectionDetached, ConnectionPool
from poolkit.adapters import psycopg as pg
from tests.adapters.conftest import committed_rows


def _assert_detached(exc: BaseException) -> None:
    """The error a stale use raises: psycopg's own, poolkit's too, and not "broken"."""
    assert isinstance(exc, psycopg.ProgrammingError)
    assert isinstance(exc, ConnectionDetached)
    assert "given back" in str(exc)
    # A stale cursor used inside another holder's block must not make the
    # pool discard that holder's (innocent) connection.
    assert not pg.is_broken(exc)


def _stale_sync_uses(conn: Any, cur: Any, shortcut: Any, table: str) -> list[Callable[[], object]]:
    return [
        lambda: cur.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(1,)]),
        cur.fetchone,
        lambda: cur.rowcount,
        shortcut.fetchall,
        lambda: shortcut.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: conn.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: conn.cursor(),
        lambda: conn.commit(),
    ]


def test_attribute_writes_reach_the_psycopg_connection(pg_dsn: str, table: str) -> None:
    """conn.autocommit = True on the pooled connection sets psycopg's, until the give-back."""
    with ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0) as pool:
        conn = pool.acquire()
        conn.autocommit = True
        assert conn.raw.autocommit is True
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        conn.autocommit = False
        conn.close()
        # Autocommitted: the rollback on return left the row.
        assert len(committed_rows(pg_dsn, table)) == 1
        with pytest.raises(psycopg.ProgrammingError) as info:
            conn.autocommit = True
        _assert_detached(info.value)
        with pool.connection() as again:
            assert again.autocommit is False


def test_stale_cursor_after_close_raises_and_the_next_holder_is_unaffected(
    pg_dsn: str, table: str
) -> None:
    """Cursors (conn.cursor(), conn.execute()'s) raise psycopg's Error after close()."""
    with ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0) as pool:
        conn = pool.acquire()
        cur = conn.cursor()
        cur.execute("SELECT 1")
        shortcut = conn.execute("SELECT 2")
        conn.close()
        nxt = pool.acquire()  # the same connection (max_size=1), now someone else's
        for use in _stale_sync_uses(conn, cur, shortcut, table):
            with pytest.raises(psycopg.ProgrammingError) as info:
                use()
            _assert_detached(info.value)
        cur.close()  # closing a stale cursor stays harmless
        # Nothing ran on the next holder's connection: no transaction opened.
        assert nxt.info.transaction_status == TransactionStatus.IDLE
        assert nxt.execute("SELECT 3").fetchone() == (3,)
        nxt.close()
        assert len(committed_rows(pg_dsn, table)) == 0
        assert pool.stats().closed == 0


def test_stale_cursor_after_the_with_block_raises(pg_dsn: str, table: str) -> None:
    """Leaving ``with pool.connection()`` detaches its cursors too; the error, caught in
    the next holder's block, does not discard that holder's connection."""
    with ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0) as pool:
        with pool.connection() as conn:
            cur = conn.cursor()
            shortcut = conn.execute("SELECT 1")
        with pool.connection() as nxt:
            for use in _stale_sync_uses(conn, cur, shortcut, table):
                with pytest.raises(psycopg.ProgrammingError) as info:
                    use()
                _assert_detached(info.value)
            assert nxt.info.transaction_status == TransactionStatus.IDLE
            nxt.execute(f"INSERT INTO {table} VALUES (2)")
        assert len(committed_rows(pg_dsn, table)) == 1  # the next holder's own row, committed
        assert pool.stats().closed == 0


def test_guarded_cursor_works_like_psycopgs_while_held(pg_dsn: str) -> None:
    """While the connection is held the cursor is psycopg's: chaining, iteration, attributes."""
    pool = ConnectionPool(pg.connector(pg_dsn), max_size=1, timeout=10.0)
    with pool, pool.connection() as conn:
        with conn.cursor() as cur:
            got = cur.execute("SELECT generate_series(1, 3)").fetchall()
            assert got == [(1,), (2,), (3,)]
            cur.execute("SELECT generate_series(1, 3)")
            assert next(iter(cur)) == (1,)
            assert list(cur) == [(2,), (3,)]
            assert cur.rowcount == 3
            cur.arraysize = 2
            assert cur.arraysize == 2
        assert cur.closed
        assert [tuple(r) for r in conn.execute("SELECT 1, 2")] == [(1, 2)]


# -- asyncio --------------------------------------------------------------------


def test_async_attribute_writes_reach_the_psycopg_connection(pg_dsn: str) -> None:
    """The async twin: conn.prepare_threshold = None sets psycopg's, until the give-back."""

    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1) as pool:
            conn = await pool.acquire()
            conn.prepare_threshold = None
            assert conn.raw.prepare_threshold is None
            conn.prepare_threshold = 5
            await conn.close()
            with pytest.raises(psycopg.ProgrammingError) as info:
                conn.prepare_threshold = None
            _assert_detached(info.value)

    asyncio.run(main())


async def _check_stale_async(conn: Any, cur: Any, shortcut: Any, table: str) -> None:
    uses: list[Callable[[], Any]] = [
        lambda: cur.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(1,)]),
        cur.fetchone,
        shortcut.fetchall,
        lambda: shortcut.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: conn.execute(f"INSERT INTO {table} VALUES (1)"),
        lambda: conn.commit(),
    ]
    for use in uses:
        with pytest.raises(psycopg.ProgrammingError) as info:
            await use()
        _assert_detached(info.value)
    sync_uses: list[Callable[[], object]] = [lambda: conn.cursor(), lambda: cur.rowcount]
    for sync_use in sync_uses:
        with pytest.raises(psycopg.ProgrammingError) as info:
            sync_use()
        _assert_detached(info.value)


def test_async_stale_cursor_after_close_raises_and_the_next_holder_is_unaffected(
    pg_dsn: str, table: str
) -> None:
    """The async twin: cursors raise psycopg's Error after ``await conn.close()``."""

    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1) as pool:
            conn = await pool.acquire()
            cur = conn.cursor()
            await cur.execute("SELECT 1")
            shortcut = await conn.execute("SELECT 2")
            await conn.close()
            nxt = await pool.acquire()
            await _check_stale_async(conn, cur, shortcut, table)
            await cur.close()  # harmless
            assert nxt.info.transaction_status == TransactionStatus.IDLE
            row = await (await nxt.execute("SELECT 3")).fetchone()
            assert row == (3,)
            await nxt.close()
            assert pool.stats().closed == 0
        assert len(committed_rows(pg_dsn, table)) == 0

    asyncio.run(main())


def test_async_stale_cursor_after_the_with_block_raises(pg_dsn: str, table: str) -> None:
    """The async twin of leaving the block: stale cursors raise, the next holder keeps its
    connection."""

    async def main() -> None:
        async with AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1) as pool:
            async with pool.connection() as conn:
                cur = conn.cursor()
                shortcut = await conn.execute("SELECT 1")
            async with pool.connection() as nxt:
                await _check_stale_async(conn, cur, shortcut, table)
                assert nxt.info.transaction_status == TransactionStatus.IDLE
                await nxt.execute(f"INSERT INTO {table} VALUES (2)")
            assert pool.stats().closed == 0
        assert len(committed_rows(pg_dsn, table)) == 1

    asyncio.run(main())


def test_async_guarded_cursor_works_like_psycopgs_while_held(pg_dsn: str) -> None:
    """The async twin: chaining, ``async for``, ``async with``, attributes."""

    async def main() -> None:
        pool = AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=1)
        async with pool, pool.connection() as conn:
            async with conn.cursor() as cur:
                await cur.execute("SELECT generate_series(1, 3)")
                assert await cur.fetchone() == (1,)
                assert [row async for row in cur] == [(2,), (3,)]
                got = await (await cur.execute("SELECT 7")).fetchall()
                assert got == [(7,)]
                cur.arraysize = 2
                assert cur.arraysize == 2
            assert cur.closed
            rows = [r async for r in await conn.execute("SELECT 1, 2")]
            assert rows == [(1, 2)]

    asyncio.run(main())
