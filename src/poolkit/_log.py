"""Logging for every pool: one logger per family, the pool's name on each record.

Loggers: ``poolkit.connections``, ``poolkit.workers``, ``poolkit.processes``,
``poolkit.buffers``, ``poolkit.integrations.resque``... Every record a pool
emits names the pool in its message and carries it as ``record.pool``
(``extra={"pool": name}``), so a handler can filter or a formatter show it.

Nothing here runs on a hot path: pools log what goes wrong (a timeout, an
overload, a leak, a failed connect, a crash), never a normal acquisition or
task. Events that can come in floods (a ``PoolTimeout`` per caller while a
database is down) go through :func:`log_limited`: one record per pool and kind
per :data:`INTERVAL` seconds, the next one saying how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time

from poolkit import _fork

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers read this as True
if TYPE_CHECKING:
    from typing import Any

__all__ = ["INTERVAL", "log", "log_limited", "log_overload", "logger"]

# Seconds between two records of one kind for one pool (the rest are counted).
INTERVAL = 10.0
# Past this many (pool, kind) entries, stale ones are forgotten.
_MAX_KEYS = 1024

_lock = threading.Lock()
# (logger name, pool name, kind) -> [when the last record went out, records left out since]
_limits: dict[tuple[str, str, str], list[float]] = {}


def _reset_lock_in_child() -> None:
    # A parent thread may have held the lock at the fork; it is not here.
    global _lock
    _lock = threading.Lock()


_fork.first(_reset_lock_in_child)


def logger(family: str) -> logging.Logger:
    """The logger of a family: ``poolkit.<family>``."""
    return logging.getLogger(f"poolkit.{family}")


def log(
    log_to: logging.Logger, level: int, pool: str, msg: str, *args: object, **kwargs: Any
) -> None:
    """Log ``msg % args`` prefixed with the pool's name, with ``record.pool`` set."""
    if log_to.isEnabledFor(level):
        extra = {"pool": pool, **kwargs.pop("extra", {})}
        log_to.log(level, "%s: " + msg, pool, *args, extra=extra, **kwargs)


def log_limited(
    log_to: logging.Logger,
    level: int,
    pool: str,
    kind: str,
    msg: str,
    *args: object,
    clock: Any = time.monotonic,
) -> bool:
    """Like :func:`log`, at most once per :data:`INTERVAL` seconds per pool and ``kind``.

    A record let through after some were left out ends with "(N similar
    records suppressed in the last S s)" and carries ``record.suppressed``.

    Returns:
        Whether the record was emitted.
    """
    if not log_to.isEnabledFor(level):
        return False
    key = (log_to.name, pool, kind)
    now = clock()
    with _lock:
        state = _limits.get(key)
        if state is not None and now - state[0] < INTERVAL:
            state[1] += 1
            return False
        suppressed = 0 if state is None else int(state[1])
        since = 0.0 if state is None else now - state[0]
        if state is None and len(_limits) >= _MAX_KEYS:
            # Pools come and go (generated names are never reused): forget
            # the ones whose interval is over, so the table stays small.
            for old in [k for k, (last, _) in _limits.items() if now - last >= INTERVAL]:
                del _limits[old]
        _limits[key] = [now, 0]
    if suppressed:
        msg += " (%d similar records suppressed in the last %.0f s)"
        args = (*args, suppressed, since)
    log(log_to, level, pool, msg, *args, extra={"suppressed": suppressed})
    return True


def log_overload(pool: str, error: BaseException, family: str = "workers") -> None:
    """A submission refused with ``PoolOverload``: a WARNING, rate-limited per pool."""
    log_limited(logger(family), logging.WARNING, pool, "overload", "PoolOverload: %s", error)
