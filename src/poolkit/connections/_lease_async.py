"""``pool.connection()``: the context manager that acquires and always gives back.

Leaving the block:

- normally: the connector's ``commit(conn)``, if it has one, runs first (the
  work of the block is made durable, as psycopg_pool's ``connection()`` does),
  then the connection is given back. If ``commit`` raises, the error
  propagates; the connection is discarded when the error broke it (the
  connector's ``is_broken``, or a ``BaseException`` that is not an
  ``Exception``), else given back, where ``reset`` rolls back.
- by an exception: never commits. The connection is given back (``reset``
  rolls back), or discarded when the connector calls the error broken (by
  default any ``OSError``); a block left by ``KeyboardInterrupt`` (or an async
  block cancelled mid-use) discards it too, since half a request may be on
  the wire.
- in a forked child, for a connection checked out in the parent: nothing is
  called at all; the child forgets the connection (``poolkit._fork``).

Which errors break a connection is decided in one place,
``ConnectorHooks.broken`` (``_protocols.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from poolkit.connections._async import AsyncConnectionPool
    from poolkit.connections._pooled_async import AsyncPooledConnectionBase

__all__ = ["AsyncLease", "async_end_use"]

# What the pool hands out: an AsyncPooledConnection, or the connector's typed proxy.
P = TypeVar("P", bound="AsyncPooledConnectionBase[Any]")


class AsyncLease(Generic[P]):
    """``pool.connection()``: acquire on entry; commit, release (or discard) on exit."""

    __slots__ = ("_pool", "_proxy", "_timeout")

    def __init__(self, pool: AsyncConnectionPool[Any, P], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    async def __aenter__(self) -> P:
        self._proxy = await self._pool.acquire(self._timeout)
        return self._proxy

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        pool, proxy = self._pool, self._proxy
        entry = proxy._bound
        if exc is None and entry is not None and entry.proxy is None and pool._hooks.commit is None:
            # async_end_use()'s common case without its call: a clean exit,
            # still held, nothing to commit.
            await pool.release(proxy)
            return
        await async_end_use(pool, proxy, exc)


async def async_end_use(
    pool: AsyncConnectionPool[Any, P], proxy: P, exc: BaseException | None
) -> None:
    """Leave a use of ``proxy`` that ended with ``exc`` (None: normally), as the module says.

    ``connection()`` blocks and ``run()`` end by this one rule.
    """
    entry = proxy._bound
    if entry is None or entry.proxy is not None:
        return  # released or discarded inside the block
    if pool._foreign(entry):
        await pool.release(proxy)  # forgets the parent's connection, calls nothing
        return
    hooks = pool._hooks
    if exc is not None:
        if hooks.broken(exc):
            # Broken, or interrupted mid-use (the wire may hold half a request).
            await pool.discard(proxy, "broken")
        else:
            await pool.release(proxy)
        return
    if hooks.commit is not None:
        try:
            await hooks.commit(entry.conn)
        except BaseException as err:
            # Interrupted mid-commit too: the transaction's fate is unknown.
            if hooks.broken(err):
                await pool.discard(proxy, "broken")
            else:
                await pool.release(proxy)
            raise
    await pool.release(proxy)
