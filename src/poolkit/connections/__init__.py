"""Connection pools: sync and asyncio twins over one sans-io core, and keyed pools."""

from __future__ import annotations

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
