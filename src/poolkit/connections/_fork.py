"""Fork safety: after ``os.fork()`` the child's pools start empty.

A forked child inherits the parent's sockets. Closing them in the child is not
harmless (a database driver sends a terminate message, ending the parent's
session: sqlalchemy/sqlalchemy#7815), and reusing them interleaves two
processes on one wire. So in the child every pool forgets its connections
without closing them, as SQLAlchemy's ``dispose(close=False)`` and redis-py's
pid check do. ``os.register_at_fork`` makes this free on the hot path: no pid
comparison per acquisition.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["ForkAware", "track"]


class ForkAware(Protocol):
    """A pool that can reset itself in a forked child."""

    def _after_fork_in_child(self) -> None: ...


_POOLS: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def _reset_all() -> None:
    for pool in list(_POOLS):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all)


def track(pool: ForkAware) -> None:
    """Reset ``pool`` in any child forked from now on."""
    _POOLS.add(pool)
