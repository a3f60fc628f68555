"""How a worker process starts: its entry point, what it imports, the parent's ``__main__``.

Every worker runs ``poolkit.processes._child.main``: forked under ``fork``,
imported by name under ``spawn`` and ``forkserver``. The parent's main module
may be a script, a script run with ``-i``, a ``python -c`` string (no
``__file__``, as a notebook kernel's ``__main__``) or a script read from
standard input (``__file__`` is ``"<stdin>"``); each must work under every
start method. A script without the ``__main__`` guard is told the fix.
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
from poolkit.processes import _workers
from tests.optional import require
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


def _python(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run this interpreter on ``args`` with the tested poolkit first on its path."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,  # -i: the prompt after the script reads end-of-file and exits
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _run(args: list[str], stdin: str = "") -> list[str]:
    done = _python(args, stdin)
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
    require("cloudpickle", "cloudpickle")
    assert _run(["-c", _main_code()]) == EXPECTED


def test_a_script_read_from_stdin_runs_under_every_start_method() -> None:
    """``python - < script``: ``__main__.__file__`` is ``"<stdin>"``, which no worker can run.

    Workers start as for ``-c`` (nothing of the main to import) under the
    default start method, spawn and fork, and the script's functions travel
    by value.
    """
    require("cloudpickle", "cloudpickle")
    assert _run(["-"], stdin=_main_code()) == EXPECTED


def test_the_default_start_method_runs_a_script_from_stdin() -> None:
    """The same with ``mp_context`` left out, as most scripts do."""
    require("cloudpickle", "cloudpickle")
    code = MAIN.replace("ProcessPool(2, method)", "ProcessPool(2)").format(methods=("default",))
    assert _run(["-"], stdin=textwrap.dedent(code))[:1] == ["default 3 [2, 4]"]


# A script that forgot the guard: each worker's import of it starts the pool again.
UNGUARDED = """
from poolkit import ProcessPool

def double(x):
    return 2 * x

with ProcessPool(2{method}) as pool:
    print(pool.submit(double, 3).result(20))
"""


@pytest.mark.parametrize("method", ["", ", 'spawn'"], ids=["default", "spawn"])
def test_a_script_without_the_main_guard_is_told_the_fix_in_one_line(
    tmp_path: Path, method: str
) -> None:
    """No page of tracebacks from every worker: the PoolBroken line names the guard and fork.

    The error is named by its public path, and the would-be workers print one
    line each at most (instead of multiprocessing's bootstrapping error and
    the nested pool's traceback).
    """
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(UNGUARDED.format(method=method)))
    done = _python([str(script)])
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("poolkit.PoolBroken: ")
    assert _workers.UNGUARDED_MAIN_FIX in lines[-1]
    assert "if __name__ ==" in _workers.UNGUARDED_MAIN_FIX
    assert 'mp_context="fork"' in _workers.UNGUARDED_MAIN_FIX
    assert len(lines) <= 20, done.stderr
    assert "bootstrapping phase" not in done.stderr
