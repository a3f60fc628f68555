# Generated from src/poolkit/connections/_pooled_async.py by scripts/gen_sync.py: do not edit.
# Change the source, then run `python scripts/gen_sync.py`.
"""What a pool hands out: its proxy classes, with ``close()`` and ``discard()``.

``PooledConnectionBase`` is the proxy's behaviour; ``PooledConnection``,
what a pool hands out by default, adds only a type: every name it forwards is
``Any`` to a type checker. A connector's ``proxy_class`` derives from
``PooledConnection`` at run time and may be typed as its driver's
connection class and ``PooledConnectionBase`` for type checkers (see
``_proxy.py`` and the adapters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from poolkit.connections._proxy import _ProxyBase

__all__ = ["PooledConnection", "PooledConnectionBase"]

C = TypeVar("C")


class PooledConnectionBase(_ProxyBase[C]):
    """What every proxy of a :class:`~poolkit.ConnectionPool` has.

    ``close()``, ``discard()``, :attr:`raw` and :attr:`released`, and no
    catch-all attribute for type checkers: the base a typed proxy names
    beside its driver's connection class.
    """

    __slots__ = ()

    def close(self) -> None:
        """Return the connection to its pool (the proxy is detached afterwards).

        Raises:
            ReleaseError: it was already returned.
        """
        self._pool.release(self)

    def discard(self) -> None:
        """Close the connection instead of giving it back (it is unusable).

        Raises:
            ReleaseError: it was already returned.
        """
        self._pool.discard(self)


class PooledConnection(PooledConnectionBase[C]):
    """A connection borrowed from a :class:`~poolkit.ConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # Forwarded names: their types are the connection's, unknown here.
        def __getattr__(self, name: str) -> Any: ...
