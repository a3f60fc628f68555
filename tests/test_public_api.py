"""The flat public API: every exported name exists and is documented."""

from __future__ import annotations

import pytest

import poolkit


@pytest.mark.parametrize("name", sorted(set(poolkit.__all__) - {"__version__"}))
def test_every_exported_name_exists_and_has_a_docstring(name: str) -> None:
    obj = getattr(poolkit, name)
    assert (obj.__doc__ or "").strip(), f"poolkit.{name} has no docstring"


def test_all_lists_no_name_twice() -> None:
    assert len(poolkit.__all__) == len(set(poolkit.__all__))
