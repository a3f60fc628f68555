"""What a pool hands out: its proxy classes, with ``close()`` and ``discard()``.

``AsyncPooledConnectionBase`` is the proxy's behaviour; ``AsyncPooledConnection``,
what a pool hands out by default, adds only a type: every name it forwards is
``Any`` to a type checker. A connector's ``proxy_class`` derives from
``AsyncPooledConnection`` at run time and may be typed as its driver's
connection class and ``AsyncPooledConnectionBase`` for type checkers (see
``_proxy.py`` and the adapters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from poolkit.connections._proxy import _ProxyBase

__all__ = ["AsyncPooledConnection", "AsyncPooledConnectionBase"]

C = TypeVar("C")


class AsyncPooledConnectionBase(_ProxyBase[C]):
    """What every proxy of an :class:`~poolkit.AsyncConnectionPool` has.

    ``close()``, ``discard()``, :attr:`raw` and :attr:`released`, and no
    catch-all attribute for type checkers: the base a typed proxy names
    beside its driver's connection class.
    """

    __slots__ = ()

    async def close(self) -> None:
        """Return the connection to its pool (the proxy is detached afterwards).

        Raises:
            ReleaseError: it was already returned.
        """
        await self._pool.release(self)

    async def discard(self) -> None:
        """Close the connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: it was already returned.
        """
        await self._pool.discard(self)


class AsyncPooledConnection(AsyncPooledConnectionBase[C]):
    """A connection borrowed from an :class:`~poolkit.AsyncConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # Forwarded names: their types are the connection's, unknown here.
        def __getattr__(self, name: str) -> Any: ...
