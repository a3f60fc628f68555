"""The ``poolkit`` command as a user gets it: from the wheel, in a fresh virtual environment.

One wheel is built and installed per session, in a virtual environment with
nothing but poolkit (no matplotlib, no benchmark peers), outside the checkout
(so nothing can fall back on its ``bench/`` folder). Then ``poolkit bench``
and ``poolkit demo`` run as a new user would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.optional import in_ci

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    """A virtual environment with poolkit installed from its wheel."""

    python: Path
    poolkit: Path
    workdir: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``poolkit *args`` there, from a folder that is not the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POOLKIT_BENCH_DIR")}
        return subprocess.run(
            [str(self.poolkit), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _checked(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        why = f"{what} failed:\n{done.stdout}\n{done.stderr}"
        if in_ci():
            pytest.fail(why)
        pytest.skip(why)  # e.g. no network for the build backend on a laptop


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _checked(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
        "building the wheel",
    )
    (wheel,) = dist.glob("poolkit-*.whl")
    env_dir = base / "venv"
    # No pip inside: this interpreter's pip installs into it (--python), which
    # saves the seconds ensurepip takes; and no index: poolkit needs nothing.
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _checked(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        "installing the wheel",
    )  # fmt: skip
    workdir = base / "work"
    workdir.mkdir()
    return Installed(python=python, poolkit=env_dir / "bin" / "poolkit", workdir=workdir)


def test_the_wheel_is_what_runs_and_has_no_matplotlib(installed: Installed) -> None:
    done = subprocess.run(
        [str(installed.python), "-c", "import poolkit, importlib.util as u; "
         "print(poolkit.__file__); print(u.find_spec('matplotlib'))"],
        cwd=installed.workdir, capture_output=True, text=True, check=True,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    where, matplotlib = done.stdout.splitlines()
    assert where.startswith(str(installed.python.parent.parent))
    assert matplotlib == "None"


def test_bench_help_lists_the_families_shipped_in_the_wheel(installed: Installed) -> None:
    done = installed.run("bench", "--help")
    assert done.returncode == 0, done.stderr
    listing = done.stdout.split("families:")[1]
    for family in ("adapters", "buffers", "connections", "processes", "workers"):
        assert f"\n  {family} " in listing


def test_bench_runs_a_family_from_the_wheel_and_names_the_missing_peers(
    installed: Installed,
) -> None:
    """No "no benchmark folder found": the modules ship in the package; peers are listed."""
    done = installed.run("bench", "buffers", "--quick")
    assert done.returncode == 0, done.stderr
    assert "ObjectPool get+put (hit)" in done.stdout
    skipped = next(line for line in done.stdout.splitlines() if line.startswith("skipped"))
    assert "pondpond (pond)" in skipped
    assert "syncpool-py (syncpool_py)" in skipped
    assert "ns_per_op: time per operation, lower is better" in done.stdout


def test_demo_without_matplotlib_says_so_first_and_writes_a_report(installed: Installed) -> None:
    helped = installed.run("demo", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "\n  buffers " in helped.stdout.split("parts:")[1]
    done = installed.run("demo", "buffers", "--quick", "--out", "report")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("poolkit demo | date: ")
    assert lines[1].startswith("note: charts are not drawn: matplotlib is not installed")
    report = (installed.workdir / "report" / "report.md").read_text()
    assert "| waste: bytes handed out |" in report
    assert "matplotlib is not installed" in report
