"""The rule for tests whose server is absent: skip locally, fail in CI."""

from __future__ import annotations

import pytest

from tests.adapters.conftest import missing


def test_absent_server_fails_the_test_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="memcached is required in CI"):
        missing("memcached")


def test_absent_server_skips_the_test_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="memcached is not available"):
        missing("memcached")
