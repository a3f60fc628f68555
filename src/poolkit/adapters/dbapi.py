"""DB-API 2.0 connections in a pool: a connector for any driver, and SQLite's defaults.

database/sql's contract, for Python drivers::

    import sqlite3
    from poolkit.adapters import dbapi

    db = dbapi.sqlite_pool("app.db", max_size=4)
    with db.connection() as conn:          # commits on success, rolls back on error
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    db.execute("INSERT INTO t VALUES (?)", (1,))        # one statement, committed
    rows = db.fetchall("SELECT x FROM t", retry="idempotent")

What the connector does for the pool:

- ``create``: ``connect(*args, **kwargs)``, then the optional ``configure(conn)``
  (psycopg_pool's ``configure``, asyncpg's ``init``).
- ``commit`` when a ``with pool.connection()`` block exits normally (commit on
  success; an exception in the block rolls back instead): nothing is sent when
  the driver says no transaction is open or the connection is in autocommit.
- ``reset`` on return: roll back whatever the holder left uncommitted (DB-API:
  closing without a commit rolls back), then the optional ``reset(conn)``
  (database/sql ``ResetSession``). A connection that fails to roll back is
  discarded by the pool.
- ``ping``: a trivial query (``SELECT 1``), run at checkout only when the pool's
  ``ping_after`` says the connection sat idle long enough (SQLAlchemy's
  ``pre_ping``, DBUtils' ``ping``).
- ``is_broken``: from the driver's own exception classes. ``OperationalError``
  and ``InterfaceError`` (the server went away, the connection is closed) break
  it; ``ProgrammingError``, ``IntegrityError``, ``DataError`` are the caller's
  mistakes and keep it (database/sql's ``ErrBadConn`` rule).

:class:`DBPool` is the thin client that makes a pooled connection behave like a
DB-API connection to its user (``close()`` gives it back, ``with conn:``
commits or rolls back, then gives it back; after ``close()`` the connection and
its cursors raise the driver's ``ProgrammingError``), and runs single
statements with database/sql's bad-connection retry (``execute``,
``fetchone``, ``fetchall``, over ``ConnectionPool.run``).

In a forked child, the connector never commits, rolls back or closes a
connection the parent opened (see ``poolkit.adapters._forks``).
"""

from __future__ import annotations

import contextlib
import inspect
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeAlias, TypeVar, Unpack, overload

from poolkit._typing import with_default
from poolkit._validate import check_bool, check_callable, check_seconds
from poolkit.adapters import _forks
from poolkit.adapters._guard import PooledCursor, detached_error, wrap_cursor
from poolkit.connections import (
    ConnectionPool,
    ConnectionPoolOptions,
    ConnectionPoolStats,
    Connector,
    PooledConnection,
)

__all__ = [
    "SQLITE_BROKEN_CODES",
    "SQLITE_MAX_BUSY_TIMEOUT",
    "DBAPIConnector",
    "DBPool",
    "PooledCursor",
    "PooledDBConnection",
    "PooledDBConnectionBase",
    "PooledSQLiteConnection",
    "connector",
    "sqlite_is_broken",
    "sqlite_pool",
]

C = TypeVar("C")
if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    # What a DBPool hands out: PooledDBConnection[C] unless the overloads of
    # DBPool.__init__ say more (sqlite3: PooledSQLiteConnection).
    W = DefaultTypeVar("W", bound="PooledDBConnectionBase[Any]", default="PooledDBConnection[C]")
else:
    W = TypeVar("W")

