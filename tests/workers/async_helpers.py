"""Coroutines and helpers shared by the AsyncWorkerPool tests."""

from __future__ import annotations

import asyncio
from typing import Any

from poolkit import AsyncWorkerPool
from tests.workers.conftest import PROMPT

__all__ = ["PROMPT", "double", "fail", "run", "sleepy", "worker_tasks"]


async def double(x: int) -> int:
    return 2 * x


async def sleepy(x: int) -> int:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return x


async def fail(x: int = 0) -> int:
    raise ValueError(f"bad {x}")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, PROMPT))


def worker_tasks(pool: AsyncWorkerPool) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(pool._core.name)]
