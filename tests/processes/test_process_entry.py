"""How a worker process starts: its entry point, what it imports, the parent's ``__main__``.

Every worker runs ``poolkit.processes._child.main``: forked under ``fork``,
imported by name under ``spawn`` and ``forkserver``. The parent's main module
may be a script, a script run with ``-i``, or a ``python -c`` string (no
``__file__``, as a notebook kernel's ``__main__``); each must work under
every start method.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import poolkit
from poolkit import ProcessPool
from tests.processes import tasks
from tests.processes.conftest import PROMPT

SRC = str(Path(poolkit.__file__).resolve().parent.parent)
METHODS = ("forkserver", "spawn", "fork")


def test_a_spawned_worker_imports_only_the_child_entry_of_poolkit() -> None:
    """No pool, thread pool, connection or buffer module is loaded in a worker."""
    with ProcessPool(1, "spawn") as pool:
        modules = pool.submit(tasks.loaded_modules).result(PROMPT)
    assert [m for m in modules if m.split(".")[0] == "poolkit"] == [
        "poolkit",
        "poolkit._lazy",
        "poolkit.processes",
        "poolkit.processes._child",
    ]


# Tasks: a builtin (pickled by name) and a function of the main module (by
# name when the main module has a file, else by value with cloudpickle).
MAIN = """
import sys
from poolkit import ProcessPool

def double(x):
    return 2 * x

if __name__ == "__main__":
    for method in {methods!r}:
        with ProcessPool(2, method) as pool:
            print(method, pool.submit(abs, -3).result(20), list(pool.map(double, [1, 2])))
"""
EXPECTED = [f"{method} 3 [2, 4]" for method in METHODS]


def _run(args: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, *args],
        input="",  # -i: the prompt after the script reads end-of-file and exits
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[: len(METHODS)]


def _main_code() -> str:
    return textwrap.dedent(MAIN.format(methods=METHODS))


def test_a_script_runs_under_every_start_method(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(_main_code())
    assert _run([str(script)]) == EXPECTED


def test_a_script_run_with_dash_i_runs_under_every_start_method(tmp_path: Path) -> None:
    """``python -i script.py``: the interactive prompt starts after the script (stdin is empty)."""
    script = tmp_path / "main.py"
    script.write_text(_main_code())
    assert _run(["-i", str(script)]) == EXPECTED


def test_python_dash_c_runs_under_every_start_method() -> None:
    """A ``-c`` main has no file (as in a notebook): its functions travel by value (cloudpickle)."""
    pytest.importorskip("cloudpickle")
    assert _run(["-c", _main_code()]) == EXPECTED
