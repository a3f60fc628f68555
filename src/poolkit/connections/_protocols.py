"""What a pool needs to know about a connection: the connector protocols.

A connector tells the pool how to ``create()`` a connection and ``close()`` it.
Everything else is optional and discovered by attribute lookup once, when the
pool is built, so a connector is any object with the right methods (no base
class to inherit):

- ``check(conn) -> bool``: cheap liveness test run at every checkout (a
  non-blocking peek on a socket). Synchronous in both protocols because it must
  not wait: False (or an exception) discards the connection.
- ``ping(conn)``: a round trip, run at checkout only when the connection sat
  idle longer than the pool's ``ping_after``. False or an exception discards it.
- ``reset(conn)``: make the connection clean for the next user, run on return;
  an exception discards it.
- ``is_broken(exc) -> bool``: whether an exception raised while the connection
  was in use means the connection is unusable (database/sql ``ErrBadConn``) or
  not (gomemcache's resumable errors). Without it, any ``OSError`` counts as
  broken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["AsyncConnector", "Connector", "ConnectorHooks", "discover_hooks"]

C = TypeVar("C")


@runtime_checkable
class Connector(Protocol[C]):
    """Opens and closes connections for a :class:`~poolkit.ConnectionPool`.

    Optional methods (``check``, ``ping``, ``reset``, ``is_broken``) are
    described in the module docstring.
    """

    def create(self) -> C:
        """Open a new connection.

        Returns:
            The connection.

        Raises:
            Exception: any failure; the pool counts it and retries with backoff.
        """
        ...

    def close(self, conn: C) -> None:
        """Close ``conn``; exceptions are logged and otherwise ignored."""
        ...


@runtime_checkable
class AsyncConnector(Protocol[C]):
    """Opens and closes connections for an :class:`~poolkit.AsyncConnectionPool`.

    ``create``, ``close``, ``ping`` and ``reset`` are coroutines; ``check`` and
    ``is_broken`` are plain functions (they must not wait).
    """

    async def create(self) -> C:
        """Open a new connection.

        Returns:
            The connection.

        Raises:
            Exception: any failure; the pool counts it and retries with backoff.
        """
        ...

    async def close(self, conn: C) -> None:
        """Close ``conn``; exceptions are logged and otherwise ignored."""
        ...


class ConnectorHooks:
    """The optional methods a connector has, looked up once."""

    __slots__ = ("check", "is_broken", "ping", "reset")

    def __init__(
        self,
        check: Callable[[Any], object] | None,
        ping: Callable[[Any], Any] | None,
        reset: Callable[[Any], Any] | None,
        is_broken: Callable[[BaseException], object] | None,
    ) -> None:
        self.check = check
        self.ping = ping
        self.reset = reset
        self.is_broken = is_broken

    def broken(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised while a connection was in use, broke it."""
        if self.is_broken is None:
            return isinstance(exc, OSError)
        return bool(self.is_broken(exc))


def discover_hooks(connector: object, *, is_async: bool) -> ConnectorHooks:
    """Validate ``connector`` and collect its optional methods.

    Raises:
        TypeError: ``create`` or ``close`` is missing, or an optional attribute
            is present but not callable.
    """
    kind = "AsyncConnector" if is_async else "Connector"
    for name in ("create", "close"):
        if not callable(getattr(connector, name, None)):
            raise TypeError(
                f"connector must have a callable {name}() (the {kind} protocol), "
                f"got {type(connector).__name__}"
            )
    found: dict[str, Any] = {}
    for name in ("check", "ping", "reset", "is_broken"):
        method = getattr(connector, name, None)
        if method is not None and not callable(method):
            raise TypeError(f"connector.{name} must be callable, got {type(method).__name__}")
        found[name] = method
    return ConnectorHooks(found["check"], found["ping"], found["reset"], found["is_broken"])