# Primary SQLite result codes after which a connection is not worth keeping:
# SQLITE_IOERR (10), SQLITE_CORRUPT (11), SQLITE_CANTOPEN (14), SQLITE_NOTADB
# (26) (https://sqlite.org/rescode.html). SQLITE_BUSY/LOCKED ("database is
# locked") and SQLITE_ERROR ("no such table") are raised as OperationalError
# too, but the connection is fine: discarding it on lock contention would
# reopen the file on every busy write.
SQLITE_BROKEN_CODES = frozenset({10, 11, 14, 26})
# SQLite's busy handler wait, in seconds, before "database is locked" (the
# sqlite3 module's own default is 5 s, kept here).
SQLITE_BUSY_TIMEOUT = 5.0
# The longest busy wait SQLite can take: sqlite3_busy_timeout() takes an int
# of milliseconds. The sqlite3 module casts timeout*1000 to int unchecked, so a
# larger value wraps (1e300 s became "no wait at all": "database is locked" at
# once); longer waits are clamped to this (~24.8 days).
SQLITE_MAX_BUSY_TIMEOUT = (2**31 - 1) / 1000


def _find_error_classes(
    connect: Callable[..., Any], module: ModuleType | None
) -> tuple[type[BaseException], ...] | None:
    """The driver's (OperationalError, InterfaceError), from ``module`` or ``connect``'s home.

    ``psycopg.connect`` lives in ``psycopg.connection``, ``sqlite3.connect`` in
    ``_sqlite3``: walk up the dotted name until a module defines both classes.
    """
    candidates: list[ModuleType] = []
    if module is not None:
        candidates.append(module)
    else:
        parts = str(getattr(connect, "__module__", "") or "").split(".")
        for end in range(len(parts), 0, -1):
            found = sys.modules.get(".".join(parts[:end]))
            if found is not None:
                candidates.append(found)
    for mod in candidates:
        classes = tuple(getattr(mod, n, None) for n in ("OperationalError", "InterfaceError"))
        if all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            return classes  # type: ignore[return-value]
    return None


def _sqlite3_connect(
    database: object,
    timeout: float = 5.0,
    detect_types: int = 0,
    isolation_level: str | None = "DEFERRED",
    check_same_thread: bool = True,
    factory: object = None,
    cached_statements: int = 128,
    uri: bool = False,
    *,
    autocommit: object = None,
) -> None:
    """``sqlite3.connect``'s parameters (CPython 3.11-3.13); the builtin's own
    signature cannot be introspected there."""


