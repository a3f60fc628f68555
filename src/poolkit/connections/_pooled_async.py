"""What a pool hands out: its proxy class, with ``close()`` and ``discard()``."""

from __future__ import annotations

from typing import TypeVar

from poolkit.connections._proxy import _ProxyBase

__all__ = ["AsyncPooledConnection"]

C = TypeVar("C")


class AsyncPooledConnection(_ProxyBase[C]):
    """A connection borrowed from an :class:`~poolkit.AsyncConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

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
