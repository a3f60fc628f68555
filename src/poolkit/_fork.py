"""Fork safety for every pool: one ``os.register_at_fork`` hook for the package.

A child made by ``os.fork()`` inherits its parent's sockets, locks and queued
work, but only the thread that forked. What each family does there:

- connection pools forget the parent's connections without closing them:
  closing is not harmless (a database driver sends a terminate message, ending
  the parent's session: sqlalchemy/sqlalchemy#7815), and reusing them
  interleaves two processes on one wire (SQLAlchemy's ``dispose(close=False)``
  and redis-py's pid check do the same);
- thread worker pools get fresh locks and an empty queue and start their own
  threads on first use; asyncio worker pools break (their loop stayed behind);
- the DB connectors compare :func:`generation` to leave connections opened by
  an ancestor alone.

Objects register with :func:`track`; the hook calls their
``_after_fork_in_child()`` in the child. ``os.register_at_fork`` makes all
this free on the hot paths: no pid comparison per acquisition or submission.
Nothing a hook does may take a lock another parent thread could have held at
the fork: that thread does not exist in the child.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["ForkAware", "first", "generation", "track"]

_LOG = logging.getLogger("poolkit")


class ForkAware(Protocol):
    """An object that puts itself right in a forked child."""

    def _after_fork_in_child(self) -> None: ...


_TRACKED: weakref.WeakSet[ForkAware] = weakref.WeakSet()
# Plain callables run before any tracked object: they restore shared state
# (the Futures' Conditions) that the objects' own hooks then rely on.
_FIRST: list[Callable[[], None]] = []

# Bumped in every forked child: anything stamped with another generation was
# made before the fork, in an ancestor process. 0 until this process forks.
_generation = 0


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1
    for fn in _FIRST:
        fn()
    for obj in list(_TRACKED):
        # One object that fails to reset must not leave the others unreset:
        # a connection pool skipped here would still hold (and could touch)
        # the parent's connections.
        try:
            obj._after_fork_in_child()
        except BaseException:
            _LOG.exception("resetting %r in a forked child failed", obj)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def track(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in any child forked from now on (weakly held)."""
    _TRACKED.add(obj)


def first(fn: Callable[[], None]) -> None:
    """Run ``fn()`` in every forked child, before any tracked object is reset."""
    _FIRST.append(fn)


def generation() -> int:
    """The fork generation of this process (0 until it is a forked child)."""
    return _generation