def _check_connect_arguments(
    connect: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Refuse at the call arguments ``connect`` cannot take (a typo in a keyword):
    otherwise every connection attempt fails and the pool only says PoolTimeout."""
    try:
        signature = inspect.signature(_sqlite3_connect if connect is sqlite3.connect else connect)
    except (TypeError, ValueError):  # a builtin without a signature: the driver will tell
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(connect, "__qualname__", "connect")
        raise TypeError(f"connect={name} cannot take these arguments: {exc}") from None


class DBAPIConnector(Generic[C]):
    """Opens DB-API 2.0 connections for a :class:`~poolkit.ConnectionPool`.

    Args:
        connect: the driver's ``connect`` (``sqlite3.connect``, ``psycopg.connect``,
            ``pymysql.connect``...).
        *args: positional arguments for ``connect``.
        configure: ``configure(conn)`` run once on each new connection (session
            settings, pragmas); an exception fails the creation.
        reset: ``reset(conn)`` run on return after the rollback; an exception
            discards the connection.
        ping_query: the round trip of :meth:`ping`.
        module: the driver module whose ``OperationalError`` / ``InterfaceError``
            mean "broken" (default: found from ``connect``, else from each
            connection's DB-API ``conn.OperationalError`` attributes).
        is_broken: replaces the exception rule entirely (``exc -> bool``).
        check: a cheap liveness test (``conn -> bool``, no round trip) run at
            every checkout, e.g. ``psycopg``'s :func:`poolkit.adapters.psycopg.is_alive`:
            a connection it calls dead is replaced before anything is sent on
            it, which is what lets :meth:`DBPool.execute` retry a restart away
            without ``retry="idempotent"``.
        **kwargs: keyword arguments for ``connect``. With ``sqlite3.connect``,
            ``check_same_thread`` defaults to False: the pool opens connections
            in its own threads and hands each to one thread at a time.

    Raises:
        TypeError: ``connect``, ``configure``, ``reset``, ``is_broken`` or
            ``check`` is not callable, ``ping_query`` is not a non-empty str, ``module`` is not
            a module, or ``connect``'s signature refuses ``*args, **kwargs``.
    """

    def __init__(
        self,
        connect: Callable[..., C],
        *args: Any,
        configure: Callable[[C], object] | None = None,
        reset: Callable[[C], object] | None = None,
        ping_query: str = "SELECT 1",
        module: ModuleType | None = None,
        is_broken: Callable[[BaseException], bool] | None = None,
        check: Callable[[C], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        self._connect = check_callable("connect", connect)
        # The pool looks the optional hooks up by name: None means "no check".
        self.check: Callable[[C], bool] | None = check_callable("check", check, optional=True)
        self._configure = check_callable("configure", configure, optional=True)
        self._reset = check_callable("reset", reset, optional=True)
        self._is_broken = check_callable("is_broken", is_broken, optional=True)
        if module is not None and not isinstance(module, ModuleType):
            raise TypeError(
                f"module must be the driver's module (e.g. psycopg), got {type(module).__name__}"
            )
        if not isinstance(ping_query, str) or not ping_query.strip():
            raise TypeError(f"ping_query must be a non-empty str, got {ping_query!r}")
        self.ping_query = ping_query
        if connect is sqlite3.connect:
            kwargs.setdefault("check_same_thread", False)
        _check_connect_arguments(connect, args, kwargs)
        self._args = args
        self._kwargs = kwargs
        self._errors = _find_error_classes(connect, module)
        # In a forked child, the parent's connections are never committed,
        # rolled back or closed (see poolkit.adapters._forks).
        self._owners = _forks.Owners()

    def create(self) -> C:
        """Connect, then run ``configure``.

        Raises:
            Exception: whatever ``connect`` or ``configure`` raised (the pool
                retries with backoff).
        """
        conn: C = self._connect(*self._args, **self._kwargs)
        self._owners.opened(conn)
        try:
            if self._errors is None:
                self._errors = _find_error_classes(type(conn), None) or self._from_conn(conn)
            if self._configure is not None:
                self._configure(conn)
        except BaseException:
            conn.close()  # type: ignore[attr-defined]
            raise
        return conn

    @staticmethod
    def _from_conn(conn: object) -> tuple[type[BaseException], ...] | None:
        # The DB-API optional extension: exception classes as connection attributes.
        classes = tuple(getattr(conn, n, None) for n in ("OperationalError", "InterfaceError"))
        if all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            return classes  # type: ignore[return-value]
        return None

    def close(self, conn: C) -> None:
        """Close the connection (an uncommitted transaction is rolled back by the driver).

        In a forked child, a connection the parent opened is left alone: closing
        it would roll back (or end) the parent's session.
        """
        if not self._owners.foreign(conn):
            conn.close()  # type: ignore[attr-defined]

    def commit(self, conn: C) -> None:
        """Commit what a ``with pool.connection()`` block left open (commit on success).

        Called by the pool when the block exits without an exception (an
        exception rolls back instead, in :meth:`reset`). Nothing to commit when
        the driver says no transaction is open (``conn.in_transaction`` is
        False, as ``sqlite3`` tells) or the connection is in autocommit mode
        (``conn.autocommit is True``: psycopg, pymysql...).

        Raises:
            Exception: the driver's commit failed; the pool rolls back (or
                discards the connection if the error broke it).
        """
        if self._owners.foreign(conn):
            return  # a forked child never commits its parent's transaction
        in_transaction = getattr(conn, "in_transaction", None)
        if in_transaction is False:
            return
        if in_transaction is None and getattr(conn, "autocommit", None) is True:
            return
        conn.commit()  # type: ignore[attr-defined]

    def reset(self, conn: C) -> None:
        """Roll back what the holder left open, then run the user's ``reset``.

        A driver that tells whether a transaction is open (``conn.in_transaction``,
        as ``sqlite3``) is asked first, saving the call when there is none.

        Raises:
            Exception: the rollback or ``reset`` failed, or (in a forked child)
                the connection is the parent's; the pool discards it.
        """
        if self._owners.foreign(conn):
            raise RuntimeError(
                "this connection was opened by the parent process before a fork: the "
                "child leaves it (and its transaction) alone; the pool drops it"
            )
        if getattr(conn, "in_transaction", True):
            conn.rollback()  # type: ignore[attr-defined]
        if self._reset is not None:
            self._reset(conn)

    def ping(self, conn: C) -> bool:
        """Run ``ping_query`` and roll back, so the ping leaves no transaction open.

        Returns:
            True (a failure raises, and the pool discards the connection).
        """
        cur = conn.cursor()  # type: ignore[attr-defined]
        try:
            cur.execute(self.ping_query)
            cur.fetchall()
        finally:
            cur.close()
        conn.rollback()  # type: ignore[attr-defined]
        return True

    def is_broken(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised while the connection was in use, broke it.

        Returns:
            True for the driver's ``OperationalError`` / ``InterfaceError`` and
            any ``OSError``; False for everything else (``ProgrammingError``,
            ``IntegrityError``...: the statement was wrong, not the connection).
        """
        if self._is_broken is not None:
            return bool(self._is_broken(exc))
        if isinstance(exc, OSError):
            return True
        return self._errors is not None and isinstance(exc, self._errors)

    def __repr__(self) -> str:
        name = getattr(self._connect, "__qualname__", repr(self._connect))
        module = getattr(self._connect, "__module__", "")
        return f"DBAPIConnector({module}.{name}, {len(self._args)} args)"


