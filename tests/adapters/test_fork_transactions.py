"""A forked child never touches its parent's open transaction (real PostgreSQL).

The parent checks out a connection and writes without committing, then forks.
Whatever the child does with the inherited connection -- give it back, discard
it, leave a ``with pool.connection()`` block that was open at fork time
(normally or by an exception), drop it and close its pool, or just exit -- the
parent's transaction must still be open on the server afterwards and its
commit must keep the row. The parent checks this from inside its transaction
(it still sees its own row: the server did not roll it back) and then from
another connection (the row was committed).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from poolkit import AsyncConnectionPool, ConnectionPool
from poolkit.adapters import dbapi
from poolkit.adapters import psycopg as pg
from tests.adapters.conftest import PROMPT, committed_rows

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

INTRANS = psycopg.pq.TransactionStatus.INTRANS


def _child_exit(code: int) -> None:
    """End a forked child at once: no pytest teardown, no atexit, no flush of
    the parent's buffered output twice."""
    sys.stderr.flush()
    os._exit(code)


def _in_child(action: Callable[[], object]) -> None:
    """Run ``action`` in the forked child and exit: status 0 only if it returned."""
    code = 1
    try:
        signal.alarm(int(PROMPT))  # a child that hangs dies instead of hanging the test
        with warnings.catch_warnings():
            # A pool may warn about the parent's connections in the child;
            # the warnings filter "error" of the suite must not change the path.
            warnings.simplefilter("ignore")
            action()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        _child_exit(code)


def _wait_child(pid: int) -> None:
    """Wait (bounded) for the child; it must have exited with status 0."""
    deadline = time.monotonic() + PROMPT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child did not exit within {PROMPT} s")
        time.sleep(0.005)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed (traceback above)"


def _assert_still_in_transaction(conn: Any, table: str, rows: list[int]) -> None:
    """The parent's transaction is intact: psycopg says INTRANS and the server
    still shows the uncommitted rows to this session."""
    assert conn.info.transaction_status == INTRANS
    assert [r[0] for r in conn.execute(f"SELECT x FROM {table} ORDER BY x")] == rows


# -- psycopg, sync --------------------------------------------------------------

CHILD_ACTIONS = ["close", "discard", "drop_and_close_pool", "exit"]


def _child_action(name: str, pool: ConnectionPool[Any], c: Any) -> Callable[[], object]:
    def drop_and_close_pool() -> None:
        # The proxy is never given back: its finalizer runs in the child,
        # then the child's pool closes.
        nonlocal c
        c = None
        gc.collect()
        pool.close()

    return {
        "close": lambda: c.close(),
        "discard": lambda: c.discard(),
        "drop_and_close_pool": drop_and_close_pool,
        "exit": lambda: None,
    }[name]


@pytest.mark.parametrize("action", CHILD_ACTIONS)
def test_child_never_rolls_back_the_parents_open_transaction(
    pg_dsn: str,
    table: str,
    action: str,
    closing: Callable[[Any], Any],
) -> None:
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=2, timeout=10.0))
    c = pool.acquire()
    c.execute(f"INSERT INTO {table} VALUES (1)")
    pid = os.fork()
    if pid == 0:
        _in_child(_child_action(action, pool, c))
    _wait_child(pid)
    _assert_still_in_transaction(c, table, [1])
    c.commit()
    c.close()
    assert committed_rows(pg_dsn, table) == [1]
    with pool.connection() as conn:  # the parent's pool is intact too
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pool.close()


