"""Run the test suite on every other CPython the project supports that this machine has.

``make test-all`` runs ``make test`` (ruff, mypy and the suite on the default
interpreter), then this script, which:

1. finds the CPython interpreters here at or above ``requires-python``'s floor:
   pyenv's versions and ``python3.N`` on ``PATH``, one per minor version (the
   default interpreter's own minor version is skipped: ``make test`` ran it);
2. sets each one up as ``make test`` would, in its own virtual environment
   (``.venv-3.12``...): the setup lines of ``make -n test VENV=...`` (create
   the environment, install the same extras, the test servers), so the two
   cannot drift apart. The setups run side by side: they are downloads and
   installs, not tests;
3. runs the suite in each, one after another: never two suites at once, since
   the suite has timing-sensitive tests and the machine may have two cores;
4. prints a line per interpreter with its result and timings; exits non-zero
   if any setup or suite failed.

Standard library only; run it with any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a candidate prints about itself: implementation, version, real path.
_PROBE = (
    "import platform, sys; print(platform.python_implementation(), "
    "'.'.join(map(str, sys.version_info[:3])), sys.executable)"
)
# Newest minor version looked for on PATH (python3.11 ... python3.N).
_NEWEST_MINOR = 20
# Lines of `make -n test` from which on it checks rather than sets up.
_CHECK = re.compile(r"\b(ruff|mypy|pytest)\b")


@dataclass(frozen=True)
class Interpreter:
    """One CPython found on the machine."""

    version: str  # "3.12.1"
    executable: str

    @property
    def minor(self) -> str:
        """``"3.12"``."""
        return ".".join(self.version.split(".")[:2])

    @property
    def venv(self) -> Path:
        """Its virtual environment for the suite."""
        return ROOT / f".venv-{self.minor}"


def _floor() -> tuple[int, int]:
    """The lowest supported version, from ``requires-python`` (``">=3.11"``)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        spec = tomllib.load(f)["project"]["requires-python"]
    match = re.search(r">=\s*(\d+)\.(\d+)", spec)
    if match is None:
        raise SystemExit(f"test_all: cannot read a floor from requires-python {spec!r}")
    return int(match.group(1)), int(match.group(2))


def _candidates() -> list[str]:
    """Paths that may be Python interpreters: pyenv's versions, then PATH's python3.N."""
    found: list[str] = []
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for version_dir in sorted(Path(pyenv_root, "versions").glob("*")):
        if (version_dir / "bin" / "python3").is_file():
            found.append(str(version_dir / "bin" / "python3"))
    for minor in range(11, _NEWEST_MINOR + 1):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            found.append(on_path)
    return found


def _probe(exe: str) -> Interpreter | None:
    """What ``exe`` is, or None when it does not run (a pyenv shim of an unselected version)."""
    try:
        done = subprocess.run(
            [exe, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    parts = done.stdout.split(maxsplit=2)
    if done.returncode != 0 or len(parts) != 3 or parts[0] != "CPython":
        return None
    return Interpreter(version=parts[1], executable=parts[2].strip())


def find_interpreters(skip_minor: str) -> list[Interpreter]:
    """One CPython per supported minor version, except ``skip_minor``; oldest first."""
    floor = _floor()
    by_minor: dict[str, Interpreter] = {}
    for exe in _candidates():
        found = _probe(exe)
        if found is None or found.minor == skip_minor or found.minor in by_minor:
            continue
        major, minor = map(int, found.minor.split("."))
        if (major, minor) >= floor:
            by_minor[found.minor] = found
    return sorted(by_minor.values(), key=lambda i: tuple(map(int, i.minor.split("."))))


def setup_script(interp: Interpreter) -> str:
    """What ``make test`` does before its checks, for ``interp`` and its environment."""
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "test", f"VENV={interp.venv.name}",
         f"PYTHON={interp.executable}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines: list[str] = []
    for line in dry.stdout.splitlines():
        if _CHECK.search(line):
            break
        lines.append(line)
    return "\n".join(["set -euo pipefail", *lines])


def _short(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def main(argv: list[str]) -> int:
    """Set up and test every other interpreter; print a summary; 0 if all passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip", metavar="X.Y", required=True, help="minor version `make test` already ran"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    interpreters = find_interpreters(args.skip)
    if not interpreters:
        print(f"test-all: no CPython but {args.skip} here; `make test` covered it")
        return 0
    names = ", ".join(f"{i.version} ({i.executable})" for i in interpreters)
    print(f"test-all: also testing on {names}", flush=True)

    started = time.monotonic()
    setups: dict[Interpreter, tuple[subprocess.Popen[bytes], Path]] = {}
    for interp in interpreters:
        log = ROOT / f"{interp.venv.name}.setup.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", setup_script(interp)], cwd=ROOT, stdout=out, stderr=out
            )
        setups[interp] = (proc, log)
    ready: list[Interpreter] = []
    results: list[str] = []
    for interp, (proc, log) in setups.items():
        code = proc.wait()
        if code != 0:
            print(log.read_text(errors="replace"), file=sys.stderr)
            results.append(f"{interp.version}: setup FAILED (exit {code}); see {log.name}")
        else:
            log.unlink()
            ready.append(interp)
    print(f"test-all: environments set up in {_short(time.monotonic() - started)}", flush=True)
    for interp in ready:
        print(f"\n== Python {interp.version}: pytest ==", flush=True)
        t0 = time.monotonic()
        # Output goes straight to the terminal, pytest's closing line with it.
        code = subprocess.run(
            [str(interp.venv / "bin" / "python"), "-m", "pytest", *args.pytest_args],
            cwd=ROOT,
            check=False,
        ).returncode
        verdict = "passed" if code == 0 else f"FAILED (exit {code})"
        results.append(f"{interp.version}: suite {verdict} in {_short(time.monotonic() - t0)}")
    print("\ntest-all summary (the default interpreter ran in `make test` above):")
    for line in results:
        print(f"  {line}")
    print(f"  setup and suites of the other interpreters: {_short(time.monotonic() - started)}")
    return 0 if len(ready) == len(interpreters) and all("passed" in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
