"""An adapter whose client library is missing says which extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "library", "extra"),
    [("psycopg", "psycopg", "postgres"), ("memcache", "pymemcache", "memcache")],
)
def test_importing_an_adapter_without_its_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, library: str, extra: str
) -> None:
    """The ImportError names the adapter, the library and `pip install 'poolkit[extra]'`."""
    name = f"poolkit.adapters.{module}"
    monkeypatch.setitem(sys.modules, library, None)  # None in sys.modules: import fails
    monkeypatch.delitem(sys.modules, name, raising=False)  # restored after the test
    with pytest.raises(ImportError) as caught:
        importlib.import_module(name)
    message = str(caught.value)
    assert message.startswith(f"{name} needs {library}")
    assert f"pip install 'poolkit[{extra}]'" in message
    assert isinstance(caught.value.__cause__, ImportError)
