"""What the pool tests need from each world, in async and sync twins.

``test_async_pool.py`` uses the ``async_`` names and ``Async`` classes;
``scripts/gen_sync.py`` turns them into these sync twins in ``test_pool.py``:
a test body run by :func:`run` (``asyncio.run`` for the async one), a
concurrent caller started by :func:`spawn` (a thread, or a task), and a wait
on independent state by :func:`wait_until`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# How long a test waits for a state it is sure to reach (the suite's timeout is longer).
PATIENCE = 30.0


def run(main: Callable[[], None]) -> None:
    """Run a test body."""
    main()


def async_run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async test body on a new event loop."""
    asyncio.run(main())


class Background(Generic[T]):
    """A call running in a thread; :meth:`join` returns its result or raises its error."""

    def __init__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._result: list[T] = []
        self._error: list[BaseException] = []

        def body() -> None:
            try:
                self._result.append(fn(*args, **kwargs))
            except BaseException as exc:
                self._error.append(exc)

        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    def join(self) -> T:
        """Wait for the call; its result, or its exception raised here."""
        self._thread.join(PATIENCE)
        assert not self._thread.is_alive(), "the background call did not end"
        if self._error:
            raise self._error[0]
        return self._result[0]


class AsyncBackground(Generic[T]):
    """A coroutine running in a task; :meth:`join` returns its result or raises its error."""

    def __init__(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> None:
        async def body() -> T:
            return await fn(*args, **kwargs)

        self._task = asyncio.get_running_loop().create_task(body())

    async def join(self) -> T:
        """Wait for the call; its result, or its exception raised here."""
        return await asyncio.wait_for(self._task, PATIENCE)


def spawn(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Background[T]:
    """Start ``fn(*args, **kwargs)`` in a thread."""
    return Background(fn, *args, **kwargs)


def async_spawn(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> AsyncBackground[T]:
    """Start ``fn(*args, **kwargs)`` in a task (it runs once the caller awaits)."""
    return AsyncBackground(fn, *args, **kwargs)


def wait_until(predicate: Callable[[], object]) -> None:
    """Poll ``predicate`` until it holds (other threads make it true)."""
    pause = threading.Event()
    for _ in range(int(PATIENCE / 0.001)):
        if predicate():
            return
        pause.wait(0.001)
    raise AssertionError("the awaited state was not reached")


async def async_wait_until(predicate: Callable[[], object]) -> None:
    """Yield to the loop until ``predicate`` holds (other tasks make it true)."""
    for i in range(int(PATIENCE / 0.001)):
        if predicate():
            return
        # A few bare yields first: most states need one pass of the loop.
        await asyncio.sleep(0 if i < 10 else 0.001)
    raise AssertionError("the awaited state was not reached")


def settle() -> None:
    """Let background closes finish: nothing to wait for, threads close inline."""


async def async_settle() -> None:
    """Let background closes finish: the pool closes in tasks, each done in a loop pass."""
    for _ in range(3):
        await asyncio.sleep(0)
