"""Which process opened each connection, so a forked child leaves its parent's alone.

A child made by ``os.fork()`` shares its parent's sockets. A ROLLBACK, COMMIT
or Terminate it sends on one of them acts on the parent's session: the
parent's open transaction is rolled back (or half of it committed) while its
driver still says "in transaction". The pools never hand a parent's connection
to a child, but a child may still give back a connection it inherited checked
out, leave a ``with pool.connection()`` block, or close its pool; the DB
connectors use this record to do nothing on the wire for such a connection.

Cost: until the process forks, :meth:`Owners.foreign` is one global read
(``poolkit._fork``'s generation, bumped in every forked child).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any

from poolkit import _fork

__all__ = ["Owners", "generation"]

# Re-exported: the DB connectors stamp their proxies with it.
generation = _fork.generation


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
        if not _fork._generation:  # never forked: nothing can be foreign
            return False
        try:
            pid = self._pids.get(conn)
        except TypeError:
            return False
        return pid is not None and pid != os.getpid()
