"""FuncPool: a WorkerPool bound to one function (ants ``PoolWithFunc``, tunny ``NewFunc``).

Callers pass only the argument: ``invoke(arg)`` fires and forgets,
``process(arg, timeout=, cancel=)`` waits for the result. No closure is built
per call of ``invoke``/``submit``.

``FuncPool.with_worker(factory)`` is tunny's ``New(n, ctor)``: each worker
thread owns ``factory()``, whose ``process(arg)`` runs each job; its optional
``interrupt()`` is called when a caller of :meth:`FuncPool.process` gives up
(timeout, ``cancel=`` token) while its job runs, and its optional ``ready()``
before each job (tunny ``Interrupt`` / ``BlockUntilReady``; ``close()`` when
the worker exits, tunny ``Terminate``). Every job of ``process`` also has a
cancel token (:func:`~poolkit.workers.current_token`) that is cancelled then.
A thread cannot be killed: stopping is the job's to do (see
``poolkit.workers._interrupt``); use :class:`~poolkit.ProcessPool` for work
that must be killed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from poolkit._validate import check_callable, check_optional_seconds
from poolkit._waits import event_wait
from poolkit.workers._core import WorkerPoolStats
from poolkit.workers._group import CancelToken
from poolkit.workers._interrupt import Job, check_cancel, give_up_reason
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
        self._fn: Callable[..., R] = check_callable("fn", fn)
        self._stateful = False
        self.pool = WorkerPool(max_workers, **options)

    @classmethod
    def with_worker(
        cls, factory: Callable[[], Any], max_workers: int | None = None, **options: Any
    ) -> FuncPool[Any, Any]:
        """A pool of stateful workers (tunny ``New(n, ctor)``).

        Each worker thread builds ``obj = factory()`` once and runs each job as
        ``obj.process(arg)``. Optional methods of ``obj``: ``ready()`` runs on
        the worker before each job (tunny ``BlockUntilReady``); ``interrupt()``
        is called from the caller's thread when :meth:`process` gives up on
        the job it runs (tunny ``Interrupt``: make ``process`` return soon);
        ``close()`` runs when the worker exits (tunny ``Terminate``).

        Raises:
            TypeError: ``factory`` is not callable, or a bad option.
        """
        pool = cls.__new__(cls)
        pool._fn = _process_on
        pool._stateful = True
        pool.pool = WorkerPool.with_worker(factory, max_workers, **options)
        return pool

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

    def process(
        self, arg: A, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> R:
        """Run the job on ``arg`` and return its result (tunny ``Process``,
        ``ProcessTimed``, ``ProcessCtx``).

        When the caller gives up (``timeout`` passed, or ``cancel`` was
        cancelled), a job not started yet is skipped; a running one is
        interrupted: its cancel token (:func:`~poolkit.workers.current_token`)
        is cancelled and, on a :meth:`with_worker` pool, its worker's
        ``interrupt()`` is called. The job stops when it notices: a thread
        cannot be killed (use :class:`~poolkit.ProcessPool` to kill work).

        Args:
            arg: the argument of the job.
            timeout: most seconds to wait, any size; ``None`` or ``math.inf``
                waits without limit.
            cancel: a :class:`~poolkit.CancelToken` whose cancellation makes
                the call give up (a Go context).

        Raises:
            PoolTimeout: no result within ``timeout`` seconds.
            TaskCancelled: ``cancel`` was cancelled first.
            TypeError: ``cancel`` is not a CancelToken.
            BaseException: whatever the job raised.
        """
        seconds = check_optional_seconds("timeout", timeout, allow_inf=True)
        check_cancel(cancel)
        job = Job(self._fn, stateful=self._stateful)
        fut: Future[R] = self.pool.submit(job, arg)
        settled = threading.Event()
        fut.add_done_callback(lambda _: settled.set())
        try:
            if cancel is not None:
                cancel._on_cancel(settled.set)
            event_wait(settled, seconds)
        except BaseException as exc:  # KeyboardInterrupt in the wait: nobody waits any more
            if not fut.cancel():
                job.interrupt(exc)
            raise
        if fut.done():
            return fut.result()
        reason = give_up_reason(self._fn, arg, cancel, seconds)
        if not fut.cancel():  # not started: skipped; running: interrupted
            job.interrupt(reason)
        raise reason

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


def _process_on(worker: Any, arg: Any) -> Any:
    """A stateful pool's job: the worker object's ``process(arg)`` (tunny ``Worker.Process``)."""
    return worker.process(arg)
