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
- ``reset(conn)``: make the connection clean for the next user (roll back an
  open transaction), run on every return; an exception discards it.
- ``commit(conn)``: make the work done in a ``with pool.connection()`` block
  durable. Called with the raw connection when the block exits *without* an
  exception, before the connection is given back (then ``reset`` runs as on
  every return). If it raises, the exception propagates out of the ``with``
  statement and the connection is discarded when the error is broken
  (``is_broken``, or a ``BaseException`` that is not an ``Exception``, such as
  ``KeyboardInterrupt``) or else given back, where ``reset`` rolls back. A block
  left by an exception never commits (``reset`` rolls back on return, or the
  connection is discarded if the error broke it). ``acquire()``/``release()``
  and the proxy's ``close()`` never commit; neither does a forked child for a
  connection checked out in its parent.
- ``is_broken(exc) -> bool``: whether an exception raised while the connection
  was in use means the connection is unusable (database/sql ``ErrBadConn``) or
  not (gomemcache's resumable errors). Without it, any ``OSError`` counts as
  broken.
- ``proxy_class``: the class of what ``acquire()`` returns, a subclass of
  :class:`~poolkit.connections.PooledConnection` (its ``Async`` twin for an
  async pool) with no ``__init__`` (the pool sets its slots). It lets a
  connector guard what the connection hands out (the psycopg connectors' proxies guard cursors, so a
  cursor kept past the give-back raises instead of running on a connection
  someone else holds); connectors without one pay nothing for it. It also
  types what the pool hands out: a pool built on a connector with a
  ``proxy_class`` (:class:`ProxiedConnector`) is ``ConnectionPool[C, P]`` with
  ``P`` that class (the adapters' are typed as the driver's connection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from poolkit._errors import BadConnection
from poolkit.connections._pooled import PooledConnection
from poolkit.connections._pooled_async import AsyncPooledConnection

__all__ = [
    "AsyncConnector",
    "AsyncProxiedConnector",
    "Connector",
    "ConnectorHooks",
    "ProxiedConnector",
    "discover_hooks",
]

C = TypeVar("C")
P_co = TypeVar("P_co", covariant=True)


@runtime_checkable
class Connector(Protocol[C]):
    """Opens and closes connections for a :class:`~poolkit.ConnectionPool`.

    Optional methods, discovered by name when the pool is built:

    - ``check(conn) -> bool``: cheap liveness test at every checkout (must not block).
    - ``ping(conn)``: a round trip at checkout after ``ping_after`` seconds idle.
    - ``reset(conn)``: clean the connection on every return (roll back).
    - ``commit(conn)``: called by ``with pool.connection()`` when the block
      exits normally, before giving the connection back; an error propagates
      (and discards the connection when broken). Never called by
      ``acquire()``/``release()``.
    - ``is_broken(exc) -> bool``: whether an error raised in use broke the connection.

    The module docstring has the details.
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

    ``create``, ``close``, ``ping``, ``reset`` and the optional
    ``async def commit(conn)`` are coroutines; ``check`` and ``is_broken`` are
    plain functions (they must not wait). The optional methods mean what they
    mean for :class:`Connector`: ``async with pool.connection()`` awaits
    ``commit(conn)`` when the block exits normally.
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


class ProxiedConnector(Connector[C], Protocol[C, P_co]):
    """A :class:`Connector` with a ``proxy_class``: for type checkers, a pool
    built on it hands out ``P_co`` (the adapters' typed proxies)."""

    @property
    def proxy_class(self) -> type[P_co]:
        """The class of what ``acquire()`` returns."""
        ...


class AsyncProxiedConnector(AsyncConnector[C], Protocol[C, P_co]):
    """An :class:`AsyncConnector` with a ``proxy_class`` (see :class:`ProxiedConnector`)."""

    @property
    def proxy_class(self) -> type[P_co]:
        """The class of what ``acquire()`` returns."""
        ...


class ConnectorHooks:
    """The optional methods a connector has, looked up once."""

    __slots__ = ("check", "commit", "is_broken", "ping", "proxy_class", "reset")

    def __init__(
        self,
        check: Callable[[Any], object] | None,
        ping: Callable[[Any], Any] | None,
        reset: Callable[[Any], Any] | None,
        is_broken: Callable[[BaseException], object] | None,
        commit: Callable[[Any], Any] | None = None,
        proxy_class: Any = None,
    ) -> None:
        self.check = check
        # The proxy class acquire() builds (the default one when None is given).
        self.proxy_class: Any = proxy_class
        self.ping = ping
        self.reset = reset
        self.is_broken = is_broken
        self.commit = commit

    def broken(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised while a connection was in use, broke it.

        The one policy of both pools: a ``BaseException`` that is not an
        ``Exception`` (``KeyboardInterrupt``, a cancellation) always does, as
        half a request may be on the wire, and so does
        :class:`~poolkit.BadConnection` (its raiser found it dead); otherwise the connector's
        ``is_broken`` decides, and without one any ``OSError`` does.
        """
        if not isinstance(exc, Exception) or isinstance(exc, BadConnection):
            return True
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
    for name in ("check", "ping", "reset", "is_broken", "commit"):
        method = getattr(connector, name, None)
        if method is not None and not callable(method):
            raise TypeError(f"connector.{name} must be callable, got {type(method).__name__}")
        found[name] = method
    base: type = AsyncPooledConnection if is_async else PooledConnection
    proxy_class = getattr(connector, "proxy_class", None)
    if proxy_class is None:
        proxy_class = base
    elif not (isinstance(proxy_class, type) and issubclass(proxy_class, base)):
        raise TypeError(
            f"connector.proxy_class must be a subclass of {base.__name__}, got {proxy_class!r}"
        )
    return ConnectorHooks(
        found["check"],
        found["ping"],
        found["reset"],
        found["is_broken"],
        found["commit"],
        proxy_class,
    )
