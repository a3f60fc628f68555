"""Task functions for the ProcessPool tests, importable by spawned workers.

Standard library only, so a spawned worker imports them fast.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

# How long a task that is meant to be stopped sleeps: far longer than any
# timeout the tests set, so finishing on its own would be a failure.
LONG = 30.0


def identity(x: Any) -> Any:
    """Return ``x``."""
    return x


def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


def square(x: int) -> int:
    """Return ``x * x``."""
    return x * x


def pid(_: object = None) -> int:
    """The worker's process id."""
    return os.getpid()


def loaded_modules(_: object = None) -> list[str]:
    """The names in this process's ``sys.modules``."""
    return sorted(sys.modules)


def sleep_then(seconds: float, value: Any = None) -> Any:
    """Sleep ``seconds``, then return ``value``."""
    time.sleep(seconds)
    return value


def sleep_long(_: object = None) -> None:
    """Sleep far longer than any test waits (to be killed)."""
    time.sleep(LONG)


def wait_for_file(path: str, value: Any = None) -> Any:
    """Wait (bounded) until ``path`` exists, then return ``value`` (a cross-process gate)."""
    deadline = time.monotonic() + LONG
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.002)
    return value


def _mark_started(path: str) -> None:
    """Create ``path`` holding this pid, atomically: it never exists empty."""
    with open(f"{path}.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(f"{path}.tmp", path)


def touch_then_sleep(path: str) -> None:
    """Create ``path`` (the task started), then sleep long."""
    _mark_started(path)
    time.sleep(LONG)


def fail(message: str) -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)


def fail_on(x: int, bad: int) -> int:
    """Return ``x``, or raise ValueError when ``x == bad``."""
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def exit_now(code: int) -> None:
    """End the worker process at once with ``code``."""
    os._exit(code)


def segfault() -> None:
    """Crash the worker with SIGSEGV (reads address 0)."""
    ctypes.string_at(0)


def kill_self() -> None:
    """SIGKILL the worker process from inside."""
    os.kill(os.getpid(), signal.SIGKILL)


def return_lock() -> threading.Lock:
    """Return an unpicklable object."""
    return threading.Lock()


class NeedsTwoArgs(Exception):
    """An exception that pickles but doesn't unpickle (its init needs two args)."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}-{b}")


def raise_unpicklable() -> None:
    """Raise an exception that cannot be rebuilt by unpickling."""
    raise NeedsTwoArgs("a", "b")


def grow_memory(mib: int) -> int:
    """Keep ``mib`` MiB alive in the worker for good; return its pid."""
    _HOARD.append(bytearray(mib << 20))
    for block in _HOARD:
        block[::4096] = b"x" * len(block[::4096])
    return os.getpid()


_HOARD: list[bytearray] = []


def init_fail() -> None:
    """An initializer that always raises."""
    raise RuntimeError("initializer broke")


def init_mark(path: str) -> None:
    """An initializer that appends this pid to ``path``."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")


def finalize_mark() -> None:
    """A finalizer that writes a file named after the pid in $POOLKIT_TEST_DIR."""
    folder = os.environ.get("POOLKIT_TEST_DIR")
    if folder:
        with open(os.path.join(folder, f"final-{os.getpid()}"), "w") as f:
            f.write("done")


def started_then_wait(started: str, gate: str, value: Any = None) -> Any:
    """Create ``started`` (the task runs), then wait for ``gate`` and return ``value``."""
    _mark_started(started)
    return wait_for_file(gate, value)


def echo_timeout(x: Any, timeout: Any = "not given") -> tuple[Any, Any]:
    """Return ``(x, timeout)``: shows whether a ``timeout=`` keyword reached the task."""
    return x, timeout


class Box:
    """A picklable object a weak reference can watch (``map`` results in the parent)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Box({self.value!r})"


def make_box(x: Any) -> Box:
    """Return ``Box(x)``."""
    return Box(x)


def maybe_crash_or_hang(kind: str, value: Any) -> Any:
    """One of the stress test's task kinds: return, raise, crash or hang."""
    if kind == "crash":
        os._exit(7)
    if kind == "hang":
        time.sleep(LONG)
    if kind == "raise":
        raise ValueError(f"task {value} raised")
    if kind == "slow":
        time.sleep(0.01)
    return value


def wait_then_box(gate: str, x: Any) -> Box:
    """Wait (bounded) until ``gate`` exists, then return ``Box(x)``."""
    return Box(wait_for_file(gate, x))


def exit_after_file(path: str, code: int) -> None:
    """Wait (bounded) until ``path`` exists, then end the worker at once with ``code``."""
    wait_for_file(path)
    os._exit(code)
