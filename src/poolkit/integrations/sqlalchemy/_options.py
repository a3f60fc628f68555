"""PoolkitPool's arguments: SQLAlchemy's pool arguments mapped onto poolkit's options.

SQLAlchemy's names keep SQLAlchemy's meanings and defaults (those of
``QueuePool``); ``poolkit_options`` passes the options SQLAlchemy has no name
for straight to :class:`~poolkit.ConnectionPool`. An option given both ways is
refused, so no setting is silently overridden.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from poolkit._validate import check_bool, check_int, check_seconds
from poolkit.connections._options import make_options

__all__ = ["PASSED_THROUGH", "UNLIMITED", "map_options"]

# max_overflow=-1 is SQLAlchemy's "no limit". poolkit's pools are bounded by
# default; asked for by name, the bound is one no process reaches.
UNLIMITED = sys.maxsize

# ConnectionPool options that poolkit_options may carry.
PASSED_THROUGH = frozenset(
    {
        "clock",
        "leak_timeout",
        "lifetime_jitter",
        "max_idle_time",
        "max_lifetime",
        "max_waiting",
        "name",
        "order",
        "ping_after",
    }
)

# ConnectionPool options that poolkit_options may not carry, and what to use.
_REFUSED = {
    "max_size": "the cap is pool_size + max_overflow",
    "max_idle": "connections beyond pool_size are closed on return, as QueuePool does",
    "timeout": "use pool_timeout",
    "min_size": (
        "PoolkitPool opens each connection in the thread that checks it out, as "
        "QueuePool does, so that a failed connect raises there; it keeps none warm"
    ),
    "on_create": "use SQLAlchemy's pool events (connect)",
    "on_acquire": "use SQLAlchemy's pool events (checkout)",
    "on_release": "use SQLAlchemy's pool events (checkin, reset)",
    "on_discard": "use SQLAlchemy's pool events (close, invalidate)",
}


def _recycle(value: object) -> float | None:
    """``pool_recycle`` as a lifetime in seconds; negative (SQLAlchemy's -1) is never."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"pool_recycle must be a number of seconds, got {type(value).__name__}")
    if value < 0:
        return None
    return check_seconds("pool_recycle", value, allow_zero=False)


def map_options(
    *,
    pool_size: object,
    max_overflow: object,
    timeout: object,
    recycle: object,
    pre_ping: object,
    use_lifo: object,
    poolkit_options: object,
) -> dict[str, Any]:
    """The keyword arguments of the :class:`~poolkit.ConnectionPool` behind a PoolkitPool.

    - ``pool_size`` + ``max_overflow`` → ``max_size`` (``max_overflow=-1``: no
      cap); ``pool_size`` → ``max_idle`` (overflow connections close on return;
      ``pool_size=0`` keeps every one);
    - ``pool_timeout`` → ``timeout``; ``pool_recycle`` → ``max_lifetime`` with
      no jitter unless asked (-1: never); ``pool_pre_ping`` → ``ping_after=0``
      (a ping at every checkout; a ``ping_after`` of its own pings only
      connections idle longer); ``pool_use_lifo`` → ``order``;
    - ``max_idle_time`` defaults to never, as ``QueuePool`` keeps its idle
      connections.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument is out of range, or given twice (SQLAlchemy's
            name and ``poolkit_options``).
    """
    size = check_int("pool_size", pool_size, minimum=0)
    overflow = check_int("max_overflow", max_overflow, minimum=-1)
    if overflow == -1:
        max_size = UNLIMITED
    else:
        max_size = size + overflow
        if max_size < 1:
            raise ValueError(
                "pool_size + max_overflow must be at least 1, got "
                f"pool_size={size} + max_overflow={overflow}; max_overflow=-1 means no cap"
            )
    extra = _check_poolkit_options(poolkit_options)
    lifetime = _recycle(recycle)
    if lifetime is not None and "max_lifetime" in extra:
        raise ValueError(
            "pool_recycle and poolkit_options['max_lifetime'] set the same thing; give one"
        )
    if use_lifo is not None:
        check_bool("pool_use_lifo", use_lifo)
        if "order" in extra:
            raise ValueError(
                "pool_use_lifo and poolkit_options['order'] set the same thing; give one"
            )
    options: dict[str, Any] = {
        "max_size": max_size,
        "max_idle": size if size > 0 else max_size,
        "timeout": check_seconds("pool_timeout", timeout, allow_inf=True),
        "max_lifetime": lifetime,
        # pool_recycle is a hard bound ("no connection older than this"): no
        # jitter unless asked for; poolkit's jitter only shortens lifetimes.
        "lifetime_jitter": 0.0,
        "max_idle_time": None,
        "ping_after": 0.0 if check_bool("pool_pre_ping", pre_ping) else None,
    }
    if use_lifo is not None:
        options["order"] = "lifo" if use_lifo else "fifo"
    options.update(extra)
    make_options(**options)  # every value checked now, each error naming its option
    return options


def _check_poolkit_options(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            "poolkit_options must be a mapping of ConnectionPool options, got "
            f"{type(value).__name__}"
        )
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _REFUSED:
            raise ValueError(f"poolkit_options[{key!r}] is not accepted: {_REFUSED[key]}")
        if key not in PASSED_THROUGH:
            raise ValueError(
                f"poolkit_options has an unknown option {key!r}; known: {sorted(PASSED_THROUGH)}"
            )
        out[key] = item
    return out
