"""Guards for what a pooled DB-API connection hands out: cursors, and the error after give-back.

DB-API 2.0: once a connection is closed, it and every cursor it made raise the
driver's ``Error`` (or a subclass) on use. For a pooled connection "closed"
means "given back": the driver's connection lives on and may belong to another
caller, maybe another thread, by then. So a cursor taken from it is wrapped:
while its proxy holds the connection, everything goes to the driver's cursor;
after the give-back, any use raises :func:`detached_error`, an instance of the
driver's ``ProgrammingError`` that is also poolkit's
:class:`~poolkit.ConnectionDetached`.

The guard asks the pool's proxy (``PooledConnection``: ``_entry`` is None once
given back) on every call, so there is nothing to notify at give-back and no
list of live cursors to keep. Used by ``dbapi.DBPool`` and by the psycopg
connectors' proxies.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from poolkit._errors import ConnectionDetached

__all__ = ["AsyncPooledCursor", "PooledCursor", "detached_class", "detached_error", "wrap_cursor"]

# The class raised on use after give-back, per driver connection type (see
# detached_class). Bounded by the number of driver connection types a process uses.
_CLASS_FOR_KIND: dict[type, type[Exception]] = {}
# One class per driver error class, so a sync and an asyncio connection type of
# the same driver (psycopg.Connection, psycopg.AsyncConnection) share it.
_CLASS_FOR_BASE: dict[type, type[Exception]] = {}


def _driver_error_class(kind: type, conn: object) -> type[Exception] | None:
    """The driver's ProgrammingError (else InterfaceError, else Error), if it has one.

    From the DB-API optional extension (exception classes as connection
    attributes: ``sqlite3`` sets them on the instance, psycopg on the class),
    else from the module the connection's class lives in or any package above
    it (``psycopg.connection`` -> ``psycopg``).
    """
    names = ("ProgrammingError", "InterfaceError", "Error")
    parts = str(getattr(kind, "__module__", "") or "").split(".")
    sources: list[object] = [kind] if conn is None else [conn, kind]
    sources += [sys.modules.get(".".join(parts[:end])) for end in range(len(parts), 0, -1)]
    for name in names:
        for source in sources:
            cls = getattr(source, name, None) if source is not None else None
            if isinstance(cls, type) and issubclass(cls, Exception):
                return cls
    return None


def detached_class(kind: type, conn: object = None) -> type[Exception]:
    """The class raised when a ``kind`` connection (or its cursor) is used after give-back.

    DB-API says any operation on a closed connection or cursor raises the
    driver's ``Error`` (or a subclass); code that catches ``sqlite3.Error``
    or ``psycopg.Error`` must see it, and code that catches poolkit's
    :class:`~poolkit.ConnectionDetached` too, so the class derives from both.
    ProgrammingError: the caller's mistake, not a broken connection, so no
    ``is_broken`` rule discards an innocent connection over it (the message
    avoids the word "closed", which ``sqlite_is_broken`` reads as broken).

    Args:
        kind: the driver's connection class.
        conn: a connection of that class, for drivers that expose their
            exception classes on instances only (``sqlite3``).

    Returns:
        The class (plain :class:`~poolkit.ConnectionDetached` when the driver
        has no DB-API exception classes).
    """
    cls = _CLASS_FOR_KIND.get(kind)
    if cls is None:
        base = _driver_error_class(kind, conn)
        cls = ConnectionDetached
        if base is not None:
            cls = _CLASS_FOR_BASE.get(base) or cls
            if cls is ConnectionDetached:
                try:
                    cls = type(
                        f"Detached{base.__name__}",
                        (base, ConnectionDetached),
                        {"__module__": __name__, "__doc__": "Use after give-back (DB-API Error)."},
                    )
                except TypeError:  # incompatible layouts: the driver's class alone
                    cls = base
                _CLASS_FOR_BASE[base] = cls
        _CLASS_FOR_KIND[kind] = cls
    return cls


def detached_message(name: str) -> str:
    """The message of the error raised for ``.name`` used after give-back."""
    return (
        f"this pooled connection was given back to its pool, so .{name} is off limits "
        "(another caller may hold the connection now); borrow a new one"
    )


def detached_error(conn: object, name: str) -> Exception:
    """The error for ``.name`` used after give-back, of the driver's own class (see
    :func:`detached_class`)."""
    return detached_class(type(conn), conn)(detached_message(name))


def wrap_cursor(proxy: Any, raw: object, result: Any) -> Any:
    """Guard ``result`` if it is a cursor (``conn.execute()`` returns one on
    ``sqlite3`` and psycopg), else return it as is."""
    return PooledCursor(proxy, raw, result) if hasattr(result, "fetchone") else result


class _CursorGuard:
    """What both cursor guards share: the liveness test and attribute forwarding."""

    __slots__ = ("_cursor", "_proxy", "_raw")

    _proxy: Any
    _raw: object
    _cursor: Any

    def __init__(self, proxy: Any, raw: object, cursor: Any) -> None:
        # The slots' own setters: __setattr__ forwards to the cursor, and
        # object.__setattr__ costs twice a descriptor call (one guard per
        # execute() on a pooled psycopg connection).
        _set_proxy(self, proxy)
        _set_raw(self, raw)
        _set_cursor(self, cursor)

    def _live(self, name: str) -> Any:
        if self._proxy._entry is None:
            raise detached_error(self._raw, name)
        return self._cursor

    def __getattr__(self, name: str) -> Any:
        # description, rowcount, lastrowid, arraysize, driver extras...
        if name.startswith("__") or name in _CursorGuard.__slots__:
            raise AttributeError(name)
        return getattr(self._live(name), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._live(name), name, value)  # arraysize, row_factory...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._cursor!r}>"


_set_proxy: Callable[[Any, Any], None] = vars(_CursorGuard)["_proxy"].__set__
_set_raw: Callable[[Any, Any], None] = vars(_CursorGuard)["_raw"].__set__
_set_cursor: Callable[[Any, Any], None] = vars(_CursorGuard)["_cursor"].__set__


class PooledCursor(_CursorGuard):
    """A cursor of a pooled connection, unusable once the connection is given back.

    Everything goes to the driver's cursor while the connection is held; after
    the give-back any use raises the driver's ``ProgrammingError`` (also a
    :class:`~poolkit.ConnectionDetached`) instead of running on a connection
    that may belong to another thread by then. ``close()`` stays harmless.

    Args:
        proxy: the pool's proxy the connection was borrowed through (attached
            while its ``_entry`` is not None).
        raw: the driver's connection (for the error class).
        cursor: the driver's cursor.
    """

    __slots__ = ()

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run a statement (arguments go to the driver's ``execute``)."""
        cursor = self._live("execute")
        result = cursor.execute(*args, **kwargs)
        return self if result is cursor else result

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        """Run a statement for each parameter set (the driver's ``executemany``)."""
        cursor = self._live("executemany")
        result = cursor.executemany(*args, **kwargs)
        return self if result is cursor else result

    def fetchone(self) -> Any:
        """The next row, or None."""
        if self._proxy._entry is None:  # _live() inlined: the most frequent call
            raise detached_error(self._raw, "fetchone")
        return self._cursor.fetchone()

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        """The next rows (the driver's ``fetchmany``)."""
        return self._live("fetchmany").fetchmany(*args, **kwargs)

    def fetchall(self) -> Any:
        """All remaining rows."""
        return self._live("fetchall").fetchall()

    def close(self) -> None:
        """Close the cursor; after give-back there is nothing left to do."""
        if self._proxy._entry is not None:
            self._cursor.close()

    def __iter__(self) -> Iterator[Any]:
        cursor = self._live("__iter__")
        if hasattr(cursor, "__next__"):
            return self
        return self._rows(iter(cursor))  # a driver whose __iter__ is a generator

    def _rows(self, rows: Iterator[Any]) -> Iterator[Any]:
        while True:
            self._live("__next__")
            try:
                row = next(rows)
            except StopIteration:
                return
            yield row

    def __next__(self) -> Any:
        return next(self._live("__next__"))

    def __enter__(self) -> PooledCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPooledCursor(_CursorGuard):
    """The asyncio twin of :class:`PooledCursor` (psycopg's ``AsyncCursor``).

    ``execute``, ``executemany``, the fetches and ``close`` are coroutines, as
    the driver's are; ``async with`` and ``async for`` work as on the driver's
    cursor. After the give-back they raise the driver's ``ProgrammingError``.
    """

    __slots__ = ()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run a statement (arguments go to the driver's ``execute``)."""
        cursor = self._live("execute")
        result = await cursor.execute(*args, **kwargs)
        return self if result is cursor else result

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        """Run a statement for each parameter set (the driver's ``executemany``)."""
        cursor = self._live("executemany")
        result = await cursor.executemany(*args, **kwargs)
        return self if result is cursor else result

    async def fetchone(self) -> Any:
        """The next row, or None."""
        return await self._live("fetchone").fetchone()

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        """The next rows (the driver's ``fetchmany``)."""
        return await self._live("fetchmany").fetchmany(*args, **kwargs)

    async def fetchall(self) -> Any:
        """All remaining rows."""
        return await self._live("fetchall").fetchall()

    async def close(self) -> None:
        """Close the cursor; after give-back there is nothing left to do."""
        if self._proxy._entry is not None:
            await self._cursor.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        cursor = self._live("__aiter__")
        if hasattr(cursor, "__anext__"):
            return self
        return self._arows(aiter(cursor))  # a driver whose __aiter__ is a generator

    async def _arows(self, rows: AsyncIterator[Any]) -> AsyncIterator[Any]:
        while True:
            self._live("__anext__")
            try:
                row = await anext(rows)
            except StopAsyncIteration:
                return
            yield row

    async def __anext__(self) -> Any:
        return await self._live("__anext__").__anext__()

    async def __aenter__(self) -> AsyncPooledCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
