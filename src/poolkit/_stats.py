"""What every stats snapshot shares: ``family``, ``to_dict()`` and renamed fields.

Each family's ``stats()`` returns a frozen dataclass of its own; they follow
one vocabulary (docs/stats.md) so that an exporter can map them. This module
gives them the common part:

- :class:`StatsBase`: ``family`` (a class constant: ``"connections"``,
  ``"workers"``...) and :meth:`~StatsBase.to_dict`, a JSON-ready dict of the
  fields plus the derived figures a class lists in ``_derived``;
- :func:`renamed`: old field names kept for one release as read-only
  properties that warn with a ``DeprecationWarning`` naming the new one.

Imports nothing beyond the standard library's ``dataclasses``: every family
loads it with its stats.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers read this as True
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar

    T = TypeVar("T")

__all__ = ["StatsBase", "jsonable", "renamed"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: nested stats and histograms as dicts,
    mappings with str keys, tuples as lists."""
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


class StatsBase:
    """The part every stats snapshot shares (a mixin of the frozen dataclasses)."""

    __slots__ = ()

    # The pool family the snapshot describes: its logger is poolkit.<family>
    # and its Prometheus metrics start with poolkit_<family>.
    family: ClassVar[str] = ""
    # Properties computed from the fields that to_dict() includes too.
    _derived: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict: ``family``, every field, the derived figures.

        Histograms become ``{"count", "sum", "max", "p50", "p99", "buckets"}``
        (see :class:`poolkit.Histogram`); mappings keep their keys as str.
        Deprecated field names are not included.
        """
        out: dict[str, Any] = {"family": self.family}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = jsonable(getattr(self, f.name))
        for name in self._derived:
            out[name] = jsonable(getattr(self, name))
        return out


def renamed(**old_to_new: str) -> Callable[[type[T]], type[T]]:
    """A class decorator keeping old field names as deprecated read-only aliases.

    ``@renamed(puts="returned")`` gives the class a ``puts`` property that
    returns ``returned`` with a ``DeprecationWarning`` (the old name goes away
    in the next release).
    """

    def alias(cls_name: str, old: str, new: str) -> property:
        def get(self: object) -> Any:
            warnings.warn(
                f"{cls_name}.{old} is renamed {new} (docs/stats.md); "
                "the old name goes away in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(self, new)

        get.__doc__ = f"Deprecated: the old name of ``{new}``."
        return property(get)

    def decorate(cls: type[T]) -> type[T]:
        for old, new in old_to_new.items():
            setattr(cls, old, alias(cls.__name__, old, new))
        return cls

    return decorate
