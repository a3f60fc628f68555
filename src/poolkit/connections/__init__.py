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
    from poolkit.connections._protocols import AsyncConnector, Connector
    from poolkit.connections._proxy import AsyncPooledConnection, PooledConnection
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

_EXPORTS = {
    "AsyncConnectionPool": "poolkit.connections._async",
    "KeyedConnectionPool": "poolkit.connections._keyed",
    "AsyncKeyedConnectionPool": "poolkit.connections._keyed_async",
    "Holder": "poolkit.connections._leaks",
    "AsyncConnector": "poolkit.connections._protocols",
    "Connector": "poolkit.connections._protocols",
    "AsyncPooledConnection": "poolkit.connections._proxy",
    "PooledConnection": "poolkit.connections._proxy",
    "CLOSE_REASONS": "poolkit.connections._stats",
    "ConnectionPoolStats": "poolkit.connections._stats",
    "ConnectionPool": "poolkit.connections._sync",
}


__dir__ = _lazy.listing(__name__, __all__)
if not TYPE_CHECKING:  # so that type checkers flag a misspelt name
    __getattr__ = _lazy.loader(__name__, _EXPORTS)
