"""``pool.run(fn, *args)``: database/sql's retry on a bad connection.

database/sql runs each operation through ``db.retry``: when the driver says
``driver.ErrBadConn`` (the connection is bad **and** the server cannot have
done the work), the operation runs again, up to two tries on pooled
connections, then once on a brand-new connection. A server restart then costs
callers nothing: each stale pooled connection fails before anything is sent,
and the caller never sees it.

``run()`` keeps that rule and adds nothing that could run a statement twice:

- **Before anything is sent**, the pool's own checkout already does it: a
  connection that fails the connector's ``check`` (a dead socket, a FATAL from
  the server waiting in it, seen without a round trip) is closed and another
  taken, inside the same ``acquire()``, before ``fn`` gets a connection. This
  costs no try.
- ``fn`` (or a connector's guard inside it) raises :class:`~poolkit.BadConnection`:
  the connection was found dead before the operation was written. It is
  discarded and ``fn`` runs again, in every ``retry`` mode.
- ``retry="idempotent"``: the caller says running ``fn`` twice is harmless (a
  ``SELECT``, an upsert keyed by a request id). Any error the connector calls
  broken (``is_broken``) is retried too, even one raised after the write.
- Otherwise (``retry="safe"``, the default) an error raised by ``fn`` goes to
  the caller as it is: the server may have run the statement, so it is never
  sent again. The connection is discarded if the error broke it.

Tries: :data:`POOLED_TRIES` on connections from the pool, then one on a
connection opened for this call (at ``max_size`` the last try takes a pooled
connection as well, as database/sql does). A ``BaseException`` that is not an
``Exception`` (``KeyboardInterrupt``, a cancellation) is never retried. Each
success commits like a ``with pool.connection()`` block (the connector's
``commit``); a failed commit is retried only under ``retry="idempotent"``.
Each retry counts in ``stats().retries``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from poolkit._errors import BadConnection
from poolkit._validate import check_callable
from poolkit.connections._lease_async import async_end_use

if TYPE_CHECKING:
    from poolkit.connections._async import AsyncConnectionPool
    from poolkit.connections._protocols import ConnectorHooks

__all__ = ["POOLED_TRIES", "RETRY_MODES", "AsyncRunFn", "async_run_with_retries"]

C = TypeVar("C")
T = TypeVar("T")

AsyncRunFn = Callable[..., Awaitable[T]]  # async-only
# sync: RunFn = Callable[..., T]

# database/sql's maxBadConnRetries: tries on pooled connections before the
# last one, on a brand-new connection.
POOLED_TRIES = 2
RETRY_MODES = ("safe", "idempotent")


def check_retry(retry: object) -> str:
    """Validate ``run()``'s ``retry`` mode.

    Raises:
        ValueError: not one of :data:`RETRY_MODES`.
    """
    if retry not in RETRY_MODES:
        raise ValueError(
            f"retry must be 'safe' (only what was not sent) or 'idempotent' "
            f"(any broken connection), got {retry!r}"
        )
    return str(retry)


def retryable(exc: BaseException, retry: str, hooks: ConnectorHooks) -> bool:
    """Whether a try that failed with ``exc`` may run again on another connection."""
    if not isinstance(exc, Exception):
        return False  # interrupted or cancelled: the caller wants out
    if isinstance(exc, BadConnection):
        return True  # dead before the write: nothing ran
    return retry == "idempotent" and hooks.broken(exc)


async def async_run_with_retries(
    pool: AsyncConnectionPool[C, Any],
    fn: AsyncRunFn[T],
    args: tuple[Any, ...],
    retry: str,
    timeout: float | None,
) -> T:
    """The loop of :meth:`AsyncConnectionPool.run` (see the module docstring).

    Raises:
        TypeError: ``fn`` is not callable.
        ValueError: ``retry`` is not a mode.
        Exception: the last try's error, or the first one that may not be retried.
    """
    check_callable("fn", fn)
    mode = check_retry(retry)
    tries = 0
    while True:
        last = tries == POOLED_TRIES
        proxy = await (pool._acquire_new(timeout) if last else pool.acquire(timeout))
        tries += 1
        try:
            result = await fn(proxy, *args)
        except BaseException as exc:
            await async_end_use(pool, proxy, exc)
            error: BaseException = exc
        else:
            try:
                await async_end_use(pool, proxy, None)  # commits
            except BaseException as exc:
                error = exc
            else:
                return result
        if last or not retryable(error, mode, pool._hooks):
            raise error
        pool._count_retry()
