# Generated from src/poolkit/connections/_lease_async.py by scripts/gen_sync.py: do not edit.
# Change the source, then run `python scripts/gen_sync.py`.
"""``pool.connection()``: the context manager that acquires and always gives back.

Leaving the block:

- normally: the connector's ``commit(conn)``, if it has one, runs first (the
  work of the block is made durable, as psycopg_pool's ``connection()`` does),
  then the connection is given back. If ``commit`` raises, the error
  propagates; the connection is discarded when the error broke it (the
  connector's ``is_broken``, or a ``BaseException`` that is not an
  ``Exception``), else given back, where ``reset`` rolls back.
- by an exception: never commits. The connection is given back (``reset``
  rolls back), or discarded when the connector calls the error broken (by
  default any ``OSError``); a block left by ``KeyboardInterrupt`` (or an async
  block cancelled mid-use) discards it too, since half a request may be on
  the wire.
- in a forked child, for a connection checked out in the parent: nothing is
  called at all; the child forgets the connection (``poolkit._fork``).

Which errors break a connection is decided in one place,
``ConnectorHooks.broken`` (``_protocols.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from poolkit.connections._pooled import PooledConnectionBase
    from poolkit.connections._sync import ConnectionPool

__all__ = ["Lease", "end_use"]

# What the pool hands out: an PooledConnection, or the connector's typed proxy.
P = TypeVar("P", bound="PooledConnectionBase[Any]")


class Lease(Generic[P]):
    """``pool.connection()``: acquire on entry; commit, release (or discard) on exit."""

    __slots__ = ("_pool", "_proxy", "_timeout")

    def __init__(self, pool: ConnectionPool[Any, P], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    def __enter__(self) -> P:
        self._proxy = self._pool.acquire(self._timeout)
        return self._proxy

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        pool, proxy = self._pool, self._proxy
        entry = proxy._bound
        if exc is None and entry is not None and entry.proxy is None and pool._hooks.commit is None:
            # end_use()'s common case without its call: a clean exit,
            # still held, nothing to commit.
            pool.release(proxy)
            return
        end_use(pool, proxy, exc)


def end_use(pool: ConnectionPool[Any, P], proxy: P, exc: BaseException | None) -> None:
    """Leave a use of ``proxy`` that ended with ``exc`` (None: normally), as the module says.

    ``connection()`` blocks and ``run()`` end by this one rule.
    """
    entry = proxy._bound
    if entry is None or entry.proxy is not None:
        return  # released or discarded inside the block
    if pool._foreign(entry):
        pool.release(proxy)  # forgets the parent's connection, calls nothing
        return
    hooks = pool._hooks
    if exc is not None:
        if hooks.broken(exc):
            # Broken, or interrupted mid-use (the wire may hold half a request).
            pool.discard(proxy, "broken")
        else:
            pool.release(proxy)
        return
    if hooks.commit is not None:
        try:
            hooks.commit(entry.conn)
        except BaseException as err:
            # Interrupted mid-commit too: the transaction's fate is unknown.
            if hooks.broken(err):
                pool.discard(proxy, "broken")
            else:
                pool.release(proxy)
            raise
    pool.release(proxy)
