"""What the user holds: a proxy to a pooled connection.

The proxy forwards attribute access to the connection, so ``sock.sendall(...)``
works through it. Its ``close()`` returns the connection to the pool (as
fatih/pool's ``PoolConn.Close``) and ``discard()`` closes it for good (fatih's
``MarkUnusable``). After either, the proxy is detached: any use raises
:class:`~poolkit.ConnectionDetached` instead of touching a connection that
someone else may hold by then (as asyncpg's proxies do).

A proxy dropped without release is caught by its finalizer: the pool is told,
closes the connection and warns (:class:`~poolkit.LeakWarning`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from poolkit._errors import ConnectionDetached

if TYPE_CHECKING:
    from poolkit.connections._async import AsyncConnectionPool
    from poolkit.connections._core import Entry
    from poolkit.connections._sync import ConnectionPool

__all__ = ["AsyncPooledConnection", "PooledConnection"]

C = TypeVar("C")


def _detached(name: str) -> ConnectionDetached:
    return ConnectionDetached(
        f"this pooled connection was already returned to its pool, so .{name} is "
        "off limits (another caller may hold the connection now); acquire a new one"
    )


class _ProxyBase(Generic[C]):
    __slots__ = ("__weakref__", "_entry", "_pool")

    _entry: Entry | None

    @property
    def raw(self) -> C:
        """The underlying connection (do not keep it past release).

        Raises:
            ConnectionDetached: the proxy was released or discarded.
        """
        entry = self._entry
        if entry is None:
            raise _detached("raw")
        conn: C = entry.conn
        return conn

    @property
    def released(self) -> bool:
        """True once the proxy gave its connection back (or discarded it)."""
        return self._entry is None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_entry", "_pool"):
            raise AttributeError(name)
        entry = self._entry
        if entry is None:
            raise _detached(name)
        return getattr(entry.conn, name)

    def __del__(self) -> None:
        try:
            entry = self._entry
        except AttributeError:  # __init__ never ran
            return
        if entry is not None:
            self._entry = None
            self._pool._dropped(entry)

    def __repr__(self) -> str:
        entry = self._entry
        state = "released" if entry is None else repr(entry.conn)
        return f"<{type(self).__name__} {state}>"


class PooledConnection(_ProxyBase[C]):
    """A connection borrowed from a :class:`~poolkit.ConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

    def __init__(self, pool: ConnectionPool[C], entry: Entry) -> None:
        self._entry = entry
        self._pool: Any = pool

    def close(self) -> None:
        """Return the connection to its pool (the proxy is detached afterwards).

        Raises:
            ReleaseError: it was already returned.
        """
        self._pool.release(self)

    def discard(self) -> None:
        """Close the connection instead of returning it (it is unusable).

        Raises:
            ReleaseError: it was already returned.
        """
        self._pool.discard(self)


class AsyncPooledConnection(_ProxyBase[C]):
    """A connection borrowed from an :class:`~poolkit.AsyncConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

    def __init__(self, pool: AsyncConnectionPool[C], entry: Entry) -> None:
        self._entry = entry
        self._pool: Any = pool

    async def close(self) -> None:
        """Return the connection to its pool (the proxy is detached afterwards).

        Raises:
            ReleaseError: it was already returned.
        """
        await self._pool.release(self)

    async def discard(self) -> None:
        """Close the connection instead of returning it (it is unusable).

        Raises:
            ReleaseError: it was already returned.
        """
        await self._pool.discard(self)
