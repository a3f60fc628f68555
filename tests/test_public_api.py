"""The flat public API: every exported name exists and is documented.

The top level holds the pools, the errors and the names the README's
examples use; statistics classes and the niche ports live in their family
packages, and their old top-level names still resolve for one release with
a ``DeprecationWarning`` naming the new import path.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from types import ModuleType

import pytest

import poolkit
import poolkit.workers

# Each family package and the old top-level names that moved into it.
MOVED_TO = {
    "poolkit.buffers": "BoundedBufferPool BoundedPoolStats BufferPoolStats ByteBufferPoolStats "
    "BytesPool ObjectPoolStats SizedBufferPool",
    "poolkit.connections": "ConnectionPoolStats",
    "poolkit.processes": "GroupTaskOptions ProcessPoolStats TaskOptions",
    "poolkit.workers": "FuncPool MultiPool WorkerPoolStats",
}
MOVED = {name: home for home, names in MOVED_TO.items() for name in names.split()}


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
            # Verbs a pool shares through a poolkit mixin (map) count as its own.
            members: dict[str, object] = {}
            for klass in reversed(obj.__mro__):
                if klass.__module__.startswith("poolkit"):
                    members.update(vars(klass))
            found.extend(
                (f"{name}.{attr}", member)
                for attr, member in members.items()
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


@pytest.mark.parametrize(
    "name",
    [
        "ObjectPool",
        "BufferPool",
        "ByteBufferPool",
        "ConnectionPool",
        "AsyncConnectionPool",
        "KeyedConnectionPool",
        "AsyncKeyedConnectionPool",
        "WorkerPool",
        "AsyncWorkerPool",
        "ProcessPool",
        # Named by the README's examples and text.
        "MaxCapacity",
        "accept_by_capacity",
        "Connector",
        "PooledConnection",
        "AsyncPooledConnection",
    ],
)
def test_the_pools_and_the_readme_names_are_at_the_top_level(name: str) -> None:
    assert name in poolkit.__all__


def test_no_stats_class_or_moved_name_is_at_the_top_level() -> None:
    assert sorted(n for n in poolkit.__all__ if n.endswith("Stats") or n in MOVED) == []


@pytest.mark.parametrize(("name", "home"), sorted(MOVED.items()))
def test_a_moved_name_still_resolves_with_a_warning_naming_its_new_path(
    name: str, home: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"'from {home} import {name}'") as caught:
        obj = getattr(poolkit, name)
    assert obj is getattr(importlib.import_module(home), name)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert name not in dir(poolkit)


def test_a_moved_name_warns_at_every_use() -> None:
    """It is never cached in the package, so each import site is reported."""
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="poolkit.workers import FuncPool"):
            from poolkit import FuncPool  # noqa: F401


def test_a_current_name_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from poolkit import ProcessPool, WorkerPool  # noqa: F401


def _exported_errors() -> list[str]:
    """Exported exception classes; warnings (LeakWarning) are not errors."""
    return sorted(
        name
        for name in poolkit.__all__
        if isinstance(getattr(poolkit, name), type)
        and issubclass(getattr(poolkit, name), BaseException)
        and not issubclass(getattr(poolkit, name), Warning)
    )


@pytest.mark.parametrize("name", _exported_errors())
def test_every_exported_error_derives_from_pool_error(name: str) -> None:
    assert issubclass(getattr(poolkit, name), poolkit.PoolError)


def test_process_pool_close_is_the_shutdown_verb() -> None:
    """``close()`` exists beside ``stop()`` and the Executor's ``shutdown()``."""
    for verb in ("close", "stop", "shutdown", "terminate"):
        assert callable(getattr(poolkit.ProcessPool, verb)), verb
