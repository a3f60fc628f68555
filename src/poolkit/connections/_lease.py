"""``pool.connection()``: the context managers that acquire and always give back.

On an exception the connector calls broken (``is_broken``; by default any
``OSError``) the connection is discarded instead of returned; an async block
cancelled mid-use discards it too, since half a request may be on the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from poolkit.connections._async import AsyncConnectionPool
    from poolkit.connections._proxy import AsyncPooledConnection, PooledConnection
    from poolkit.connections._sync import ConnectionPool

__all__ = ["AsyncLease", "Lease"]

C = TypeVar("C")


class Lease(Generic[C]):
    """``pool.connection()``: acquire on entry, release (or discard) on exit."""

    __slots__ = ("_pool", "_proxy", "_timeout")

    def __init__(self, pool: ConnectionPool[C], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    def __enter__(self) -> PooledConnection[C]:
        self._proxy = self._pool.acquire(self._timeout)
        return self._proxy

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        proxy = self._proxy
        if proxy._entry is None:
            return  # released or discarded inside the block
        if exc is not None and (not isinstance(exc, Exception) or self._pool._hooks.broken(exc)):
            # Broken, or interrupted mid-use (the wire may hold half a request).
            self._pool.discard(proxy, "broken")
        else:
            self._pool.release(proxy)


class AsyncLease(Generic[C]):
    """``pool.connection()``: acquire on entry, release (or discard) on exit."""

    __slots__ = ("_pool", "_proxy", "_timeout")

    def __init__(self, pool: AsyncConnectionPool[C], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    async def __aenter__(self) -> AsyncPooledConnection[C]:
        self._proxy = await self._pool.acquire(self._timeout)
        return self._proxy

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        proxy = self._proxy
        if proxy._entry is None:
            return
        if exc is not None and (not isinstance(exc, Exception) or self._pool._hooks.broken(exc)):
            # Broken, or cancelled mid-use (the wire may hold half a request).
            await self._pool.discard(proxy, "broken")
        else:
            await self._pool.release(proxy)
