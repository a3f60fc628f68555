"""Type variables the annotations share: only the type checker sees their extras.

``Result`` is the result type of a task group made by ``pool.group()``: a type
checker takes it from the annotation (``g: TaskGroup[int] = pool.group()``),
and without one it is ``Any``, as before (PEP 696's ``default``). At run time
this is a plain ``TypeVar``: ``typing.TypeVar`` takes ``default=`` only from
Python 3.13, and ``typing_extensions`` is not a dependency of poolkit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["Result"]

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    Result = DefaultTypeVar("Result", default=Any)
else:
    Result = TypeVar("Result")
