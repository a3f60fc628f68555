"""Argument checks shared by every pool's constructor and entry points.

Each check returns the value (normalised) or raises with a message that names
the parameter, shows what was given and says what is accepted, so a user can
fix the call without reading poolkit's source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "Clock",
    "check_bool",
    "check_callable",
    "check_int",
    "check_optional_int",
    "check_optional_seconds",
    "check_seconds",
]

# A source of monotonic time in seconds; pools take one so tests can use a
# fake clock instead of sleeping.
Clock = Callable[[], float]


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an int ≥ ``minimum``.

    Raises:
        TypeError: not an int (bool is refused: ``True`` is never a size).
        ValueError: below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_optional_int(name: str, value: object, *, minimum: int | None = None) -> int | None:
    """Like :func:`check_int`, but ``None`` (meaning "no limit") passes through."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_seconds(
    name: str, value: object, *, allow_zero: bool = True, allow_inf: bool = False
) -> float:
    """``value`` as a non-negative number of seconds.

    Any finite size is accepted (``1e300`` included): the waits that use it go
    through :mod:`poolkit._waits`, which slices them to what the OS allows.
    With ``allow_inf``, ``math.inf`` passes too and means "no limit".

    Raises:
        TypeError: not a number.
        ValueError: negative, NaN, infinite (unless ``allow_inf``), or zero
            when ``allow_zero`` is false.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float range: no wait can be longer
        seconds = math.inf
    if math.isnan(seconds) or (math.isinf(seconds) and not (allow_inf and seconds > 0)):
        hint = " (math.inf for no limit)" if allow_inf else ""
        raise ValueError(f"{name} must be a finite number of seconds{hint}, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def check_optional_seconds(
    name: str, value: object, *, allow_zero: bool = True, allow_inf: bool = False
) -> float | None:
    """Like :func:`check_seconds`, but ``None`` (meaning "no limit") passes through."""
    if value is None:
        return None
    return check_seconds(name, value, allow_zero=allow_zero, allow_inf=allow_inf)


def check_callable(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is callable (or ``None`` when ``optional``).

    Raises:
        TypeError: not callable.
    """
    if value is None and optional:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``.

    A flag is never coerced: ``"yes"``, ``2`` or ``None`` are refused rather
    than silently read as true or false.

    Raises:
        TypeError: not a bool.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value
