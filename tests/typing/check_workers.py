"""Worker and process pools: arguments checked against the callable, results typed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from typing import assert_type

from poolkit import AsyncWorkerPool, ProcessPool, WorkerPool
from poolkit.processes import ProcessTaskGroup
from poolkit.workers import AsyncTaskGroup, TaskGroup


def parse(text: str, base: int = 10) -> int:
    return int(text, base)


def add(a: int, b: int) -> int:
    return a + b


async def fetch(url: str, *, retries: int = 0) -> bytes:
    return url.encode() * (retries + 1)


async def pair(a: int, b: str) -> str:
    return b * a


def threads() -> None:
    with WorkerPool(4) as pool:
        assert_type(pool.submit(parse, "10", base=2), Future[int])
        pool.submit(parse, 10)  # type: ignore[arg-type]
        pool.submit(parse, "10", bse=2)  # type: ignore[call-arg]
        pool.go(parse, "1")
        pool.go(parse)  # type: ignore[call-arg]
        assert_type(pool.map(parse, ["1", "2"]), Iterator[int])
        assert_type(pool.map(add, [1], [2], ordered=False), Iterator[int])
        pool.map(parse, [1, 2])  # type: ignore[arg-type]
        pool.map(add, [1], ["2"])  # type: ignore[arg-type]
        pool.map(parse, ["1"], chunksise=2)  # type: ignore[call-overload]
        group: TaskGroup[int] = pool.group()
        with group:
            group.submit(parse, "3")
            group.submit(parse, 3)  # type: ignore[arg-type]
            group.submit(str, 3)  # type: ignore[arg-type]  # not an int result
        assert_type(group.wait(), list[int])
        with pool.group() as untyped:  # no annotation: results are Any, arguments still checked
            untyped.submit(parse, 3)  # type: ignore[arg-type]


def processes() -> None:
    with ProcessPool(2) as pool:
        assert_type(pool.submit(add, 1, 2), Future[int])
        pool.submit(add, 1, "2")  # type: ignore[arg-type]
        assert_type(pool.try_submit(add, 1, 2), Future[int] | None)
        pool.try_submit(add, 1)  # type: ignore[call-arg]
        pool.go(add, 1, 2)
        pool.go(add, 1, b="x")  # type: ignore[arg-type]
        assert_type(pool.map(add, [1, 2], [3, 4], chunksize=2), Iterator[int])
        pool.map(add, ["1"], [2])  # type: ignore[arg-type]
        timed = pool.options(timeout=5.0)
        assert_type(timed.submit(parse, "1"), Future[int])
        timed.submit(parse, 1)  # type: ignore[arg-type]
        group: ProcessTaskGroup[int] = pool.group()
        with group:
            group.submit(add, 1, 2)
            group.submit(add, "1", 2)  # type: ignore[arg-type]
            group.options(timeout=1.0).submit(add, 1, None)  # type: ignore[arg-type]
        assert_type(group.wait(), list[int])


async def asyncio_pool() -> None:
    async with AsyncWorkerPool(8) as pool:
        fut = await pool.submit(fetch, "https://example.org", retries=2)
        assert_type(fut, asyncio.Future[bytes])
        await pool.submit(fetch, 42)  # type: ignore[arg-type]
        await pool.submit(fetch, "u", retry=2)  # type: ignore[call-arg]
        await pool.go(fetch, "u")
        await pool.go(fetch)  # type: ignore[call-arg]
        pool.go_nowait(pair, 2, "x")
        pool.go_nowait(pair, "x", 2)  # type: ignore[arg-type]
        assert_type(await pool.submit_wait(pair, 2, "ab"), str)
        assert_type(pool.map(fetch, ["a", "b"]), AsyncIterator[bytes])
        assert_type(pool.map(pair, [1], ["a"], progress=True), AsyncIterator[str])
        pool.map(fetch, [1, 2])  # type: ignore[arg-type]
        pool.map(fetch, ["a"], progres=True)  # type: ignore[call-overload]
        group: AsyncTaskGroup[bytes] = pool.group()
        async with group:
            member = await group.submit(fetch, "u")
            assert_type(member, asyncio.Future[bytes])
            await group.submit(fetch, b"u")  # type: ignore[arg-type]
            await group.go(fetch, "v")
            await group.go(pair, 1, "x")  # type: ignore[arg-type]  # a str result
        assert_type(await group.wait(), list[bytes])
