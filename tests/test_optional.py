"""The rule for tests whose optional dependency is missing: skip locally, fail in CI."""

from __future__ import annotations

import json

import pytest

from tests.optional import require


def test_missing_dependency_skips_the_test_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"pip install 'poolkit\[extra\]'"):
        require("poolkit_no_such_module", "extra")


def test_missing_dependency_fails_the_test_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI installs every extra the tests use: a missing one is a broken setup, not a skip."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI \\(CI=true\\) installs it"):
        require("poolkit_no_such_module", "extra")


def test_present_dependency_is_returned() -> None:
    assert require("json", "none") is json
