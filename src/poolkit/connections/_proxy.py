"""What the user holds: a proxy to a pooled connection (the part both worlds share).

The two proxy classes, ``PooledConnection`` and ``AsyncPooledConnection``,
differ only in ``close()``/``discard()``; they live in ``_pooled_async.py``
and the ``_pooled.py`` generated from it.

The proxy forwards attribute access to the connection, reads and writes, so
``sock.sendall(...)`` and ``conn.autocommit = True`` work through it. Its
``close()`` returns the connection to the pool (as fatih/pool's
``PoolConn.Close``) and ``discard()`` closes it for good (fatih's
``MarkUnusable``). After either, the proxy is detached: any use raises
:class:`~poolkit.ConnectionDetached` instead of touching a connection that
someone else may hold by then (as asyncpg's proxies do).

A proxy dropped without release is caught by its finalizer: the pool is told,
closes the connection and warns (:class:`~poolkit.LeakWarning`).

A connector may name its own proxy class (``proxy_class``, a subclass of these)
to guard what the connection hands out: the psycopg connectors' proxies wrap
cursors so that a cursor kept past the give-back raises instead of running on
a connection someone else holds (DB-API 2.0's closed-connection rule).

Types: ``PooledConnection[C]`` forwards any attribute, so a type checker sees
each forwarded name as ``Any`` (``raw`` is the typed way to the connection).
The adapters' proxies are typed as the driver's connection instead: for a type
checker they derive from the driver's class and from ``PooledConnectionBase``
(``close``, ``discard``, ``raw``, ``released``, and no catch-all), so
``conn.execute(...)`` has psycopg's types and a misspelt name is an error. At
run time they derive from ``PooledConnection`` and forward as every proxy
does; each implements the special methods its driver's type promises
(``with conn:``, iteration), which attribute forwarding cannot reach.

The pools assign the proxy's two slots through the slot descriptors
(:data:`set_entry`, :data:`set_pool`), not through ``__setattr__``: that one
forwards to the connection, and as a Python-level method it would add a
function call to every acquire and release.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from poolkit._errors import ConnectionDetached

if TYPE_CHECKING:
    from poolkit.connections._core import Entry

__all__ = ["attach", "set_entry", "set_pool"]

C = TypeVar("C")
P = TypeVar("P", bound="_ProxyBase[Any]")


def _detached(name: str) -> ConnectionDetached:
    return ConnectionDetached(
        f"this pooled connection was already returned to its pool, so .{name} is "
        "off limits (another caller may hold the connection now); acquire a new one"
    )


# The proxy's own attributes; every other name is the connection's.
_OWN = frozenset({"_entry", "_pool"})


class _ProxyBase(Generic[C]):
    __slots__ = ("__weakref__", "_entry", "_pool")

    _entry: Entry | None
    _pool: Any

    def _gone(self, name: str) -> Exception:
        """The error for ``.name`` used after the give-back (a subclass may
        raise the driver's own class, as DB-API asks)."""
        return _detached(name)

    @property
    def raw(self) -> C:
        """The underlying connection (do not keep it past release).

        Raises:
            ConnectionDetached: the proxy was released or discarded.
        """
        entry = self._entry
        if entry is None:
            raise self._gone("raw")
        conn: C = entry.conn
        return conn

    @property
    def released(self) -> bool:
        """True once the proxy gave its connection back (or discarded it)."""
        return self._entry is None

    if not TYPE_CHECKING:
        # Hidden from type checkers: a typed proxy (an adapter's) must not
        # turn a misspelt name into Any. PooledConnection declares it for them.

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name in _OWN:
                raise AttributeError(name)
            entry = self._entry
            if entry is None:
                raise self._gone(name)
            return getattr(entry.conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # conn.autocommit = True, sock.timeout = ...: the connection's.
        if name in _OWN:
            object.__setattr__(self, name, value)
            return
        entry = self._entry
        if entry is None:
            raise self._gone(name)
        setattr(entry.conn, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _OWN:
            object.__delattr__(self, name)
            return
        entry = self._entry
        if entry is None:
            raise self._gone(name)
        delattr(entry.conn, name)

    def __del__(self) -> None:
        try:
            entry = self._entry
        except AttributeError:  # never attached
            return
        if entry is not None:
            set_entry(self, None)
            self._pool._dropped(entry)

    def __repr__(self) -> str:
        entry = self._entry
        state = "released" if entry is None else repr(entry.conn)
        return f"<{type(self).__name__} {state}>"


# The slots' own setters (member descriptors), bypassing the forwarding
# __setattr__ (a Python call, ~150 ns). set_entry(proxy, None) costs about half
# of object.__setattr__(proxy, "_entry", None); it runs on every release.
set_entry: Callable[[Any, Entry | None], None] = vars(_ProxyBase)["_entry"].__set__
set_pool: Callable[[Any, Any], None] = vars(_ProxyBase)["_pool"].__set__


def attach(proxy_class: type[P], pool: Any, entry: Entry) -> P:
    """A new proxy of ``proxy_class`` holding ``entry`` for ``pool``.

    Proxies have no ``__init__``: ``proxy_class()`` is a C-level call, and the
    two slots are set through their descriptors. A Python ``__init__`` would
    itself be a call and would have to go around ``__setattr__`` the same way
    (measured: ~40 ns more per acquire). The pools inline these lines on their
    fast paths.
    """
    proxy = proxy_class()
    set_pool(proxy, pool)  # first: a proxy with an entry always has its pool
    set_entry(proxy, entry)
    return proxy
