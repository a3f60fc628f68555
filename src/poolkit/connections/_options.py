"""The options both connection pools take, checked once and shared by both drivers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar

from poolkit._validate import (
    Clock,
    check_bool,
    check_callable,
    check_int,
    check_optional_int,
    check_optional_seconds,
    check_seconds,
)

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_IDLE_TIME",
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_RECONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LIFETIME_JITTER",
    "ConnectionPoolOptions",
    "KeyOptions",
    "PoolOptions",
    "check_timeout",
    "make_options",
]

# Finite by default: asyncpg's infinite acquire wait is a recurring outage report
# (a leak turns into a hang); psycopg_pool and SQLAlchemy both use 30 s.
DEFAULT_TIMEOUT = 30.0
# Bounded by default (redis-py moved from 2**31 to 100 after users hit the limit
# of their servers); 10 matches httpcore and asyncpg.
DEFAULT_MAX_SIZE = 10
# psycopg_pool's max_lifetime default: one hour, so connections rebalance across
# replicas and server-side memory bloat is bounded.
DEFAULT_MAX_LIFETIME = 3600.0
# psycopg_pool's max_idle default: ten minutes idle and a connection is closed.
DEFAULT_MAX_IDLE_TIME = 600.0
# Each connection's lifetime is shortened by up to this fraction, at random, so
# connections opened together do not all reconnect together (psycopg_pool: 5 %).
LIFETIME_JITTER = 0.05
# close() waits this long for busy connections to come back (psycopg_pool: 5 s).
DEFAULT_CLOSE_TIMEOUT = 5.0
# open(wait=True) and wait() give min_size connections this long (psycopg_pool: 30 s).
DEFAULT_OPEN_TIMEOUT = 30.0
# A background connection attempt that keeps failing gives up after this long
# and calls reconnect_failed(pool) (psycopg_pool: 5 minutes).
DEFAULT_RECONNECT_TIMEOUT = 300.0

Order = Literal["lifo", "fifo"]
Hook = Callable[..., object]
C = TypeVar("C")


class KeyOptions(TypedDict, Generic[C], total=False):
    """The options of a pool of ``C`` connections that a keyed pool applies to each key.

    For type checkers: ``DBPool(connector, **options)``, ``sqlite_pool(path,
    **options)`` and the keyed pools' ``**options`` take these names and
    types, so ``max_sise=4`` is an error before it is a ``TypeError``.
    """

    timeout: float
    max_waiting: int | None
    max_lifetime: float | None
    lifetime_jitter: float
    max_idle_time: float | None
    order: str
    ping_after: float | None
    check: Callable[[C], object] | None
    leak_timeout: float | None
    reconnect_timeout: float | None
    # Called with the pool (a keyed pool passes its key's pool).
    reconnect_failed: Callable[[Any], object] | None
    clock: Clock | None
    timings: bool
    # Called with the seconds waited when an acquisition gives up.
    on_timeout: Callable[[float], object] | None
    on_create: Callable[[C], object] | None
    on_acquire: Callable[[C], object] | None
    on_release: Callable[[C], object] | None
    on_discard: Callable[[C, str], object] | None
    name: str | None


class ConnectionPoolOptions(KeyOptions[C], total=False):
    """Every keyword option of :class:`~poolkit.ConnectionPool` (and its async twin)."""

    min_size: int
    max_size: int
    max_idle: int | None


@dataclass(frozen=True)
class PoolOptions:
    """Every option of a connection pool, validated."""

    min_size: int
    max_size: int
    max_idle: int
    timeout: float
    max_waiting: int | None
    max_lifetime: float | None
    lifetime_jitter: float
    max_idle_time: float | None
    order: Order
    ping_after: float | None
    check: Hook | None
    leak_timeout: float | None
    reconnect_timeout: float | None
    reconnect_failed: Hook | None
    clock: Clock
    on_create: Hook | None
    on_acquire: Hook | None
    on_release: Hook | None
    on_discard: Hook | None
    name: str
    # Observability: record acquire-wait, hold and creation times in stats();
    # on_timeout(seconds waited) runs when an acquisition gives up.
    timings: bool = True
    on_timeout: Hook | None = None


def make_options(
    *,
    min_size: object = 0,
    max_size: object = DEFAULT_MAX_SIZE,
    max_idle: object = None,
    timeout: object = DEFAULT_TIMEOUT,
    max_waiting: object = None,
    max_lifetime: object = DEFAULT_MAX_LIFETIME,
    lifetime_jitter: object = LIFETIME_JITTER,
    max_idle_time: object = DEFAULT_MAX_IDLE_TIME,
    order: object = "lifo",
    ping_after: object = None,
    check: object = None,
    leak_timeout: object = None,
    reconnect_timeout: object = DEFAULT_RECONNECT_TIMEOUT,
    reconnect_failed: object = None,
    clock: object = None,
    on_create: object = None,
    on_acquire: object = None,
    on_release: object = None,
    on_discard: object = None,
    name: object = None,
    timings: object = True,
    on_timeout: object = None,
) -> PoolOptions:
    """Check every option and fill in defaults.

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option is out of range or inconsistent with another.
    """
    mn = check_int("min_size", min_size, minimum=0)
    mx = check_int("max_size", max_size, minimum=1)
    if mn > mx:
        raise ValueError(f"min_size must be <= max_size, got min_size={mn} > max_size={mx}")
    idle = check_optional_int("max_idle", max_idle, minimum=0)
    if idle is None:
        idle = mx
    if idle < mn:
        raise ValueError(
            f"max_idle must be >= min_size, got max_idle={idle} < min_size={mn}: "
            "connections kept for min_size would be closed on return"
        )
    jitter = check_seconds("lifetime_jitter", lifetime_jitter)
    if jitter >= 1:
        raise ValueError(f"lifetime_jitter must be a fraction in [0, 1), got {lifetime_jitter!r}")
    if order not in ("lifo", "fifo"):
        raise ValueError(f"order must be 'lifo' or 'fifo', got {order!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    hooks: dict[str, Any] = {}
    for hook_name, hook in (
        ("on_create", on_create),
        ("on_acquire", on_acquire),
        ("on_release", on_release),
        ("on_discard", on_discard),
        ("check", check),
        ("reconnect_failed", reconnect_failed),
        ("on_timeout", on_timeout),
    ):
        hooks[hook_name] = check_callable(hook_name, hook, optional=True)

    def no_limit(name: str, value: object, allow_zero: bool = True) -> float | None:
        # math.inf means "no limit", the same as None (the docstrings say so).
        seconds = check_optional_seconds(name, value, allow_zero=allow_zero, allow_inf=True)
        return None if seconds == math.inf else seconds

    return PoolOptions(
        min_size=mn,
        max_size=mx,
        max_idle=min(idle, mx),
        timeout=check_seconds("timeout", timeout, allow_inf=True),
        max_waiting=check_optional_int("max_waiting", max_waiting, minimum=1),
        max_lifetime=no_limit("max_lifetime", max_lifetime, allow_zero=False),
        lifetime_jitter=jitter,
        max_idle_time=no_limit("max_idle_time", max_idle_time, allow_zero=False),
        order="lifo" if order == "lifo" else "fifo",
        ping_after=no_limit("ping_after", ping_after),
        check=hooks["check"],
        leak_timeout=no_limit("leak_timeout", leak_timeout, allow_zero=False),
        reconnect_timeout=no_limit("reconnect_timeout", reconnect_timeout, allow_zero=False),
        reconnect_failed=hooks["reconnect_failed"],
        clock=time.monotonic if clock is None else check_callable("clock", clock),
        on_create=hooks["on_create"],
        on_acquire=hooks["on_acquire"],
        on_release=hooks["on_release"],
        on_discard=hooks["on_discard"],
        name="" if name is None else name,
        timings=check_bool("timings", timings),
        on_timeout=hooks["on_timeout"],
    )


def check_timeout(timeout: object, default: float) -> float:
    """The per-call ``timeout`` (``None`` = the pool's default), validated.

    Any size is accepted; ``math.inf`` means "wait without limit".

    Raises:
        TypeError: not a number.
        ValueError: negative or NaN.
    """
    if timeout is None:
        return default
    return check_seconds("timeout", timeout, allow_inf=True)
