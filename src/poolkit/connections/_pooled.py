# Generated from src/poolkit/connections/_pooled_async.py by scripts/gen_sync.py: do not edit.
# Change the source, then run `python scripts/gen_sync.py`.
"""What a pool hands out: its proxy class, with ``close()`` and ``discard()``."""

from __future__ import annotations

from typing import TypeVar

from poolkit.connections._proxy import _ProxyBase

__all__ = ["PooledConnection"]

C = TypeVar("C")


class PooledConnection(_ProxyBase[C]):
    """A connection borrowed from a :class:`~poolkit.ConnectionPool`.

    Attribute access is forwarded to the connection; use :attr:`raw` for the
    connection itself (typed).
    """

    __slots__ = ()

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
