"""Lazy public names for poolkit's packages (PEP 562 module ``__getattr__``).

A package lists its public names with the module that defines each; the
first access imports that module and caches the value in the package, so
later accesses are plain attribute reads. ``import poolkit`` then costs
about a millisecond instead of importing every family (and asyncio,
multiprocessing, logging...) up front, and ``from poolkit import
ConnectionPool`` loads the connection family only.

Names that moved keep working for one release: the access warns with a
``DeprecationWarning`` naming the new import path, and is never cached, so
every use site is reported.

This module imports nothing but :mod:`importlib` and :mod:`sys`: it runs on
every ``import poolkit``.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers read this as True
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["install", "load"]


def install(
    package: str,
    exports: Mapping[str, tuple[str, ...]],
    moved: Mapping[str, str] | None = None,
    rest: str | None = None,
) -> None:
    """Give ``package`` a lazy ``__getattr__`` and a ``__dir__`` listing its names.

    Set at run time on the module object, they stay invisible to type
    checkers: a module ``__getattr__`` they could see would make them type
    every unknown attribute as its return type, so a misspelt name would
    pass. They read the names the package imports under ``if TYPE_CHECKING:``.

    Args:
        package: the package's ``__name__``.
        exports: module -> the public names it defines.
        moved: old public name -> the package to import it from now.
        rest: the module every other name of ``__all__`` comes from (so a
            module whose public names are all re-exported is not listed
            twice: once in its own ``__all__``, once here).

    Raises:
        RuntimeError: ``__all__`` and ``exports`` disagree (a packaging bug,
            caught on the first import rather than on a user's first use).
    """
    module = sys.modules[package]
    where = {name: source for source, names in exports.items() for name in names}
    public = list(getattr(module, "__all__", ()))
    if rest is not None:
        where.update((name, rest) for name in public if name not in where)
    missing = sorted(set(public) - set(where) - set(vars(module)))
    if missing:
        raise RuntimeError(f"{package}.__all__ lists names with no module: {missing}")

    def __getattr__(name: str) -> object:
        return load(package, name, where, moved)

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(public))

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__dir__ = __dir__  # type: ignore[method-assign]


def load(
    package: str,
    name: str,
    exports: Mapping[str, str],
    moved: Mapping[str, str] | None = None,
) -> object:
    """The value of ``package.name``, importing the module that defines it.

    Args:
        package: the package's ``__name__``.
        name: the attribute asked for.
        exports: public name -> the module that defines it.
        moved: old public name -> the package to import it from now; such
            a name still resolves, with a ``DeprecationWarning``.

    Returns:
        The attribute's value (cached in the package unless it moved).

    Raises:
        AttributeError: ``name`` is neither exported nor moved.
    """
    module = exports.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value
    new_home = None if moved is None else moved.get(name)
    if new_home is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    import warnings

    warnings.warn(
        f"{package}.{name} moved: import it with 'from {new_home} import {name}'; "
        f"the old name goes away in the next release",
        DeprecationWarning,
        stacklevel=3,  # the caller of the package's __getattr__
    )
    return getattr(importlib.import_module(new_home), name)
