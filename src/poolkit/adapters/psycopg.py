"""psycopg 3 connections in a pool, sync and asyncio: what psycopg_pool users expect.

::

    from poolkit import ConnectionPool
    from poolkit.adapters import psycopg as pg

    pool = ConnectionPool(pg.connector("dbname=app"), max_size=10)
    with pool.connection() as conn:        # commits on success, rolls back on error
        conn.execute("INSERT INTO t VALUES (1)")

- **Checkout check** (every checkout, no round trip): libpq's status is OK
  (so the connection is neither closed nor broken), no transaction is open,
  and one non-blocking read takes what the socket holds into libpq, which
  parses it (a server that ends a session sends a FATAL error, then closes):
  a FATAL or an EOF means dead. A backend killed by ``pg_terminate_backend()``
  or a restart is caught by the first checkout after its FATAL arrived,
  before the user's query fails on it. With psycopg's C implementation the
  check never lets go of the GIL (see :func:`is_alive`).
- **Commit on success** (psycopg_pool's ``connection()``): a ``with
  pool.connection()`` block that exits normally commits the transaction it
  left open; an exception in the block rolls it back. A transaction that
  failed inside the block (the error was caught there) is not silently
  "committed" into a rollback: leaving the block raises
  ``InFailedSqlTransaction``. ``acquire()`` / ``close()`` never commit.
- **Fork**: a forked child never commits, rolls back or closes (Terminate) a
  connection its parent opened, whatever the pool asks: that would end or
  change the parent's transaction.
- **Return** by transaction state (psycopg_pool's rule): idle goes back as is;
  a transaction left open or failed is rolled back; a query still running or
  an unknown state means the connection is discarded.
- **is_broken** by SQLSTATE: class 08 (connection exception), 57P01/57P02/57P03
  (admin shutdown, crash shutdown, cannot connect now) and 25006 (read-only
  transaction: the server was demoted by a failover and ``SELECT 1`` pings
  still pass on it); errors without a SQLSTATE that are ``OperationalError`` or
  ``InterfaceError`` (connection lost, closed). Anything else (a unique
  violation, a syntax error, a statement timeout) keeps the connection.
- **Give-back guards**: the pools hand out :class:`PsycopgPooledConnection`
  (:class:`AsyncPsycopgPooledConnection`), whose ``cursor()`` and
  ``execute()`` cursors stop working when the connection goes back to the
  pool (``conn.close()``, the end of the ``with`` block): any use then raises
  ``psycopg.ProgrammingError`` (a subclass that is also poolkit's
  ``ConnectionDetached``, as ``DBPool`` raises), never runs a statement on a
  connection another caller may hold. Attribute writes (``conn.autocommit =
  True``) reach psycopg's connection.
- **Types**: to a type checker the proxies are psycopg's ``Connection[Any]``
  (``AsyncConnection[Any]``) as well as poolkit's ``PooledConnectionBase``
  (``discard()``, ``raw``, ``released``): ``conn.execute`` has psycopg's
  signature and a misspelt method is an error under ``mypy --strict``. At run
  time they are proxies (``isinstance(conn, psycopg.Connection)`` is False)
  that do what the type promises: every attribute is psycopg's, the guarded
  cursors forward every cursor method, and ``with conn:`` (``async with``)
  commits on success or rolls back on an error, leaving the connection open
  for the pool, as psycopg does for a connection that belongs to a pool.
- **Single statements with database/sql's retry**: :func:`execute`,
  :func:`fetchone`, :func:`fetchall` (and ``async_`` twins) run one statement
  through ``pool.run``. Nothing is ever sent twice by default: a connection
  is retried only when it was found dead *before* the statement was written.
  The signal is the read-only look of the checkout check, taken again right
  before the write: the connection is closed or broken, libpq's status is not
  OK, or its socket already holds the server's FATAL or an EOF (a terminated
  backend sends its FATAL, then closes; it never reads what comes after).
  Then :class:`~poolkit.BadConnection` is raised, the connection discarded
  and the statement sent on another one. A failure once the statement is on
  the wire (a backend terminated mid-query, an EOF while waiting for the
  result) may come after the server committed it, so it goes to the caller,
  unless ``retry="idempotent"`` says running it twice is harmless.
- **ping** (with the pool's ``ping_after``): an empty query in autocommit mode,
  so no transaction is left open; with ``require_writable=True`` it also asks
  ``SHOW transaction_read_only`` and rejects a read-only server.

Needs psycopg 3: ``pip install 'poolkit[postgres]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeAlias, TypeVar

from poolkit.adapters._extras import missing_extra

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import pq
    from psycopg.abc import Params, Query
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.pq import abc as pq_abc
except ImportError as exc:
    raise missing_extra("psycopg", "psycopg 3", "postgres") from exc

from poolkit._errors import BadConnection
from poolkit._validate import check_bool, check_callable, check_int
from poolkit.adapters._forks import Owners
from poolkit.adapters._guard import (
    AsyncPooledCursor,
    PooledCursor,
    detached_class,
    detached_message,
)
from poolkit.connections import AsyncPooledConnection, PooledConnection

if TYPE_CHECKING:
    from poolkit.connections import (
        AsyncConnectionPool,
        AsyncPooledConnectionBase,
        ConnectionPool,
        PooledConnectionBase,
    )

    # For type checkers the proxies are psycopg's connections, plus what every
    # proxy has (see poolkit/connections/_proxy.py); psycopg's class first, so
    # its signatures are the ones checked.
    _Face: TypeAlias = psycopg.Connection[Any]
    _Proxy: TypeAlias = PooledConnectionBase[psycopg.Connection[Any]]
    _AsyncFace: TypeAlias = psycopg.AsyncConnection[Any]
    _AsyncProxy: TypeAlias = AsyncPooledConnectionBase[psycopg.AsyncConnection[Any]]
else:
    _Face, _Proxy = PooledConnection, object
    _AsyncFace, _AsyncProxy = AsyncPooledConnection, object

logger = logging.getLogger("poolkit.adapters.psycopg")

__all__ = [
    "BROKEN_SQLSTATES",
    "AsyncPsycopgConnector",
    "AsyncPsycopgPooledConnection",
    "PsycopgConnector",
    "PsycopgPooledConnection",
    "async_check_connection",
    "async_connector",
    "async_execute",
    "async_fetchall",
    "async_fetchone",
    "check_connection",
    "connector",
    "execute",
    "fetchall",
    "fetchone",
    "is_alive",
    "is_broken",
]

# SQLSTATEs after which a connection must not be reused (besides class 08,
# connection exception): admin_shutdown (pg_terminate_backend, fast shutdown),
# crash_shutdown, cannot_connect_now (starting up / shutting down), and
# read_only_sql_transaction: after a failover the old primary comes back as a
# read-only standby, and pings pass on it (gpustack#6105).
BROKEN_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25006"})

# Either kind of psycopg connection: the checks below never wait (one
# non-blocking read at most).
_AnyConnection: TypeAlias = "psycopg.Connection[Any] | psycopg.AsyncConnection[Any]"
# The type of a connector's configure and reset hooks (sync or async).
H = TypeVar("H")

# Plain ints: libpq's answers are ints, and an int compares faster with an
# int than with an IntEnum member (these run several times per checkout).
_IDLE = int(pq.TransactionStatus.IDLE)
_OPEN = (int(pq.TransactionStatus.INTRANS), int(pq.TransactionStatus.INERROR))
_OK = int(pq.ConnStatus.OK)
_SEVERITY = pq.DiagnosticField.SEVERITY_NONLOCALIZED
# Severities after which the server closes the session (PostgreSQL's elog
# levels): FATAL ends the backend, PANIC the whole server.
_SESSION_ENDING = frozenset({b"FATAL", b"PANIC"})


class _SessionEndWatch:
    """A libpq notice handler that remembers a session-ending notice, then chains.

    Installed on a connection's ``pgconn`` by its first checkout check (see
    :func:`_quiet`), in front of psycopg's own handler, which still gets every
    notice (and passes it to the application's ``add_notice_handler``
    callbacks). libpq hands an error that arrives while the connection is
    idle to the notice handler: a terminated backend's FATAL lands here.
    """

    __slots__ = ("chained", "ended")

    def __init__(self, chained: Callable[[pq_abc.PGresult], None] | None) -> None:
        self.chained = chained
        self.ended = False

    def __call__(self, res: pq_abc.PGresult) -> None:
        if res.error_field(_SEVERITY) in _SESSION_ENDING:
            self.ended = True
        if self.chained is not None:
            self.chained(res)


def _quiet(pgconn: pq_abc.PGconn) -> bool:
    """Whether nothing the server sent while the connection was idle ends its session.

    Called with libpq's status OK. One non-blocking read takes whatever
    reached the socket into libpq's buffer (an EOF raises), and
    ``get_result()`` has libpq parse it: on an idle connection it returns
    None, and an error that arrived meanwhile (the FATAL of a terminated
    backend) goes to the notice handler, here a :class:`_SessionEndWatch`.
    Why not ``poll()`` first: every call that waits in CPython lets go of the
    GIL, and with threads contending for it the way back can cost far more
    than the call; psycopg's C implementation makes both calls holding it.
    A read with nothing waiting costs about as much as the poll would.

    One read takes up to libpq's input buffer (16 KiB at least): a FATAL and
    an EOF, or hundreds of notifications (LISTEN). A FATAL queued behind more
    unasked notifications than that is not seen by this check; the query it
    lands on fails and discards the connection as broken.
    """
    watch = pgconn.notice_handler
    if type(watch) is not _SessionEndWatch:
        # The first check of this connection, or someone replaced the
        # handler: put the watch in front of whatever handles notices now.
        watch = _SessionEndWatch(watch)
        pgconn.notice_handler = watch
    try:
        pgconn.consume_input()  # raises once it reads the EOF
        # Parses what the read brought; notifications (LISTEN) stay queued
        # in libpq for the application. A result on an idle connection
        # means it is out of step: not usable either.
        if pgconn.get_result() is not None:
            return False
    except (psycopg.OperationalError, OSError):
        return False
    return not watch.ended and pgconn.status == _OK


def is_alive(conn: _AnyConnection) -> bool:
    """Whether an idle connection is usable, without a round trip (the checkout check).

    One call decides. A server that ends a session (``pg_terminate_backend()``,
    a restart or shutdown, ``idle_session_timeout``) sends an ``ErrorResponse``
    of severity FATAL and then closes the socket. The two may reach the client
    apart: reading only the FATAL leaves libpq's status OK (libpq hands an error
    that arrives while idle to the notice processor), and the EOF may still be
    in flight. So this reads what the socket holds, lets libpq parse it, and
    takes a FATAL (or PANIC) as death even before the EOF is seen. The first
    check of a connection puts a watch for that FATAL in front of its notice
    handler (psycopg's, which still gets every notice).

    Returns:
        False if it is closed or broken, libpq's status is not OK, a transaction
        is open, or what the server sent unasked shows that it ended the session.
    """
    # libpq's status answers for psycopg's ``closed`` and ``broken`` too (both
    # are CONNECTION_BAD; a closed connection's pgconn reports BAD): one read
    # instead of three properties.
    pgconn = conn.pgconn
    if pgconn.status != _OK or pgconn.transaction_status != _IDLE:
        return False
    return _quiet(pgconn)


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """A round trip to the server (psycopg_pool's ``check_connection``), for ``check=``.

    ``ConnectionPool(pg.connector(dsn), check=pg.check_connection)`` checks
    each connection with an empty query at checkout, where the default check
    (:func:`is_alive`) reads only what already reached the socket. It costs a
    round trip per checkout, and catches what only a round trip shows (a
    server gone without closing the TCP connection, a network partition). The
    query runs in autocommit mode, so no transaction is left open for the
    caller; the connection's own autocommit setting is restored.

    Raises:
        psycopg.Error: the server did not answer (the pool then discards the
            connection and takes another).
    """
    if conn.autocommit:
        conn.execute("")
        return
    conn.autocommit = True
    try:
        conn.execute("")
    finally:
        if not conn.closed:
            conn.autocommit = False


async def async_check_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The asyncio twin of :func:`check_connection`, for ``AsyncConnectionPool(check=)``."""
    if conn.autocommit:
        await conn.execute("")
        return
    await conn.set_autocommit(True)
    try:
        await conn.execute("")
    finally:
        if not conn.closed:
            await conn.set_autocommit(False)


def is_broken(exc: BaseException) -> bool:
    """Whether ``exc``, raised while a connection was in use, broke it (see module doc).

    Returns:
        True for SQLSTATE class 08, :data:`BROKEN_SQLSTATES`, ``OSError``, and
        ``OperationalError`` / ``InterfaceError`` without a SQLSTATE.
    """
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state:
        return state.startswith("08") or state in BROKEN_SQLSTATES
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def _return_plan(conn: _AnyConnection) -> bool:
    """Whether the connection needs a rollback before going back.

    Raises:
        psycopg.InterfaceError: it cannot be made clean (closed, query running,
            unknown state); the pool discards it.
    """
    # libpq's own answer: conn.info builds a ConnectionInfo and an enum on
    # every read (~0.9 us), and this runs at every give-back. IDLE first:
    # libpq says IDLE only on a connection whose status is OK, so neither
    # closed nor broken, and the common case needs no other read.
    status = conn.pgconn.transaction_status
    if status == _IDLE:
        return False
    if conn.closed or conn.broken:
        raise psycopg.InterfaceError("the connection is closed")
    if status in _OPEN:
        return True
    state = pq.TransactionStatus(status).name
    raise psycopg.InterfaceError(f"the connection came back in state {state}")


# Keywords of psycopg's ``connect`` itself; every other keyword is a libpq
# connection parameter (``host=``, ``connect_timeout=``...).
_CONNECT_OPTIONS = frozenset(
    {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"}
)


def _not_ours() -> psycopg.InterfaceError:
    return psycopg.InterfaceError(
        "this connection was opened by the parent process before a fork: the child "
        "leaves it (and its transaction) alone; the pool drops it"
    )


def _commit_plan(conn: _AnyConnection) -> bool:
    """Whether the block's transaction needs a COMMIT (False: nothing to commit).

    Raises:
        psycopg.errors.InFailedSqlTransaction: the transaction failed earlier in
            the block (the error was caught there). psycopg's ``commit()`` would
            turn it into a silent rollback; the block's writes are lost, so say so.
    """
    status = conn.pgconn.transaction_status
    if status == _IDLE:
        # Autocommit, or nothing run since the last commit. (libpq says IDLE
        # only on an open, unbroken connection, so this comes first.)
        return False
    if conn.closed and not conn.broken:
        # Closed by its holder inside the block (which rolled back), as
        # psycopg's own ``with conn`` leaves it; the pool discards it on return.
        # A connection *lost* mid-block is different: its commit() raises, so
        # the writes that vanished with it do not go unnoticed.
        return False
    if status == pq.TransactionStatus.INERROR:
        raise pg_errors.InFailedSqlTransaction(
            "the transaction failed inside the connection() block (an error was caught "
            "there), so nothing was committed: it is rolled back. Roll back or commit "
            "inside the block after handling the error"
        )
    return True  # INTRANS; ACTIVE or UNKNOWN make commit() raise for the pool


def _check_options(conninfo: object, configure: object, reset: object, kwargs: Any) -> None:
    """Refuse at the call what would otherwise fail at every connection attempt."""
    if not isinstance(conninfo, str):
        raise TypeError(f"conninfo must be a str (a libpq DSN or URL), got {conninfo!r}")
    check_callable("configure", configure, optional=True)
    check_callable("reset", reset, optional=True)
    if "autocommit" in kwargs:
        check_bool("autocommit", kwargs["autocommit"])
    if kwargs.get("prepare_threshold") is not None:
        check_int("prepare_threshold", kwargs["prepare_threshold"], minimum=0)
    for name in ("row_factory", "cursor_factory"):
        check_callable(name, kwargs.get(name), optional=True)
    params = {k: v for k, v in kwargs.items() if k not in _CONNECT_OPTIONS}
    try:
        # libpq's own parser: a typo ("dbnme=") or a malformed string would
        # otherwise surface only as a PoolTimeout after retries.
        conninfo_to_dict(make_conninfo(conninfo, **params))
    except psycopg.ProgrammingError as exc:
        # The DSN may hold a password: quote libpq's complaint, not the string.
        raise ValueError(f"conninfo (with the connection keywords) is invalid: {exc}") from None


def _gone(proxy: object, name: str) -> Exception:
    """The error for ``.name`` of a psycopg proxy used after the give-back.

    psycopg's ``ProgrammingError`` that is also poolkit's ConnectionDetached;
    the sync and async connection classes share it (one driver error class).
    """
    return detached_class(psycopg.Connection)(detached_message(name))


def _held(proxy: PsycopgPooledConnection | AsyncPsycopgPooledConnection, name: str) -> Any:
    """The psycopg connection ``proxy`` holds, for its ``.name``.

    Raises:
        psycopg.ProgrammingError: the connection was given back (see :func:`_gone`).
    """
    entry = proxy._entry
    if entry is None:
        raise _gone(proxy, name)
    return entry.conn


class PsycopgPooledConnection(_Face, _Proxy):
    """A ``psycopg.Connection`` borrowed from a :class:`~poolkit.ConnectionPool`.

    What :meth:`PsycopgConnector` pools hand out: a
    :class:`~poolkit.PooledConnection` whose cursors (from :meth:`cursor` and
    :meth:`execute`) are guarded. After the give-back (``close()``, the end of
    ``with pool.connection()``), the connection and every cursor it made raise
    ``psycopg.ProgrammingError`` (a subclass that is also
    :class:`~poolkit.ConnectionDetached`) on use: DB-API's rule for a closed
    connection, as ``dbapi.DBPool`` applies it. It is not an error that breaks a
    connection (:func:`is_broken` is False), so catching it inside another
    ``with pool.connection()`` block never discards that block's connection.

    Typed as a ``psycopg.Connection[Any]`` (see the module docstring).
    """

    __slots__ = ()

    _gone = _gone

    if not TYPE_CHECKING:
        # Typed as psycopg's own (Cursor[Any]): the guarded cursor forwards
        # every cursor method, and raises once the connection is given back.

        def cursor(self, *args: Any, **kwargs: Any) -> PooledCursor:
            """psycopg's ``conn.cursor(...)``, guarded.

            Raises:
                psycopg.ProgrammingError: the connection was given back.
            """
            conn: psycopg.Connection[Any] = _held(self, "cursor")
            return PooledCursor(self, conn, conn.cursor(*args, **kwargs))

        def execute(self, *args: Any, **kwargs: Any) -> PooledCursor:
            """psycopg's ``conn.execute(...)``; the cursor it returns is guarded.

            Raises:
                psycopg.ProgrammingError: the connection was given back.
                psycopg.Error: what the statement raised.
            """
            entry = self._entry  # _held() inlined: once per statement
            if entry is None:
                raise _gone(self, "execute")
            conn: psycopg.Connection[Any] = entry.conn
            return PooledCursor(self, conn, conn.execute(*args, **kwargs))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """``with conn:``: commit, or roll back on an error; the pool keeps the connection.

        Raises:
            psycopg.ProgrammingError: the connection was given back.
            psycopg.Error: the COMMIT failed.
        """
        conn: psycopg.Connection[Any] = _held(self, "__exit__")
        if conn.closed:
            return
        if exc_type is None:
            conn.commit()
            return
        try:
            conn.rollback()
        except Exception:
            # The block's own error goes on; the pool discards a broken connection.
            logger.warning("rollback at the end of `with conn:` failed", exc_info=True)


class AsyncPsycopgPooledConnection(_AsyncFace, _AsyncProxy):
    """A ``psycopg.AsyncConnection`` borrowed from an :class:`~poolkit.AsyncConnectionPool`.

    The asyncio twin of :class:`PsycopgPooledConnection`: ``cursor()`` (plain,
    as psycopg's) and ``await execute()`` return guarded async cursors, and
    ``async with conn:`` commits or rolls back. Typed as a
    ``psycopg.AsyncConnection[Any]``.
    """

    __slots__ = ()

    _gone = _gone

    if not TYPE_CHECKING:
        # Typed as psycopg's own (AsyncCursor[Any]), as in the sync class.

        def cursor(self, *args: Any, **kwargs: Any) -> AsyncPooledCursor:
            """The guarded cursor of :meth:`PsycopgPooledConnection.cursor`, async."""
            conn: psycopg.AsyncConnection[Any] = _held(self, "cursor")
            return AsyncPooledCursor(self, conn, conn.cursor(*args, **kwargs))

        async def execute(self, *args: Any, **kwargs: Any) -> AsyncPooledCursor:
            """psycopg's ``await conn.execute(...)``, guarded as :meth:`cursor` is.

            Raises:
                psycopg.ProgrammingError: the connection was given back.
                psycopg.Error: what the statement raised.
            """
            conn: psycopg.AsyncConnection[Any] = _held(self, "execute")
            return AsyncPooledCursor(self, conn, await conn.execute(*args, **kwargs))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """``async with conn:``: the twin of :meth:`PsycopgPooledConnection.__exit__`."""
        conn: psycopg.AsyncConnection[Any] = _held(self, "__aexit__")
        if conn.closed:
            return
        if exc_type is None:
            await conn.commit()
            return
        try:
            await conn.rollback()
        except Exception:
            logger.warning("rollback at the end of `async with conn:` failed", exc_info=True)


class _Base(Generic[H]):
    """What both connectors share: options, fork ownership, the sans-io decisions."""

    def __init__(
        self,
        conninfo: str,
        configure: H | None,
        reset: H | None,
        require_writable: bool,
        kwargs: dict[str, Any],
    ) -> None:
        _check_options(conninfo, configure, reset, kwargs)
        self.conninfo = conninfo
        self._configure = configure
        self._reset = reset
        self.require_writable = check_bool("require_writable", require_writable)
        self._kwargs = kwargs
        # Connections opened by this process; in a forked child, the parent's
        # are never committed, rolled back or closed (see _forks).
        self._owners = Owners()

    def _needs_commit(self, conn: _AnyConnection) -> bool:
        """Whether ``commit`` must send a COMMIT (never for a parent's connection).

        Raises:
            psycopg.errors.InFailedSqlTransaction: see :func:`_commit_plan`.
        """
        if conn.pgconn.transaction_status == _IDLE:
            return False  # nothing to commit: the common case, one read
        return not self._owners.foreign(conn) and _commit_plan(conn)

    def _needs_rollback(self, conn: _AnyConnection) -> bool:
        """Whether ``reset`` must send a ROLLBACK before the user's reset.

        Raises:
            psycopg.InterfaceError: the pool must discard it: a parent's
                connection in a forked child, or one that cannot be made clean.
        """
        if self._owners.foreign(conn):
            raise _not_ours()
        return _return_plan(conn)

    def check(self, conn: _AnyConnection) -> bool:
        """The cheap checkout check (see :func:`is_alive`)."""
        return is_alive(conn)

    def is_broken(self, exc: BaseException) -> bool:
        """SQLSTATE-based classification (see :func:`is_broken`)."""
        return is_broken(exc)

    def __repr__(self) -> str:
        # The DSN may hold a password: show only where it points.
        return f"{type(self).__name__}({len(self.conninfo)}-char conninfo)"


class PsycopgConnector(_Base[Callable[[psycopg.Connection[Any]], object]]):
    """Opens ``psycopg.Connection`` objects for a :class:`~poolkit.ConnectionPool`.

    Args:
        conninfo: libpq connection string or URL.
        configure: ``configure(conn)`` on each new connection (session settings).
        reset: ``reset(conn)`` on return, after the rollback; an exception discards it.
        require_writable: the ping also rejects a read-only (demoted) server.
        **kwargs: passed to ``psycopg.Connection.connect`` (``autocommit``,
            ``row_factory``, ``prepare_threshold``...).

    Raises:
        TypeError: ``conninfo`` is not a str; ``configure``, ``reset``,
            ``row_factory`` or ``cursor_factory`` not callable;
            ``require_writable`` or ``autocommit`` not a bool;
            ``prepare_threshold`` not an int.
        ValueError: libpq cannot parse the connection string with the
            keywords (an unknown option, a missing ``=``).
    """

    # What the pool's acquire() returns: cursors guarded past the give-back.
    proxy_class = PsycopgPooledConnection

    def __init__(
        self,
        conninfo: str = "",
        *,
        configure: Callable[[psycopg.Connection[Any]], object] | None = None,
        reset: Callable[[psycopg.Connection[Any]], object] | None = None,
        require_writable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(conninfo, configure, reset, require_writable, kwargs)

    def create(self) -> psycopg.Connection[Any]:
        """Connect, then run ``configure`` (committing what it did).

        Raises:
            psycopg.OperationalError: the server refused or is unreachable.
        """
        conn = psycopg.Connection.connect(self.conninfo, **self._kwargs)
        self._owners.opened(conn)
        try:
            if self._configure is not None:
                self._configure(conn)
                if conn.info.transaction_status != _IDLE:
                    conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self, conn: psycopg.Connection[Any]) -> None:
        """Close the connection (in a forked child, the parent's are left open).

        ``close()`` sends libpq's Terminate, which would end the parent's
        session; garbage collection in the child does not (psycopg checks the pid).
        """
        if not self._owners.foreign(conn):
            conn.close()

    def commit(self, conn: psycopg.Connection[Any]) -> None:
        """Commit what a ``with pool.connection()`` block left open (psycopg_pool's rule).

        Called by the pool when the block exits without an exception; an
        exception in the block rolls back instead (:meth:`reset`). Nothing is
        sent in autocommit mode or when no transaction is open.

        Raises:
            psycopg.errors.InFailedSqlTransaction: the transaction had failed
                (an error caught inside the block); it is rolled back on return.
            psycopg.Error: the COMMIT failed (a deferred constraint, a lost
                connection); the pool rolls back or discards as for any error.
        """
        if self._needs_commit(conn):
            conn.commit()

    def reset(self, conn: psycopg.Connection[Any]) -> None:
        """Roll back an open or failed transaction, then run the user's ``reset``.

        Raises:
            psycopg.Error: it cannot be made clean, or (in a forked child) it is
                the parent's; the pool discards it.
        """
        if self._needs_rollback(conn):
            conn.rollback()
        if self._reset is not None:
            self._reset(conn)

    def ping(self, conn: psycopg.Connection[Any]) -> bool:
        """A round trip that opens no transaction (and checks writability if asked).

        Returns:
            False if ``require_writable`` and the server is read-only.
        """
        autocommit = conn.autocommit
        conn.autocommit = True
        try:
            if not self.require_writable:
                conn.execute("")
                return True
            row = conn.execute("SHOW transaction_read_only").fetchone()
            return row is not None and row[0] == "off"
        finally:
            conn.autocommit = autocommit


class AsyncPsycopgConnector(_Base[Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]]]):
    """Opens ``psycopg.AsyncConnection`` objects for an :class:`~poolkit.AsyncConnectionPool`.

    Takes the arguments of :class:`PsycopgConnector`; ``configure`` and ``reset``
    are coroutine functions.
    """

    # What the pool's acquire() returns: cursors guarded past the give-back.
    proxy_class = AsyncPsycopgPooledConnection

    def __init__(
        self,
        conninfo: str = "",
        *,
        configure: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]] | None = None,
        reset: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]] | None = None,
        require_writable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(conninfo, configure, reset, require_writable, kwargs)

    async def create(self) -> psycopg.AsyncConnection[Any]:
        """Connect, then await ``configure`` (committing what it did).

        Raises:
            psycopg.OperationalError: the server refused or is unreachable.
        """
        conn = await psycopg.AsyncConnection.connect(self.conninfo, **self._kwargs)
        self._owners.opened(conn)
        try:
            if self._configure is not None:
                await self._configure(conn)
                if conn.info.transaction_status != _IDLE:
                    await conn.commit()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Close the connection (in a forked child, the parent's are left open)."""
        if not self._owners.foreign(conn):
            await conn.close()

    async def commit(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Commit what an ``async with pool.connection()`` block left open.

        The twin of :meth:`PsycopgConnector.commit` (see there).

        Raises:
            psycopg.errors.InFailedSqlTransaction: the transaction had failed.
            psycopg.Error: the COMMIT failed.
        """
        if self._needs_commit(conn):
            await conn.commit()

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The twin of :meth:`PsycopgConnector.reset`, awaiting the user's ``reset``.

        Raises:
            psycopg.Error: as :meth:`PsycopgConnector.reset`; the pool discards it.
        """
        if self._needs_rollback(conn):
            await conn.rollback()
        if self._reset is not None:
            await self._reset(conn)

    async def ping(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """A round trip that opens no transaction (and checks writability if asked).

        Returns:
            False if ``require_writable`` and the server is read-only.
        """
        autocommit = conn.autocommit
        await conn.set_autocommit(True)
        try:
            if not self.require_writable:
                await conn.execute("")
                return True
            cur = await conn.execute("SHOW transaction_read_only")
            row = await cur.fetchone()
            return row is not None and row[0] == "off"
        finally:
            await conn.set_autocommit(autocommit)


# -- single statements with database/sql's bad-connection retry -------------

# What a statement helper returns: the row count, one row, all rows.
_ROWCOUNT, _ONE, _ALL = 0, 1, 2


def _dead_before_send(conn: _AnyConnection) -> bool:
    """Whether the connection is dead before anything was written on it (reads only).

    :func:`is_alive` without its transaction test: a statement helper runs on
    a connection just checked out, and only death counts here.
    """
    pgconn = conn.pgconn
    return pgconn.status != _OK or not _quiet(pgconn)


def _not_sent() -> BadConnection:
    return BadConnection(
        "the connection was found dead before the statement was sent (closed, or "
        "the server's FATAL or EOF already in its socket): it runs on another connection"
    )


def _sync_statement(
    proxy: PooledConnection[psycopg.Connection[Any]], query: Any, params: Any, fetch: int
) -> Any:
    conn = proxy.raw
    if _dead_before_send(conn):
        raise _not_sent()
    with conn.execute(query, params) as cur:
        if fetch == _ONE:
            return cur.fetchone()
        if fetch == _ALL:
            return cur.fetchall()
        return cur.rowcount


async def _async_statement(
    proxy: AsyncPooledConnection[psycopg.AsyncConnection[Any]], query: Any, params: Any, fetch: int
) -> Any:
    conn = proxy.raw
    if _dead_before_send(conn):
        raise _not_sent()
    async with await conn.execute(query, params) as cur:
        if fetch == _ONE:
            return await cur.fetchone()
        if fetch == _ALL:
            return await cur.fetchall()
        return cur.rowcount


def execute(
    pool: ConnectionPool[psycopg.Connection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> int:
    """Run one statement on ``pool`` and commit it, with database/sql's retry.

    ``pool.run`` with one statement: a connection found dead before the write
    (see the module docstring) is replaced and the statement sent on another
    one; an error after the write goes to the caller unless
    ``retry="idempotent"``.

    Args:
        pool: a :class:`~poolkit.ConnectionPool` of psycopg connections.
        query: the statement (``%s`` placeholders, or a ``psycopg.sql`` object).
        params: its parameters.
        retry: ``"safe"`` (default) or ``"idempotent"``.
        timeout: for each checkout, as for ``pool.acquire``.

    Returns:
        The statement's ``rowcount``.

    Raises:
        ValueError: ``retry`` is not a mode.
        psycopg.Error: the statement's error, when it may not be retried.
        PoolTimeout, PoolClosed: from the checkout.
    """
    return int(pool.run(_sync_statement, query, params, _ROWCOUNT, retry=retry, timeout=timeout))


def fetchone(
    pool: ConnectionPool[psycopg.Connection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> Any:
    """Run a query on ``pool``; its first row or ``None`` (the rule of :func:`execute`)."""
    return pool.run(_sync_statement, query, params, _ONE, retry=retry, timeout=timeout)


def fetchall(
    pool: ConnectionPool[psycopg.Connection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> list[Any]:
    """Run a query on ``pool``; all its rows (the rule of :func:`execute`)."""
    rows: list[Any] = pool.run(_sync_statement, query, params, _ALL, retry=retry, timeout=timeout)
    return rows


async def async_execute(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> int:
    """:func:`execute` on an :class:`~poolkit.AsyncConnectionPool`."""
    count = await pool.run(_async_statement, query, params, _ROWCOUNT, retry=retry, timeout=timeout)
    return int(count)


async def async_fetchone(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> Any:
    """:func:`fetchone` on an :class:`~poolkit.AsyncConnectionPool`."""
    return await pool.run(_async_statement, query, params, _ONE, retry=retry, timeout=timeout)


async def async_fetchall(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any], Any],
    query: Query,
    params: Params | None = None,
    *,
    retry: str = "safe",
    timeout: float | None = None,
) -> list[Any]:
    """:func:`fetchall` on an :class:`~poolkit.AsyncConnectionPool`."""
    rows: list[Any] = await pool.run(
        _async_statement, query, params, _ALL, retry=retry, timeout=timeout
    )
    return rows


# The factory spellings: the classes themselves, so their signatures are the
# classes' own. ``pg.connector("dbname=app")`` is a PsycopgConnector.
connector = PsycopgConnector
async_connector = AsyncPsycopgConnector
