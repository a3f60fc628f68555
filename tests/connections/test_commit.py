"""Commit on success: the connector's optional ``commit(conn)`` hook.

``with pool.connection() as conn:`` commits when the block exits normally,
before the connection is given back; an exception in the block never commits
(``reset`` rolls back on return). An error from ``commit`` propagates: the
connection is discarded when the error broke it, else given back.
``acquire()``/``release()`` never commit. Sync, async and keyed twins alike.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    KeyedConnectionPool,
)


class Journal:
    """A connector of int connections recording every hook call in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.commit_error: BaseException | None = None
        self._ids = itertools.count(1)

    def create(self) -> int:
        return next(self._ids)

    def close(self, conn: int) -> None:
        self.events.append(("close", conn))

    def reset(self, conn: int) -> None:
        self.events.append(("reset", conn))

    def commit(self, conn: int) -> None:
        self.events.append(("commit", conn))
        if self.commit_error is not None:
            raise self.commit_error

    def is_broken(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionError)


class AsyncJournal(Journal):
    async def create(self) -> int:  # type: ignore[override]
        return Journal.create(self)

    async def close(self, conn: int) -> None:  # type: ignore[override]
        Journal.close(self, conn)

    async def reset(self, conn: int) -> None:  # type: ignore[override]
        Journal.reset(self, conn)

    async def commit(self, conn: int) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        Journal.commit(self, conn)


def sync_pool(journal: Journal, kind: str) -> tuple[Any, Any]:
    """(the pool, its ``connection`` function) for a plain or a keyed pool."""
    if kind == "pool":
        pool: ConnectionPool[int] = ConnectionPool(journal, max_size=1)
        return pool, pool.connection
    kpool: KeyedConnectionPool[str, int] = KeyedConnectionPool(
        lambda key: journal, max_size_per_key=1
    )
    return kpool, lambda: kpool.connection("k")


def fail_in_block(connection: Any, error: BaseException | None) -> int:
    """Raise ``error`` inside a ``with connection()`` block; the connection's id."""
    with connection() as conn:
        raw: int = conn.raw
        if error is not None:
            raise error
    return raw


@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_block_exiting_normally_commits_before_giving_back(kind: str) -> None:
    journal = Journal()
    pool, connection = sync_pool(journal, kind)
    with connection() as conn:
        assert journal.events == []
        raw = conn.raw
    assert journal.events == [("commit", raw), ("reset", raw)]
    assert pool.stats().idle == 1
    pool.close()


@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_block_left_by_an_exception_rolls_back_and_never_commits(kind: str) -> None:
    journal = Journal()
    pool, connection = sync_pool(journal, kind)
    with pytest.raises(ValueError, match="app error"):
        fail_in_block(connection, ValueError("app error"))
    raw = 1  # the pool's first and only connection
    assert journal.events == [("reset", raw)]
    assert pool.stats().idle == 1
    pool.close()


@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_commit_failing_propagates_and_the_connection_is_rolled_back(kind: str) -> None:
    """A non-broken commit error (a serialization failure): reset rolls back, kept."""
    journal = Journal()
    pool, connection = sync_pool(journal, kind)
    journal.commit_error = RuntimeError("could not serialize access")
    with pytest.raises(RuntimeError, match="serialize"):
        fail_in_block(connection, None)
    raw = 1  # the pool's first and only connection
    assert journal.events == [("commit", raw), ("reset", raw)]
    assert (pool.stats().idle, pool.stats().closed) == (1, 0)
    pool.close()


@pytest.mark.parametrize("error", [ConnectionResetError("gone"), KeyboardInterrupt()])
@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_commit_breaking_discards_the_connection(kind: str, error: BaseException) -> None:
    journal = Journal()
    pool, connection = sync_pool(journal, kind)
    journal.commit_error = error
    with pytest.raises(type(error)):
        fail_in_block(connection, None)
    raw = 1  # the pool's first and only connection
    assert journal.events == [("commit", raw), ("close", raw)]
    stats = pool.stats()
    assert (stats.in_use, stats.closed_by_reason["broken"]) == (0, 1)
    journal.commit_error = None
    with connection() as conn:  # the slot is free again
        assert conn.raw != raw
    pool.close()


def test_acquire_and_release_never_commit() -> None:
    journal = Journal()
    pool: ConnectionPool[int] = ConnectionPool(journal)
    conn = pool.acquire()
    raw = conn.raw
    conn.close()
    pool.release(pool.acquire())
    assert journal.events == [("reset", raw), ("reset", raw)]
    pool.close()


def async_pools(journal: AsyncJournal) -> dict[str, tuple[Any, Any]]:
    pool: AsyncConnectionPool[int] = AsyncConnectionPool(journal, max_size=1)
    kpool: AsyncKeyedConnectionPool[str, int] = AsyncKeyedConnectionPool(
        lambda key: journal, max_size_per_key=1
    )
    return {"pool": (pool, pool.connection), "keyed": (kpool, lambda: kpool.connection("k"))}


@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_async_block_commits_on_success_and_rolls_back_on_error(kind: str) -> None:
    async def main() -> None:
        journal = AsyncJournal()
        pool, connection = async_pools(journal)[kind]
        async with connection() as conn:
            raw = conn.raw
        assert journal.events == [("commit", raw), ("reset", raw)]
        journal.events.clear()
        with pytest.raises(ValueError, match="app"):
            async with connection() as conn:
                raise ValueError("app")
        assert journal.events == [("reset", raw)]
        journal.events.clear()
        journal.commit_error = RuntimeError("serialization")
        with pytest.raises(RuntimeError, match="serialization"):
            async with connection():
                pass
        assert journal.events == [("commit", raw), ("reset", raw)]
        assert pool.stats().idle == 1
        await pool.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["pool", "keyed"])
def test_async_commit_breaking_or_cancelled_discards_the_connection(kind: str) -> None:
    async def main() -> None:
        journal = AsyncJournal()
        pool, connection = async_pools(journal)[kind]
        journal.commit_error = ConnectionResetError("gone")
        with pytest.raises(ConnectionResetError):
            async with connection():
                pass
        journal.commit_error = None
        entered = asyncio.Event()
        stuck = asyncio.Event()

        async def slow_commit(conn: int) -> None:
            entered.set()
            await stuck.wait()

        journal.commit = slow_commit  # type: ignore[method-assign]
        # The hook is looked up when the pool (or key) is built: use a fresh key.
        pool2, connection2 = async_pools(journal)[kind]
        task = asyncio.create_task(use2(connection2))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):
            await asyncio.sleep(0)
        assert pool.stats().closed_by_reason["broken"] == 1
        stats = pool2.stats()
        assert (stats.in_use, stats.closed_by_reason["broken"]) == (0, 1)
        await pool.close()
        await pool2.close()

    async def use2(connection: Any) -> None:
        async with connection():
            pass

    asyncio.run(main())
