"""The flat public API: every exported name exists and is documented."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import poolkit
import poolkit.workers


@pytest.mark.parametrize("name", sorted(set(poolkit.__all__) - {"__version__"}))
def test_every_exported_name_exists_and_has_a_docstring(name: str) -> None:
    obj = getattr(poolkit, name)
    assert (obj.__doc__ or "").strip(), f"poolkit.{name} has no docstring"


def test_all_lists_no_name_twice() -> None:
    assert len(poolkit.__all__) == len(set(poolkit.__all__))


def _public_callables(module: ModuleType) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in sorted(module.__all__):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            found.append((name, obj.__init__))
            found.extend(
                (f"{name}.{attr}", member)
                for attr, member in vars(obj).items()
                if not attr.startswith("_") and callable(member)
            )
        elif callable(obj):
            found.append((name, obj))
    return found


@pytest.mark.parametrize(("name", "fn"), _public_callables(poolkit.workers))
def test_no_worker_pool_signature_has_a_private_parameter(name: str, fn: object) -> None:
    """A keyword starting with ``_`` in a public signature is API users can't rely on."""
    try:
        params = inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a builtin without a signature
        return
    private = [p for p in params if p.startswith("_")]
    assert private == [], f"{name} takes private parameters {private}"


@pytest.mark.parametrize(("pool", "verb"), [("WorkerPool", "close"), ("AsyncWorkerPool", "aclose")])
def test_worker_pools_share_the_shutdown_verbs(pool: str, verb: str) -> None:
    """close() for threads, aclose() for asyncio, as every other family; stop() stays."""
    cls = getattr(poolkit, pool)
    assert callable(getattr(cls, verb))
    assert callable(cls.stop)
