"""Per-task options for ProcessPool, kept out of ``submit``'s keyword namespace.

``Executor.submit(fn, /, *args, **kwargs)`` hands every keyword to ``fn``; a
pool that reads ``timeout=`` for itself silently takes it away from a ``fn``
that has a ``timeout`` parameter (``ProcessPoolExecutor`` and ``WorkerPool``
pass it on). So ``submit``, ``go``, ``try_submit``, ``asubmit`` and a group's
``submit`` pass everything to ``fn``, and per-task options go through a view:

    pool.options(timeout=5.0).submit(fn, x, timeout=3)   # fn gets timeout=3

:class:`TaskOptions` is that view: immutable, cheap (two slots), with the
pool's task methods, each applying its options. Options are validated once,
when the view is made, so a bad value raises at ``options(...)`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from poolkit._typing import Result
from poolkit._validate import check_optional_seconds
from poolkit.workers._map import MapArgs
from poolkit.workers._verbs import MapVerb

if TYPE_CHECKING:
    from poolkit.processes._map import ProcessTaskGroup
    from poolkit.processes._pool import ProcessPool

__all__ = ["NO_OPTIONS", "GroupTaskOptions", "Options", "TaskOptions"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Options:
    """Validated per-task options (the data a :class:`TaskOptions` view applies).

    Attributes:
        timeout: seconds a task may run once a worker starts it; ``None``:
            no limit (``math.inf`` is stored as ``None``).
    """

    timeout: float | None = None

    @classmethod
    def build(cls, *, timeout: object = None) -> Options:
        """Validate raw option values.

        Raises:
            TypeError, ValueError: a bad value (the message names the option).
        """
        seconds = check_optional_seconds("timeout", timeout, allow_zero=False, allow_inf=True)
        # inf and None mean the same: no deadline, so the dispatcher sets no timer.
        return cls(None if seconds == math.inf else seconds)


NO_OPTIONS = Options()


class TaskOptions(MapVerb):
    """A ProcessPool with per-task options applied; made by ``pool.options(...)``.

    Has the pool's task methods — ``go``, ``submit``, ``try_submit``,
    ``asubmit``, ``map``, ``group`` — which behave exactly as the pool's and
    also apply the options to each task (to each chunk for ``map``). Every
    keyword of ``submit(fn, *args, **kwargs)`` still goes to ``fn``. The view
    is immutable and holds no state of its own: keep it, or make one per call.
    """

    __slots__ = ("_options", "_pool")

    def __init__(self, pool: ProcessPool, options: Options) -> None:
        self._pool = pool
        self._options = options

    @property
    def timeout(self) -> float | None:
        """Seconds each task may run (``None``: no limit)."""
        return self._options.timeout

    def go(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """``pool.go(fn, *args, **kwargs)`` with these options."""
        self._pool._go(fn, args, kwargs, self._options)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``pool.submit(fn, *args, **kwargs)`` with these options."""
        future = self._pool._submit(fn, args, kwargs, self._options, block=True)
        assert future is not None  # a blocking submit waits for room or raises
        return future

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """``pool.try_submit(fn, *args, **kwargs)`` with these options."""
        return self._pool._submit(fn, args, kwargs, self._options, block=False)

    async def asubmit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``await pool.asubmit(fn, *args, **kwargs)`` with these options."""
        return await self._pool._asubmit(fn, args, kwargs, self._options)

    def _map(
        self, fn: Callable[..., T], iterables: tuple[Iterable[Any], ...], how: MapArgs
    ) -> Iterator[T]:
        # map() itself is the pool's (MapVerb): its timeout is the whole map's
        # deadline, these options' timeout bounds each chunk.
        return self._pool._map(fn, iterables, how, self._options)

    def group(self, *, cancel_on_error: bool = False) -> ProcessTaskGroup[Result]:
        """``pool.group(...)`` whose ``submit`` applies these options."""
        return self._pool._group(cancel_on_error, self._options)

    def __repr__(self) -> str:
        return f"<TaskOptions timeout={self.timeout!r} of {self._pool._options.name!r}>"


class GroupTaskOptions:
    """A ProcessPool group with per-task options applied; made by ``group.options(...)``.

    ``submit``/``go`` add tasks to the same group (its ``wait`` and
    ``cancel_on_error`` see them), with these options instead of the group's.
    """

    __slots__ = ("_group", "_options")

    def __init__(self, group: ProcessTaskGroup[Any], options: Options) -> None:
        self._group = group
        self._options = options

    @property
    def timeout(self) -> float | None:
        """Seconds each task may run (``None``: no limit)."""
        return self._options.timeout

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``group.submit(fn, *args, **kwargs)`` with these options."""
        return self._group._submit_with(fn, args, kwargs, self._options)

    def go(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """``group.go(fn, *args, **kwargs)`` with these options."""
        self._group._submit_with(fn, args, kwargs, self._options)

    def __repr__(self) -> str:
        return f"<GroupTaskOptions timeout={self.timeout!r} of {self._group!r}>"
