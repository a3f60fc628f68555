"""The registry of live pools: every pool's name, and :func:`poolkit.pools`.

Each pool takes a ``name`` (or is given one such as ``ConnectionPool-1``) and
adds itself here when its constructor finishes. The registry holds weak
references only, so a pool dropped without ``close()`` is still collected and
leaves the list by itself; a closed pool is left out of :func:`pools` at once.
Exporters (Prometheus, logs) read the live pools from here, each with its
``name`` and ``stats()``.

Thread-safe: one lock guards the table. Weak-reference callbacks never touch
it (a collection may run one at any point, even inside the locked section);
dead references are pruned on the next call instead.
"""

from __future__ import annotations

import itertools
import threading
import weakref

from poolkit import _fork

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers read this as True
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add", "name_for", "pools"]

_lock = threading.Lock()
# Registration order -> weak reference; a dict keeps the order pools were made in.
_refs: dict[int, weakref.ReferenceType[Any]] = {}
_serial = itertools.count()
# Per kind (class name) the next number of a generated name.
_numbers: dict[str, itertools.count[int]] = {}
# Prune dead references once the table has grown past twice its live size.
_prune_at = 64


def _reset_lock_in_child() -> None:
    # Another parent thread may have held the lock at the fork: it does not
    # exist in the child, so start with a fresh lock (the table is still valid).
    global _lock
    _lock = threading.Lock()


_fork.first(_reset_lock_in_child)


def name_for(pool: object, name: object) -> str:
    """The pool's name: ``name`` checked, or a new one like ``ConnectionPool-1``.

    Raises:
        TypeError: ``name`` is neither ``None`` nor a str.
        ValueError: ``name`` is empty.
    """
    if name is None:
        kind = type(pool).__name__
        with _lock:
            counter = _numbers.setdefault(kind, itertools.count(1))
            return f"{kind}-{next(counter)}"
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError("name must not be empty (pass None for a generated name)")
    return name


def add(pool: object) -> None:
    """Add ``pool`` to the registry, weakly (call it last in the constructor)."""
    global _prune_at
    ref = weakref.ref(pool)
    with _lock:
        _refs[next(_serial)] = ref
        if len(_refs) > _prune_at:
            _prune_locked()
            _prune_at = max(64, 2 * len(_refs))


def _prune_locked() -> None:
    for serial in [s for s, ref in _refs.items() if ref() is None]:
        del _refs[serial]


def pools() -> list[Any]:
    """The live pools of this process, oldest first.

    Every pool poolkit makes registers itself (connection pools and their
    keyed twins, worker, process, object and buffer pools, ``ResqueWorker``,
    ``DaskPool``). Closed pools are not listed, nor pools already collected
    (the registry keeps no pool alive). A keyed pool is listed once, not per
    key.

    Returns:
        A new list; each pool has ``name`` and ``stats()``, whose
        ``to_dict()`` is JSON-ready (see docs/stats.md).
    """
    with _lock:
        _prune_locked()
        live = [ref() for ref in _refs.values()]
    return [pool for pool in live if pool is not None and not pool.closed]


class Named:
    """The read-only ``name`` of a pool that keeps it as ``_name``."""

    __slots__ = ()

    _name: str

    @property
    def name(self) -> str:
        """The pool's name (given, or generated from its class: ``BufferPool-1``...)."""
        return self._name


class NamedClosable(Named):
    """``name`` and ``closed`` of a pool that keeps them as ``_name`` and ``_closed``."""

    __slots__ = ()

    _closed: bool

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed
