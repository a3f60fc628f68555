"""Connectors for real clients, one module each, imported on demand.

``poolkit.adapters.sockets``: TCP and Unix sockets, sync and asyncio. Nothing is
imported here, so a connector's client library is only loaded when its module is.

- ``poolkit.adapters.dbapi``: any DB-API 2.0 driver; ``sqlite_pool`` for SQLite files.
- ``poolkit.adapters.psycopg``: psycopg 3, sync and asyncio (``poolkit[postgres]``).
- ``poolkit.adapters.http``: ``HTTPPool``, HTTP/1.1 keep-alive over ``http.client``.
- ``poolkit.adapters.memcache``: ``MemcacheClient`` over pymemcache (``poolkit[memcache]``).
"""

from __future__ import annotations

__all__: list[str] = []
