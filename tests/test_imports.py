"""What each import loads: ``import poolkit`` loads no family, each name only its own.

Every check runs in a fresh interpreter, since this one has loaded everything.
Timings are not asserted (they depend on the machine); ``python -X importtime
-c "import poolkit"`` shows them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import poolkit
import poolkit.buffers
import poolkit.connections
import poolkit.processes
import poolkit.workers

FAMILIES = ["adapters", "buffers", "connections", "processes", "workers"]
# Standard-library modules that cost milliseconds each to import; a family
# that does not need them at import time must not load them.
HEAVY = ["asyncio", "concurrent.futures", "logging", "multiprocessing", "typing"]
SRC = str(Path(poolkit.__file__).resolve().parent.parent)


def loaded_by(code: str) -> set[str]:
    """The modules that running ``code`` in a fresh interpreter adds to ``sys.modules``."""
    script = "\n".join(
        [
            "import json, sys",
            "before = set(sys.modules)",
            code,
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ]
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def families(modules: set[str]) -> set[str]:
    return {m.split(".")[1] for m in modules if m.split(".")[0] == "poolkit" and "." in m} & set(
        FAMILIES
    )


def test_import_poolkit_loads_no_family_and_no_heavy_module() -> None:
    modules = loaded_by("import poolkit")
    assert families(modules) == set()
    assert sorted(m for m in HEAVY if m in modules) == []


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ConnectionPool", "connections"),
        ("ObjectPool", "buffers"),
        ("BufferPool", "buffers"),
        ("WorkerPool", "workers"),
        ("ProcessPool", "processes"),
    ],
)
def test_a_pool_loads_its_own_family_only(name: str, family: str) -> None:
    """``from poolkit import ConnectionPool`` loads no workers, buffers or processes module.

    ProcessPool builds on the workers' sans-io core and shared pieces (map,
    groups, futures), so it may load those ``poolkit.workers`` modules.
    """
    modules = loaded_by(f"from poolkit import {name}")
    allowed = {family, "workers"} if family == "processes" else {family}
    assert families(modules) == allowed


@pytest.mark.parametrize("name", ["ConnectionPool", "ObjectPool", "WorkerPool", "ProcessPool"])
def test_a_sync_pool_does_not_import_asyncio(name: str) -> None:
    assert "asyncio" not in loaded_by(f"from poolkit import {name}")


def test_the_worker_pools_load_no_process_code() -> None:
    modules = loaded_by("import poolkit.workers as w\nfor n in w.__all__: getattr(w, n)")
    assert "processes" not in families(modules)
    assert "multiprocessing" not in modules


@pytest.mark.parametrize(
    "package", [poolkit, poolkit.buffers, poolkit.connections, poolkit.processes, poolkit.workers]
)
def test_every_public_name_resolves_and_is_listed_by_dir(package: object) -> None:
    names: list[str] = package.__all__  # type: ignore[attr-defined]
    missing = [n for n in names if not hasattr(package, n)]
    assert missing == []
    assert sorted(set(names) - set(dir(package))) == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    """Resolution must not depend on another module having been imported first."""
    code = "import poolkit\nfor n in poolkit.__all__: getattr(poolkit, n)"
    assert families(loaded_by(code)) == {"buffers", "connections", "processes", "workers"}


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from poolkit import *", namespace)
    assert sorted(set(poolkit.__all__) - set(namespace)) == []


def test_an_unknown_attribute_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'poolkit' has no attribute 'NoSuchPool'"):
        getattr(poolkit, "NoSuchPool")  # noqa: B009  (the name is not typed on purpose)
    with pytest.raises(AttributeError, match=r"'poolkit\.processes' has no attribute 'Nope'"):
        getattr(poolkit.processes, "Nope")  # noqa: B009


def test_a_name_is_the_same_object_at_every_path() -> None:
    from poolkit.processes._pool import ProcessPool

    assert poolkit.ProcessPool is poolkit.processes.ProcessPool is ProcessPool
