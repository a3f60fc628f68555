"""AsyncPoolkitPool: PoolkitPool for ``create_async_engine``, over an AsyncConnectionPool.

SQLAlchemy's asyncio engines run their pool's synchronous methods inside a
greenlet of the event loop's task (``greenlet_spawn``), and drivers await
from there (``await_``); ``AsyncAdaptedQueuePool`` waits on an asyncio queue
that way. This pool awaits poolkit's :class:`~poolkit.AsyncConnectionPool`
the same way. The work poolkit does in tasks of its own (closing a
connection, a ping at checkout) enters a greenlet to call SQLAlchemy, whose
drivers await from inside it.

Everything else is :class:`~poolkit.integrations.sqlalchemy.PoolkitPool`'s.
What cannot await (SQLAlchemy's cleanup of a connection garbage-collected
without ``close()``, which runs outside any greenlet) hands the connection to
poolkit's lock-free path instead: it is closed and warned about
(:class:`~poolkit.LeakWarning`), as SQLAlchemy's own asyncio pools do not
reuse such connections either.

The pool binds to the event loop it is first used in, as every poolkit
asyncio pool does; an engine used from a second loop raises
:class:`~poolkit.EventLoopMismatch` (dispose it, or make one engine per loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import util as sa_util
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.pool.base import _ConnectionRecord as ConnectionRecord
from sqlalchemy.util.concurrency import in_greenlet

from poolkit._errors import PoolTimeout
from poolkit.connections._async import AsyncConnectionPool
from poolkit.connections._driver import DriverBase
from poolkit.connections._options import DEFAULT_CLOSE_TIMEOUT
from poolkit.integrations.sqlalchemy._pool import (
    PoolkitPool,
    in_collection,
    invalidated,
    new_record,
    ping_record,
)

__all__ = ["AsyncPoolkitPool"]

# engine.dispose() waits this long for the idle connections it closes, as
# poolkit's close() does (the closes run in tasks of their own: a program that
# ends its loop right after dispose() would cancel them mid-close).
DISPOSE_WAIT = DEFAULT_CLOSE_TIMEOUT
# How often dispose() looks whether those closes are done.
DISPOSE_POLL = 0.001

# SQLAlchemy 2.1 names it await_; 2.0 await_only.
_await: Callable[[Awaitable[Any]], Any] = getattr(sa_util, "await_", None) or sa_util.await_only


class _AsyncRecordConnector:
    """The asyncio connector: SQLAlchemy's calls run in a greenlet, where drivers await."""

    def __init__(self, pool: AsyncPoolkitPool) -> None:
        self._pool = pool

    async def create(self) -> ConnectionRecord:
        return new_record(self._pool)

    async def close(self, record: ConnectionRecord) -> None:
        await sa_util.greenlet_spawn(record.close)

    async def ping(self, record: ConnectionRecord) -> bool:
        alive: bool = await sa_util.greenlet_spawn(ping_record, self._pool, record)
        return alive


class AsyncPoolkitPool(PoolkitPool):
    """:class:`PoolkitPool` for asyncio engines, backed by an :class:`~poolkit.AsyncConnectionPool`.

    ``create_async_engine(url, poolclass=AsyncPoolkitPool, pool_size=5, ...)``:
    the same arguments, behaviour and diagnostics as :class:`PoolkitPool`.
    """

    _is_asyncio = True  # create_async_engine accepts it, create_engine refuses it

    def _build_connections(self, options: dict[str, Any]) -> DriverBase:
        self._aconnections: AsyncConnectionPool[ConnectionRecord] = AsyncConnectionPool(
            _AsyncRecordConnector(self), **options
        )
        return self._aconnections

    def dispose(self) -> None:
        """Close the idle connections (waiting for their closes), busy ones on return."""
        super().dispose()
        if in_greenlet():
            _await(self._closes_done())

    async def _closes_done(self) -> None:
        deadline = time.monotonic() + DISPOSE_WAIT
        while self._kit.stats().closing and time.monotonic() < deadline:
            await asyncio.sleep(DISPOSE_POLL)

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            proxy = _await(self._aconnections.acquire())
        except PoolTimeout as exc:
            raise self._timeout_error(exc) from exc
        record: ConnectionRecord = proxy.raw
        self._leases[record] = proxy
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        proxy = self._leases.pop(record, None)
        if proxy is None:
            return
        if in_collection() or not in_greenlet():
            # Nowhere to await from (see the module docstring): poolkit's
            # lock-free path for unreleased connections closes it.
            del proxy
            return
        if invalidated(record):
            _await(self._aconnections.discard(proxy))
        else:
            _await(self._aconnections.release(proxy))
