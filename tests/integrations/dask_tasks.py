"""Functions the Dask tests run on the cluster (importable by the worker processes)."""

from __future__ import annotations

import os
import time


def square(x: int) -> int:
    return x * x


def takes_key(x: int, key: str = "default", workers: int = 0) -> str:
    """Its keywords are names Client.submit keeps for itself: they must reach it."""
    return f"{x}:{key}:{workers}"


def slow_square(x: int, seconds: float = 0.1) -> int:
    time.sleep(seconds)
    return x * x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def boom() -> None:
    raise ValueError("boom")


def worker_pid() -> int:
    return os.getpid()


def die() -> None:
    """Kill the worker process running it, every time (a poison task)."""
    os._exit(1)
