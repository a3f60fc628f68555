"""Type variables the annotations share: only the type checker sees their extras.

``Result`` is the result type of a task group made by ``pool.group()``: a type
checker takes it from the annotation (``g: TaskGroup[int] = pool.group()``),
and without one it is ``Any``, as before (PEP 696's ``default``). At run time
this is a plain ``TypeVar``: ``typing.TypeVar`` takes ``default=`` only from
Python 3.13, and ``typing_extensions`` is not a dependency of poolkit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["Result", "with_default"]

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    Result = DefaultTypeVar("Result", default=Any)
else:
    Result = TypeVar("Result")


def with_default(params: object, given: int, default: Callable[[Any], object]) -> object:
    """The type arguments of ``Pool[...]`` with the last one filled in at run time.

    The pools whose last type parameter has a PEP 696 default (the proxy type,
    ``ConnectionPool[C]`` meaning ``ConnectionPool[C, PooledConnection[C]]``)
    call this from their ``__class_getitem__``: ``typing.TypeVar`` takes
    ``default=`` only from Python 3.13, so without it ``ConnectionPool[C]``
    would raise at run time (a subclass, an alias). When ``given`` arguments
    were written, ``default(last)`` is appended; otherwise ``params`` is
    returned as it is.
    """
    args = params if isinstance(params, tuple) else (params,)
    if len(args) == given:
        return (*args, default(args[-1]))
    return params
