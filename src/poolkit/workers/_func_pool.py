"""FuncPool: a WorkerPool bound to one function (ants ``PoolWithFunc``, tunny ``NewFunc``).

Callers pass only the argument: ``invoke(arg)`` fires and forgets,
``process(arg, timeout=)`` waits for the result. No closure is built per call.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from poolkit._errors import PoolTimeout
from poolkit._validate import check_callable, check_optional_seconds
from poolkit.workers._core import WorkerPoolStats
from poolkit.workers._thread_pool import WorkerPool

__all__ = ["FuncPool"]

A = TypeVar("A")
R = TypeVar("R")


class FuncPool(Generic[A, R]):
    """A pool of threads that all run ``fn(arg)``.

    Args:
        fn: the function every task runs.
        max_workers: most threads at once.
        **options: any other :class:`WorkerPool` option.

    Raises:
        TypeError: ``fn`` is not callable, or a bad option.
    """

    def __init__(
        self, fn: Callable[[A], R], max_workers: int | None = None, **options: Any
    ) -> None:
        self._fn: Callable[[A], R] = check_callable("fn", fn)
        self.pool = WorkerPool(max_workers, **options)

    def invoke(self, arg: A) -> None:
        """Run ``fn(arg)`` on a worker, fire and forget (ants ``Invoke``).

        Raises:
            PoolClosed: the pool is stopped.
            PoolOverload: full and not allowed to wait.
        """
        self.pool.go(self._fn, arg)

    def submit(self, arg: A) -> Future[R]:
        """Run ``fn(arg)`` on a worker; return its Future."""
        return self.pool.submit(self._fn, arg)

    def process(self, arg: A, timeout: float | None = None) -> R:
        """Run ``fn(arg)`` and return its result (tunny ``Process`` / ``ProcessTimed``).

        Args:
            arg: the argument for ``fn``.
            timeout: most seconds to wait, any size; ``None`` or ``math.inf``
                waits without limit.

        Raises:
            PoolTimeout: no result within ``timeout`` seconds (the task, if
                not started yet, is cancelled).
            BaseException: whatever ``fn`` raised.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        fut = self.pool.submit(self._fn, arg)
        try:
            return fut.result(seconds)
        except TimeoutError:
            if fut.done() and not fut.cancelled() and fut.exception() is not None:
                raise
            fut.cancel()
            raise PoolTimeout(
                f"{self._fn!r}({arg!r}) gave no result within {seconds} s; raise timeout"
            ) from None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every invocation so far finished (see ``WorkerPool.wait``)."""
        self.pool.wait(timeout)

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the pool (see ``WorkerPool.stop``)."""
        self.pool.stop(wait=wait, timeout=timeout)

    def resize(self, max_workers: int) -> None:
        """Change the number of workers (tunny ``SetSize``)."""
        self.pool.resize(max_workers=max_workers)

    def stats(self) -> WorkerPoolStats:
        """The underlying pool's stats."""
        return self.pool.stats()

    def __repr__(self) -> str:
        return f"<FuncPool {self._fn!r} {self.pool!r}>"

    def __enter__(self) -> FuncPool[A, R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
