"""Which process opened each connection, so a forked child leaves its parent's alone.

A child made by ``os.fork()`` shares its parent's sockets. A ROLLBACK, COMMIT
or Terminate it sends on one of them acts on the parent's session: the
parent's open transaction is rolled back (or half of it committed) while its
driver still says "in transaction". The pools never hand a parent's connection
to a child, but a child may still give back a connection it inherited checked
out, leave a ``with pool.connection()`` block, or close its pool; the DB
connectors use this record to do nothing on the wire for such a connection.

Cost: until the process forks, :meth:`Owners.foreign` is one global read.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any

__all__ = ["Owners", "generation"]

# Set in every child forked after this module was imported: until then no
# connection can be foreign, and the check costs nothing.
_forked = False
# Bumped in every forked child: an object stamped with another generation was
# made before the fork, in an ancestor process.
_generation = 0


def _after_fork_in_child() -> None:
    global _forked, _generation
    _forked = True
    _generation += 1


def generation() -> int:
    """The fork generation of this process (0 until it is a forked child)."""
    return _generation


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Owners:
    """The pid that opened each live connection (weakly held)."""

    __slots__ = ("_pids",)

    def __init__(self) -> None:
        self._pids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def opened(self, conn: object) -> None:
        """Record that this process opened ``conn``."""
        # Not weak-referenceable or not hashable: never counted as foreign.
        with contextlib.suppress(TypeError):
            self._pids[conn] = os.getpid()

    def foreign(self, conn: object) -> bool:
        """Whether ``conn`` was opened by another process (this is a forked child)."""
        if not _forked:
            return False
        try:
            pid = self._pids.get(conn)
        except TypeError:
            return False
        return pid is not None and pid != os.getpid()
