"""Connectors for real clients, one module each, imported on demand.

``poolkit.adapters.sockets``: TCP and Unix sockets, sync and asyncio. Nothing is
imported here, so a connector's client library is only loaded when its module is.
"""

from __future__ import annotations

__all__: list[str] = []
