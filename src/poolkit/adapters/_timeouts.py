"""The timeouts the adapters take, checked one way for all of them.

Every network adapter takes timeouts of any size: one longer than a socket can
wait (:data:`poolkit.adapters.sockets.SOCKET_TIMEOUT_MAX`, about 24.8 days),
or ``math.inf``, means no limit (see :func:`poolkit.adapters.sockets.socket_timeout`).
"""

from __future__ import annotations

import math

from poolkit._validate import check_optional_seconds, check_seconds

__all__ = ["check_idle_timeout", "check_pool_timeout", "check_timeout"]


def check_timeout(name: str, value: object) -> float:
    """A connect, I/O or wait timeout in seconds: > 0; ``math.inf``: no limit.

    Zero is refused: it would make a socket non-blocking (a request then fails
    with ``BlockingIOError``), or a wait fail at once.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is not > 0, or is NaN.
    """
    return check_seconds(name, value, allow_zero=False, allow_inf=True)


def check_pool_timeout(value: object) -> float:
    """``pool_timeout`` of a client whose pool opens connections in its own threads.

    Not 0, as :func:`check_timeout`: a new connection is opened by the pool's
    threads, so a zero wait would fail whenever no idle connection is ready,
    even below the per-host (per-server) cap.

    Raises:
        TypeError, ValueError: as :func:`check_timeout`.
    """
    return check_timeout("pool_timeout", value)


def check_idle_timeout(value: object) -> float | None:
    """``idle_timeout``: seconds an idle kept-alive connection is kept.

    Returns:
        The seconds, or ``None`` (the pools' "no limit") for ``None`` and
        ``math.inf``: kept until the server closes it.

    Raises:
        TypeError, ValueError: as :func:`check_timeout`.
    """
    seconds = check_optional_seconds("idle_timeout", value, allow_zero=False, allow_inf=True)
    return None if seconds == math.inf else seconds
