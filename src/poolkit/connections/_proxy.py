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
(:data:`set_bound`, :data:`set_pool`), not through ``__setattr__``: that one
forwards to the connection, and as a Python-level method it would add a
function call to every acquire and release.

Reuse: a released proxy is kept by its connection's entry (``Entry.proxy``)
and handed out again by the next lease of that connection, when nothing else
refers to it. Making a proxy and letting it go (its ``__del__`` included) was
about 40 % of an uncontended acquire+release. Reuse never weakens the
use-after-release rule: a proxy is reused only when the entry holds the one
reference to it (``sys.getrefcount``, whose baseline is measured at import,
:data:`SOLE_REFS`) and no weak reference points to it, so no caller, cursor
guard, lease or weak reference can reach it from its previous lease. While
leased, the entry does not hold it, so a proxy dropped unreleased still dies
and its finalizer reports the leak. Where reference counts are not exact or
not there (a free-threaded build, PyPy), proxies are not reused; nor are those
of a class that could carry state from one lease to the next (a ``__dict__``
or slots of its own, :func:`reusable_class`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from weakref import getweakrefcount

from poolkit._errors import ConnectionDetached

if TYPE_CHECKING:
    from poolkit.connections._core import Entry

__all__ = [
    "SOLE_REFS",
    "attach",
    "bind",
    "getweakrefcount",
    "refcount",
    "reusable_class",
    "set_bound",
    "set_pool",
]

C = TypeVar("C")
P = TypeVar("P", bound="_ProxyBase[Any]")


def _detached(name: str) -> ConnectionDetached:
    return ConnectionDetached(
        f"this pooled connection was already returned to its pool, so .{name} is "
        "off limits (another caller may hold the connection now); acquire a new one"
    )


# The proxy's own attributes; every other name is the connection's.
_OWN = frozenset({"_bound", "_entry", "_pool"})


class _ProxyBase(Generic[C]):
    # _bound: the entry this proxy was made for (None once another proxy took
    # its place, see attach()). It holds the connection while the entry's
    # ``proxy`` is None, i.e. leased; once given back, the entry keeps this
    # proxy (for reuse) and the proxy is detached. Neither slot changes on a
    # lease that reuses the proxy: detaching is one attribute store on the
    # entry instead of a slot descriptor call on the proxy.
    __slots__ = ("__weakref__", "_bound", "_pool")

    _bound: Entry | None
    _pool: Any

    @property
    def _entry(self) -> Entry | None:
        """The entry while this proxy holds it; None once released or discarded."""
        entry = self._bound
        if entry is None or entry.proxy is not None:
            return None
        return entry

    @_entry.setter
    def _entry(self, entry: Entry | None) -> None:
        # None detaches the proxy without a give-back (a test letting a proxy
        # of a dead event loop go quietly).
        set_bound(self, entry)

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
        entry = self._bound
        if entry is None or entry.proxy is not None:
            raise self._gone("raw")
        conn: C = entry.conn
        return conn

    @property
    def released(self) -> bool:
        """True once the proxy gave its connection back (or discarded it)."""
        entry = self._bound
        return entry is None or entry.proxy is not None

    if not TYPE_CHECKING:
        # Hidden from type checkers: a typed proxy (an adapter's) must not
        # turn a misspelt name into Any. PooledConnection declares it for them.

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name in _OWN:
                raise AttributeError(name)
            entry = self._bound
            if entry is None or entry.proxy is not None:
                raise self._gone(name)
            return getattr(entry.conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # conn.autocommit = True, sock.timeout = ...: the connection's.
        if name in _OWN:
            object.__setattr__(self, name, value)
            return
        entry = self._bound
        if entry is None or entry.proxy is not None:
            raise self._gone(name)
        setattr(entry.conn, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _OWN:
            object.__delattr__(self, name)
            return
        entry = self._bound
        if entry is None or entry.proxy is not None:
            raise self._gone(name)
        delattr(entry.conn, name)

    def __del__(self) -> None:
        # Dropped while leased: a leak. (A released proxy is either kept by
        # its entry, so it does not die before it, or no longer bound.)
        try:
            entry = self._bound
        except AttributeError:  # never attached
            return
        if entry is not None and entry.proxy is None:
            set_bound(self, None)
            self._pool._dropped(entry)

    def __repr__(self) -> str:
        entry = self._bound
        state = "released" if entry is None or entry.proxy is not None else repr(entry.conn)
        return f"<{type(self).__name__} {state}>"


# The slots' own setters (member descriptors), bypassing the forwarding
# __setattr__ (a Python call, ~150 ns). They run when a proxy is made (or
# replaced), not on a lease that reuses one.
set_bound: Callable[[Any, Entry | None], None] = vars(_ProxyBase)["_bound"].__set__
set_pool: Callable[[Any, Any], None] = vars(_ProxyBase)["_pool"].__set__


class _Holder:
    __slots__ = ("proxy",)

    proxy: object


def _sole_refs() -> int:
    """What ``refcount(entry.proxy)`` returns when the entry holds the only
    reference (the call's argument adds its own; interpreters differ), or -1
    where reference counts cannot tell (proxies are then never reused)."""
    getrefcount = getattr(sys, "getrefcount", None)
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if getrefcount is None or (gil_enabled is not None and not gil_enabled()):
        return -1
    holder = _Holder()
    holder.proxy = _Holder()
    # The very expression the pools test, so that the baseline is theirs.
    refs: int = getrefcount(holder.proxy)
    return refs


def _no_refcount(obj: object) -> int:
    return -2  # never SOLE_REFS


# refcount(entry.proxy) == SOLE_REFS: the entry holds the proxy's only reference.
refcount: Callable[[object], int] = getattr(sys, "getrefcount", _no_refcount)
SOLE_REFS = _sole_refs()


def reusable_class(proxy_class: type) -> bool:
    """Whether proxies of ``proxy_class`` may be reused: no ``__dict__`` and no
    slots beyond the base's, so a lease leaves nothing behind for the next."""
    return (
        SOLE_REFS > 0
        and proxy_class.__dictoffset__ == 0
        and proxy_class.__basicsize__ == _ProxyBase.__basicsize__
    )


def attach(proxy_class: type[P], pool: Any, entry: Entry, sole_refs: int = SOLE_REFS) -> P:
    """A proxy of ``proxy_class`` holding ``entry`` (just checked out) for ``pool``.

    The entry's released proxy when it may be reused (see the module: its
    only reference is the entry's, ``sole_refs`` being the pool's baseline,
    -1 when it never reuses), else a new one. Proxies have no ``__init__``:
    ``proxy_class()`` is a C-level call, and the slots are set through their
    descriptors. A Python ``__init__`` would itself be a call and would have
    to go around ``__setattr__`` the same way. The pools inline the reuse on
    their fast paths.
    """
    if refcount(entry.proxy) == sole_refs and not getweakrefcount(entry.proxy):
        proxy: P = entry.proxy
        entry.proxy = None  # leased: the caller holds the only reference
        return proxy
    return bind(proxy_class, pool, entry)


def bind(proxy_class: type[P], pool: Any, entry: Entry) -> P:
    """A new proxy of ``proxy_class`` holding ``entry`` (checked out) for ``pool``.

    A released proxy the entry kept, still referenced elsewhere, is unbound
    first: it must stay detached now that the entry is leased again.
    """
    proxy = proxy_class()
    set_pool(proxy, pool)  # first: a bound proxy always has its pool
    set_bound(proxy, entry)
    old = entry.proxy
    if old is not None:
        set_bound(old, None)  # before the store below re-leases the entry
        entry.proxy = None
    return proxy