# The factory spelling, as the other adapters have it: the class itself, so its
# signature and types are the class's own.
# Example: ``ConnectionPool(dbapi.connector(sqlite3.connect, "app.db"))``.
connector = DBAPIConnector


class PooledDBConnectionBase(Generic[C]):
    """A DB-API connection borrowed from a :class:`DBPool`: what every one has.

    :class:`PooledDBConnection` (any driver) and :class:`PooledSQLiteConnection`
    derive from it; for type checkers it has no catch-all attribute, so a
    typed connection's misspelt names are errors.

    ``cursor()``, ``commit()``, ``rollback()`` go to the connection, as does any
    other attribute, read or set (``conn.execute`` on ``sqlite3``,
    ``conn.autocommit = True``); ``close()`` gives it back to the pool (rolled
    back first). ``with conn:`` commits on success or rolls back on an
    exception, then gives it back (psycopg 3's ``with connection``); an
    exception that broke the connection discards it instead.

    After ``close()``, the connection and every cursor it handed out raise the
    driver's ``ProgrammingError`` (a subclass that is also a
    :class:`~poolkit.ConnectionDetached`) on use, as DB-API 2.0 asks of a
    closed connection; ``close()`` itself stays idempotent.
    """

    __slots__ = ("_db", "_generation", "_proxy", "_raw")

    _db: DBPool[C, Any]
    _generation: int
    _proxy: PooledConnection[C]
    _raw: C

    def __init__(self, db: DBPool[C, Any], proxy: PooledConnection[C]) -> None:
        object.__setattr__(self, "_db", db)
        object.__setattr__(self, "_proxy", proxy)
        object.__setattr__(self, "_raw", proxy.raw)
        # Which process borrowed it: a forked child never commits for its parent.
        object.__setattr__(self, "_generation", _forks.generation())

    def _live(self, name: str) -> Any:
        """The driver's connection, or the driver's error once given back."""
        if self._proxy._entry is None:
            raise detached_error(self._raw, name)
        return self._raw

    @property
    def raw(self) -> C:
        """The driver's connection (do not keep it past ``close()``).

        Raises:
            ConnectionDetached: the connection was given back (also the
                driver's ``ProgrammingError``).
        """
        raw: C = self._live("raw")
        return raw

    @property
    def closed(self) -> bool:
        """True once the connection was given back (or discarded)."""
        return self._proxy._entry is None

    def cursor(self, *args: Any, **kwargs: Any) -> PooledCursor:
        """A new cursor on the connection (arguments go to the driver).

        Raises:
            Error: the driver's ``ProgrammingError``, once given back.
        """
        return PooledCursor(self._proxy, self._raw, self._live("cursor").cursor(*args, **kwargs))

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``conn.execute`` shortcut (``sqlite3``, psycopg), its cursor guarded."""
        return wrap_cursor(self._proxy, self._raw, self._live("execute").execute(*args, **kwargs))

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``conn.executemany`` shortcut, its cursor guarded."""
        return wrap_cursor(
            self._proxy, self._raw, self._live("executemany").executemany(*args, **kwargs)
        )

    def executescript(self, *args: Any, **kwargs: Any) -> Any:
        """``sqlite3``'s ``conn.executescript``, its cursor guarded."""
        return wrap_cursor(
            self._proxy, self._raw, self._live("executescript").executescript(*args, **kwargs)
        )

    def commit(self) -> None:
        """Commit the current transaction.

        Raises:
            Error: the driver's ``ProgrammingError``, once given back.
        """
        self._live("commit").commit()

    def rollback(self) -> None:
        """Roll back the current transaction.

        Raises:
            Error: the driver's ``ProgrammingError``, once given back.
        """
        self._live("rollback").rollback()

    def close(self) -> None:
        """Give the connection back to the pool; uncommitted work is rolled back.

        Idempotent, as DB-API callers expect of ``close()``.
        """
        if self._proxy._entry is not None:
            self._db.pool.release(self._proxy)

    def discard(self) -> None:
        """Close the connection for good instead of giving it back (it is unusable)."""
        if self._proxy._entry is not None:
            self._db.pool.discard(self._proxy)

    if not TYPE_CHECKING:
        # Hidden from type checkers (PooledDBConnection declares it for them).

        def __getattr__(self, name: str) -> Any:
            # Only reached for names the class lacks; the slots are excluded so a
            # half-built object raises instead of recursing.
            if name.startswith("__") or name in PooledDBConnectionBase.__slots__:
                raise AttributeError(name)
            return getattr(self._live(name), name)

    def __setattr__(self, name: str, value: Any) -> None:
        # conn.autocommit = True, conn.isolation_level = None: the driver's.
        setattr(self._live(name), name, value)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._db._finish(self, exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._proxy!r}>"


