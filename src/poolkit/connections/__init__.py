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
    from poolkit.connections._options import ConnectionPoolOptions, KeyOptions
    from poolkit.connections._pooled import PooledConnection, PooledConnectionBase
    from poolkit.connections._pooled_async import AsyncPooledConnection, AsyncPooledConnectionBase
    from poolkit.connections._protocols import (
        AsyncConnector,
        AsyncProxiedConnector,
        Connector,
        ProxiedConnector,
    )
    from poolkit.connections._stats import CLOSE_REASONS, ConnectionPoolStats
    from poolkit.connections._sync import ConnectionPool

__all__ = [
    "CLOSE_REASONS",
    "AsyncConnectionPool",
    "AsyncConnector",
    "AsyncKeyedConnectionPool",
    "AsyncPooledConnection",
    "AsyncPooledConnectionBase",
    "AsyncProxiedConnector",
    "ConnectionPool",
    "ConnectionPoolOptions",
    "ConnectionPoolStats",
    "Connector",
    "Holder",
    "KeyOptions",
    "KeyedConnectionPool",
    "PooledConnection",
    "PooledConnectionBase",
    "ProxiedConnector",
]

# Each module and the public names it defines, imported on first use.
_EXPORTS = {
    "poolkit.connections._async": ("AsyncConnectionPool",),
    "poolkit.connections._keyed": ("KeyedConnectionPool",),
    "poolkit.connections._keyed_async": ("AsyncKeyedConnectionPool",),
    "poolkit.connections._leaks": ("Holder",),
    "poolkit.connections._options": ("ConnectionPoolOptions", "KeyOptions"),
    "poolkit.connections._protocols": (
        "AsyncConnector",
        "AsyncProxiedConnector",
        "Connector",
        "ProxiedConnector",
    ),
    "poolkit.connections._pooled": ("PooledConnection", "PooledConnectionBase"),
    "poolkit.connections._pooled_async": ("AsyncPooledConnection", "AsyncPooledConnectionBase"),
    "poolkit.connections._stats": ("CLOSE_REASONS", "ConnectionPoolStats"),
    "poolkit.connections._sync": ("ConnectionPool",),
}

_lazy.install(__name__, _EXPORTS)
