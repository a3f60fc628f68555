"""Connection pools: sync and asyncio twins over one sans-io core, and keyed pools.

Names load on first use, so the sync pools do not import asyncio.
"""

from __future__ import annotations

from poolkit import _lazy

TYPE_CHECKING = False  # see poolkit/__init__.py: typing is not imported at run time
if TYPE_CHECKING:
    from poolkit.connections._async import AsyncConnectionPool
    from poolkit.connections._keyed import KeyedConnectionPool
    from poolkit.connections._keyed_async import AsyncKeyedConnectionPool
    from poolkit.connections._leaks import Holder
    from poolkit.connections._pooled import PooledConnection
    from poolkit.connections._pooled_async import AsyncPooledConnection
    from poolkit.connections._protocols import AsyncConnector, Connector
    from poolkit.connections._stats import CLOSE_REASONS, ConnectionPoolStats
    from poolkit.connections._sync import ConnectionPool

__all__ = [
    "CLOSE_REASONS",
    "AsyncConnectionPool",
    "AsyncConnector",
    "AsyncKeyedConnectionPool",
    "AsyncPooledConnection",
    "ConnectionPool",
    "ConnectionPoolStats",
    "Connector",
    "Holder",
    "KeyedConnectionPool",
    "PooledConnection",
]

# Each module and the public names it defines, imported on first use.
_EXPORTS = {
    "poolkit.connections._async": ("AsyncConnectionPool",),
    "poolkit.connections._keyed": ("KeyedConnectionPool",),
    "poolkit.connections._keyed_async": ("AsyncKeyedConnectionPool",),
    "poolkit.connections._leaks": ("Holder",),
    "poolkit.connections._protocols": ("AsyncConnector", "Connector"),
    "poolkit.connections._pooled": ("PooledConnection",),
    "poolkit.connections._pooled_async": ("AsyncPooledConnection",),
    "poolkit.connections._stats": ("CLOSE_REASONS", "ConnectionPoolStats"),
    "poolkit.connections._sync": ("ConnectionPool",),
}

_lazy.install(__name__, _EXPORTS)
