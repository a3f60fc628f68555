"""Optional dependencies in tests: skip locally when one is missing, fail in CI.

A test that needs a package from one of poolkit's extras (tqdm, cloudpickle,
matplotlib...) calls :func:`require`. On a developer's machine without the
package it is skipped with a reason naming the extra to install; in CI
(``CI=true``), where ``make test`` installs every extra the tests use, a
missing package is a failure, so a CI run never passes by skipping the tests
that matter (the rule ``tests/adapters`` applies to servers).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``)."""
    return os.environ.get("CI", "").lower() == "true"


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` for a test, or skip it (locally) / fail it (in CI).

    Args:
        module: the module to import (``"cloudpickle"``).
        extra: the poolkit extra that installs it (``"cloudpickle"``).

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f"{module} is not installed (pip install 'poolkit[{extra}]')"
        if in_ci():
            pytest.fail(f"{why}; CI (CI=true) installs it: {exc}")
        pytest.skip(why)