class PooledDBConnection(PooledDBConnectionBase[C]):
    """A connection of any DB-API driver borrowed from a :class:`DBPool`
    (see :class:`PooledDBConnectionBase`).

    For type checkers, the names it forwards to the driver's connection are
    ``Any``; :attr:`raw` is the typed connection.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


if TYPE_CHECKING:
    # For type checkers a pooled SQLite connection is a sqlite3.Connection
    # (first, so its signatures are the ones checked) and a pooled one.
    _SQLiteFace: TypeAlias = sqlite3.Connection
    _SQLiteProxy: TypeAlias = PooledDBConnectionBase[sqlite3.Connection]
else:
    _SQLiteFace, _SQLiteProxy = PooledDBConnection, object


class PooledSQLiteConnection(_SQLiteFace, _SQLiteProxy):  # type: ignore[misc]  # see below
    """A ``sqlite3.Connection`` borrowed from a :class:`DBPool` (:func:`sqlite_pool`).

    Typed as a ``sqlite3.Connection``: ``conn.execute(...)`` has sqlite3's
    signature and a misspelt method is an error; ``discard()``, ``raw`` and
    ``closed`` are the pool's. At run time it is the pool's connection,
    forwarding every attribute, with cursors guarded past ``close()`` (they
    forward every cursor method), ``with conn:`` committing or rolling back
    and then giving it back, and ``conn(sql)`` (sqlite3's statement call).

    (The ignore: a type checker sees two bases whose C layouts could not be
    combined; at run time the class derives from ``PooledDBConnection`` alone.)
    """

    __slots__ = ()

    if not TYPE_CHECKING:

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self._live("__call__")(*args, **kwargs)


def _driver_commit(conn: Any) -> None:
    conn.commit()


# What a single-statement helper returns: the row count, one row, all rows.
_ROWCOUNT, _ONE, _ALL = 0, 1, 2


def _run_statement(proxy: PooledConnection[Any], sql: str, params: Any, fetch: int) -> Any:
    """One try of :meth:`DBPool.execute` and its fetch twins (``pool.run`` calls it)."""
    cur = proxy.raw.cursor()
    try:
        cur.execute(sql, params)
        if fetch == _ONE:
            return cur.fetchone()
        if fetch == _ALL:
            return list(cur.fetchall())
        return cur.rowcount
    finally:
        # A dead connection's cursor may fail to close: the statement's own
        # error (or its result) is what the caller needs.
        with contextlib.suppress(Exception):
            cur.close()


class DBPool(Generic[C, W]):
    """A pool of DB-API connections that a user handles like DB-API connections.

    A :class:`~poolkit.ConnectionPool` (available as :attr:`pool`) over a
    :class:`DBAPIConnector`, with :meth:`connect` (``close()`` gives it back)
    and :meth:`connection` (commit on success, rollback on error).

    Args:
        connector: a :class:`DBAPIConnector` (or any connector of DB-API connections).
        **options: :class:`~poolkit.ConnectionPool` options (``max_size``,
            ``timeout``, ``ping_after``, ``max_lifetime``...).

    Raises:
        TypeError, ValueError: a bad pool option (the message names it).
    """

    # For type checkers: a pool of sqlite3 connections hands out connections
    # typed as sqlite3's (PooledSQLiteConnection), any other driver's are
    # PooledDBConnection; the options are checked by name and type.
    @overload
    def __init__(
        self: DBPool[sqlite3.Connection, PooledSQLiteConnection],
        connector: Connector[sqlite3.Connection],
        **options: Unpack[ConnectionPoolOptions[sqlite3.Connection]],
    ) -> None: ...
    @overload
    def __init__(
        self: DBPool[C, PooledDBConnection[C]],
        connector: Connector[C],
        **options: Unpack[ConnectionPoolOptions[C]],
    ) -> None: ...
    def __init__(self, connector: Connector[Any], **options: Any) -> None:
        self.pool: ConnectionPool[C] = ConnectionPool(connector, **options)
        # The connector's commit-on-success rule when it has one (it knows
        # autocommit and failed transactions), else the plain DB-API commit().
        commit = getattr(connector, "commit", None)
        self._commit: Callable[[C], object] = commit if callable(commit) else _driver_commit

    if not TYPE_CHECKING:

        def __class_getitem__(cls, params):
            # DBPool[C] is DBPool[C, PooledDBConnection[C]] at run time too.
            params = with_default(params, 1, lambda c: PooledDBConnection[c])
            return super().__class_getitem__(params)

    def connect(self, timeout: float | None = None) -> W:
        """Borrow a connection; its ``close()`` gives it back.

        Raises:
            PoolTimeout: none became free within ``timeout`` (default: the pool's).
            PoolClosed: the pool is closed.
        """
        proxy = self.pool.acquire(timeout)
        # The class follows the connection, as the type does (see __init__).
        kind: Any = (
            PooledSQLiteConnection
            if isinstance(proxy._entry.conn, sqlite3.Connection)  # type: ignore[union-attr]
            else PooledDBConnection
        )
        conn: W = kind(self, proxy)
        return conn

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[W]:
        """``with db.connection() as conn:`` — commit on success, roll back on error.

        The connection goes back to the pool at the end of the block (discarded
        if the exception broke it).

        Raises:
            PoolTimeout: none became free within ``timeout`` (default: the pool's).
            PoolClosed: the pool is closed.
        """
        conn = self.connect(timeout)
        try:
            yield conn
        except BaseException as exc:
            self._finish(conn, exc)
            raise
        self._finish(conn, None)

    def _finish(self, conn: PooledDBConnectionBase[C], exc: BaseException | None) -> None:
        """End a ``with`` block: commit or roll back, then give back or discard."""
        proxy = conn._proxy
        if proxy._entry is None:
            return
        if conn._generation != _forks.generation():
            # A forked child leaving a block its parent opened: the transaction
            # is the parent's to commit or roll back. Only the pool's own
            # bookkeeping runs (it leaves a parent's connection alone).
            self.pool.release(proxy)
            return
        pool = self.pool
        if exc is not None and (not isinstance(exc, Exception) or pool._hooks.broken(exc)):
            pool.discard(proxy, "broken")
            return
        try:
            if exc is None:
                self._commit(proxy.raw)
            # On an error, the rollback happens in the connector's reset.
        except BaseException as commit_exc:
            if not isinstance(commit_exc, Exception) or pool._hooks.broken(commit_exc):
                pool.discard(proxy, "broken")
            else:
                pool.release(proxy)
            raise
        pool.release(proxy)

    # -- single statements, with database/sql's bad-connection retry ---------

    def execute(
        self,
        sql: str,
        params: Any = (),
        *,
        retry: str = "safe",
        timeout: float | None = None,
    ) -> int:
        """Run one statement on a pooled connection and commit it (``db.Exec``).

        Runs through :meth:`ConnectionPool.run`: a connection found dead before
        the statement is sent (the connector's ``check`` at checkout) is
        replaced without the caller noticing; an error after the send is
        raised as it is, unless ``retry="idempotent"`` says the statement may
        run twice (then any error that broke the connection is retried: two
        tries on pooled connections, then one on a new connection).

        Args:
            sql: the statement, in the driver's parameter style.
            params: its parameters (a sequence or mapping, as the driver takes).
            retry: ``"safe"`` (default) or ``"idempotent"``.
            timeout: for each checkout, as for :meth:`ConnectionPool.acquire`.

        Returns:
            The cursor's ``rowcount`` (-1 when the driver does not know).

        Raises:
            TypeError: ``sql`` is not a str.
            ValueError: ``retry`` is not a mode.
            PoolTimeout, PoolClosed: from the checkout.
            Exception: the driver's error, when it may not be retried.
        """
        return int(self._statement(sql, params, _ROWCOUNT, retry, timeout))

    def fetchone(
        self,
        sql: str,
        params: Any = (),
        *,
        retry: str = "safe",
        timeout: float | None = None,
    ) -> Any:
        """Run a query and return its first row, or ``None`` (``db.QueryRow``).

        The rule of :meth:`execute` (a read is a natural ``retry="idempotent"``).
        """
        return self._statement(sql, params, _ONE, retry, timeout)

    def fetchall(
        self,
        sql: str,
        params: Any = (),
        *,
        retry: str = "safe",
        timeout: float | None = None,
    ) -> list[Any]:
        """Run a query and return all its rows as a list (``db.Query``).

        The rule of :meth:`execute` (a read is a natural ``retry="idempotent"``).
        """
        rows: list[Any] = self._statement(sql, params, _ALL, retry, timeout)
        return rows

    def _statement(
        self, sql: str, params: Any, fetch: int, retry: str, timeout: float | None
    ) -> Any:
        if not isinstance(sql, str):
            raise TypeError(f"sql must be a str, got {type(sql).__name__}")
        return self.pool.run(_run_statement, sql, params, fetch, retry=retry, timeout=timeout)

    def stats(self) -> ConnectionPoolStats:
        """The pool's statistics (see :class:`~poolkit.connections.ConnectionPoolStats`)."""
        return self.pool.stats()

    def drain(self) -> None:
        """Close idle connections now and busy ones on return (after a failover)."""
        self.pool.drain()

    def close(self, timeout: float | None = None) -> None:
        """Close the pool (see :meth:`ConnectionPool.close`). Idempotent."""
        self.pool.close(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DBPool {self.pool!r}>"


def sqlite_is_broken(exc: BaseException) -> bool:
    """SQLite's refinement of the DB-API rule: which errors break a connection.

    Returns:
        True for I/O errors, corruption, a file that cannot be opened or is not a
        database (:data:`SQLITE_BROKEN_CODES`), a closed connection, and any
        ``OSError``; False for "database is locked", "no such table" and other
        statement-level errors, after which the connection is fine.
    """
    if isinstance(exc, OSError | sqlite3.InterfaceError):
        return True
    if isinstance(exc, sqlite3.ProgrammingError):
        return "closed" in str(exc)  # "Cannot operate on a closed database."
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.DataError
    ):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in SQLITE_BROKEN_CODES
    return False


def _sqlite_configure(
    wal: bool, extra: Callable[[sqlite3.Connection], object] | None
) -> Callable[[sqlite3.Connection], None]:
    def configure(conn: sqlite3.Connection) -> None:
        if wal:
            # WAL: readers do not block the writer nor each other, which is what
            # makes a file database worth sharing between threads.
            # synchronous=NORMAL is the setting SQLite recommends with WAL.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        if extra is not None:
            extra(conn)

    return configure


def sqlite_pool(
    path: str,
    *,
    wal: bool = True,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT,
    configure: Callable[[sqlite3.Connection], object] | None = None,
    **options: Unpack[ConnectionPoolOptions[sqlite3.Connection]],
) -> DBPool[sqlite3.Connection, PooledSQLiteConnection]:
    """A pool of connections to the SQLite file ``path``, shared by threads.

    Each connection is opened with ``check_same_thread=False`` (the pool hands
    it to one thread at a time) and the busy handler set to ``busy_timeout``;
    WAL mode and ``synchronous=NORMAL`` are set on each new connection, then
    ``configure(conn)`` runs.

    Args:
        path: the database file (a ``str`` path; ``":memory:"`` is refused, as
            each connection would get its own empty database).
        wal: set ``journal_mode=WAL`` (True or False).
        busy_timeout: seconds a connection waits for a lock before "database
            is locked"; ``math.inf`` (or anything above ~24.8 days) waits the
            longest SQLite allows (:data:`SQLITE_MAX_BUSY_TIMEOUT`).
        configure: your own per-connection setup (pragmas, functions).
        **options: :class:`~poolkit.ConnectionPool` options.

    Returns:
        The :class:`DBPool`.

    Raises:
        TypeError: ``path`` is not a str, ``wal`` not a bool, or a bad option.
        ValueError: ``path`` is ``":memory:"``, or an option is out of range.
    """
    if not isinstance(path, str) or not path:
        raise TypeError(f"path must be a non-empty str (a file path), got {path!r}")
    if path == ":memory:":
        raise ValueError(
            "path=':memory:' gives every pooled connection its own empty database; "
            "use a file path (or a temporary file) to share one database between threads"
        )
    timeout = min(
        check_seconds("busy_timeout", busy_timeout, allow_inf=True), SQLITE_MAX_BUSY_TIMEOUT
    )
    wal = check_bool("wal", wal)
    check_callable("configure", configure, optional=True)
    conn_factory = connector(
        sqlite3.connect,
        path,
        timeout=timeout,
        configure=_sqlite_configure(wal, configure),
        is_broken=sqlite_is_broken,
    )
    options.setdefault("name", f"sqlite:{path}")
    return DBPool(conn_factory, **options)