@pytest.mark.parametrize("leave", ["normally", "by_exception"])
def test_child_leaving_a_block_open_at_fork_time_neither_commits_nor_rolls_back(
    pg_dsn: str,
    table: str,
    leave: str,
    closing: Callable[[Any], Any],
) -> None:
    """The child runs the block's exit (commit-on-success or rollback-on-error):
    the transaction is the parent's, so neither may reach the server."""
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=2, timeout=10.0))
    in_child = False
    try:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")
            pid = os.fork()
            if pid == 0:
                in_child = True
                signal.alarm(int(PROMPT))
                warnings.simplefilter("ignore")
                if leave == "by_exception":
                    raise KeyError("the child leaves the block by an error")
            else:
                _wait_child(pid)
                _assert_still_in_transaction(conn, table, [1])
                conn.execute(f"INSERT INTO {table} VALUES (2)")
    except KeyError:
        if not in_child:
            raise
    except BaseException:
        if in_child:
            traceback.print_exc()
            _child_exit(1)
        raise
    if in_child:
        _child_exit(0)
    # The parent left its block normally: both rows committed.
    assert committed_rows(pg_dsn, table) == [1, 2]
    pool.close()


def test_psycopg_connection_garbage_collected_in_the_child_sends_no_terminate(
    pg_dsn: str, table: str
) -> None:
    """psycopg's own rule, relied on by the pools: a connection finalized in a
    forked child does not end the server session (it checks the pid)."""
    conn = psycopg.connect(pg_dsn)
    conn.execute(f"INSERT INTO {table} VALUES (1)")

    def drop() -> None:
        nonlocal conn
        conn = None  # type: ignore[assignment]
        gc.collect()

    pid = os.fork()
    if pid == 0:
        _in_child(drop)
    _wait_child(pid)
    _assert_still_in_transaction(conn, table, [1])
    conn.commit()
    conn.close()
    assert committed_rows(pg_dsn, table) == [1]


# -- psycopg, asyncio -----------------------------------------------------------


@pytest.mark.parametrize("action", ["close", "discard", "drop", "leave_block"])
def test_async_child_never_rolls_back_the_parents_open_transaction(
    pg_dsn: str, table: str, action: str
) -> None:
    """asyncio: a forked child cannot run its parent's event loop (asyncio refuses
    it), so it gives back on a loop of its own, drops the proxy, or leaves a
    block that was open at fork time on the copied loop."""

    async def main() -> None:
        pool = AsyncConnectionPool(pg.async_connector(pg_dsn), max_size=2, timeout=10.0)
        async with pool:
            if action == "leave_block":
                await _leave_block_in_child(pool, pg_dsn, table)
                return
            c: Any = await pool.acquire()
            await c.execute(f"INSERT INTO {table} VALUES (1)")

            def child() -> None:
                nonlocal c
                if action == "drop":
                    c = None
                    gc.collect()
                else:
                    asyncio.run(c.close() if action == "close" else c.discard())

            pid = os.fork()
            if pid == 0:
                _in_child(child)
            _wait_child(pid)
            assert c.info.transaction_status == INTRANS
            cur = await c.execute(f"SELECT x FROM {table}")
            assert await cur.fetchall() == [(1,)]
            await c.commit()
            await c.close()
            assert committed_rows(pg_dsn, table) == [1]

    asyncio.run(main())


async def _leave_block_in_child(pool: AsyncConnectionPool[Any, Any], dsn: str, table: str) -> None:
    in_child = False
    try:
        async with pool.connection() as conn:
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
            pid = os.fork()
            if pid == 0:
                in_child = True
                signal.alarm(int(PROMPT))
                warnings.simplefilter("ignore")
            else:
                _wait_child(pid)
                assert conn.info.transaction_status == INTRANS
                cur = await conn.execute(f"SELECT x FROM {table}")
                assert await cur.fetchall() == [(1,)]
    except RuntimeError as exc:
        # asyncio's fork rule: the child's copy of the parent's loop is not
        # running there ("no running event loop"); nothing reached the wire.
        if not in_child or "no running event loop" not in str(exc):
            raise
    except BaseException:
        if in_child:
            traceback.print_exc()
            _child_exit(1)
        raise
    if in_child:
        _child_exit(0)
    assert committed_rows(dsn, table) == [1]  # committed by the parent's block


# -- DB-API client over psycopg -------------------------------------------------


@pytest.mark.parametrize("action", ["close", "with_connection", "with_conn"])
def test_dbpool_child_never_commits_or_rolls_back_the_parents_transaction(
    pg_dsn: str,
    table: str,
    action: str,
    closing: Callable[[Any], Any],
) -> None:
    """DBPool: close() in the child, or leaving db.connection() / ``with conn:``
    (both commit on success) in the child, leaves the parent's transaction be."""
    db: dbapi.DBPool[psycopg.Connection[Any]] = closing(
        dbapi.DBPool(pg.connector(pg_dsn), max_size=2)
    )
    if action == "with_connection":
        in_child = False
        try:
            with db.connection() as conn:
                conn.execute(f"INSERT INTO {table} VALUES (1)")
                pid = os.fork()
                if pid == 0:
                    in_child = True
                    signal.alarm(int(PROMPT))
                    warnings.simplefilter("ignore")
                else:
                    _wait_child(pid)
                    _assert_still_in_transaction(conn, table, [1])
                    conn.rollback()  # the parent decides: nothing is kept
        except BaseException:
            if in_child:
                traceback.print_exc()
                _child_exit(1)
            raise
        if in_child:
            _child_exit(0)
        assert committed_rows(pg_dsn, table) == []  # a child's commit would have kept row 1
        db.close()
        return
    conn = db.connect()
    conn.execute(f"INSERT INTO {table} VALUES (1)")

    def with_conn() -> None:
        with conn:  # commits on success, in the child: must not
            pass

    pid = os.fork()
    if pid == 0:
        _in_child(conn.close if action == "close" else with_conn)
    _wait_child(pid)
    _assert_still_in_transaction(conn, table, [1])
    conn.rollback()
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    conn.commit()
    conn.close()
    assert committed_rows(pg_dsn, table) == [2]
    db.close()


# -- stress ---------------------------------------------------------------------

STRESS_ROUNDS = 24  # each round forks once: well under 2 s on a loaded 2-core box


@pytest.mark.stress
def test_stress_fork_with_open_transactions_loses_no_parent_write(
    pg_dsn: str, table: str, closing: Callable[[Any], Any]
) -> None:
    """Rounds of fork-with-open-transactions, each child doing something else
    with the inherited connections; no parent write may be lost."""
    rng = random.Random(9)
    pool = closing(ConnectionPool(pg.connector(pg_dsn), max_size=3, timeout=10.0))
    db: dbapi.DBPool[psycopg.Connection[Any]] = closing(
        dbapi.DBPool(pg.connector(pg_dsn), max_size=2)
    )
    written: list[int] = []
    for i in range(STRESS_ROUNDS):
        held = [pool.acquire() for _ in range(rng.randint(1, 3))]
        dbconn = db.connect()
        for n, c in enumerate(held):
            c.execute(f"INSERT INTO {table} VALUES (%s)", (i * 10 + n,))
        dbconn.execute(f"INSERT INTO {table} VALUES (%s)", (i * 10 + 9,))
        actions = [rng.choice(CHILD_ACTIONS) for _ in held]

        def child(
            actions: list[str] = actions,
            held: list[Any] = held,
            dbconn: dbapi.PooledDBConnection[Any] = dbconn,
        ) -> None:
            for name, c in zip(actions, held, strict=True):
                if name in ("close", "discard"):
                    getattr(c, name)()
            dbconn.close()
            if "drop_and_close_pool" in actions:
                held.clear()
                gc.collect()
                pool.close()
                db.close()

        pid = os.fork()
        if pid == 0:
            _in_child(child)
        _wait_child(pid)
        for n, c in enumerate(held):
            assert c.info.transaction_status == INTRANS, f"round {i}: child touched a transaction"
            c.commit()
            c.close()
            written.append(i * 10 + n)
        dbconn.commit()
        dbconn.close()
        written.append(i * 10 + 9)
    assert committed_rows(pg_dsn, table) == sorted(written)
    stats = pool.stats()
    assert stats.closed == 0
    assert stats.in_use == 0
    pool.close()
    db.close()
