"""What every pool driver shows alike: views of its lifecycle core, ``map``, ``with_worker``.

``WorkerPool``, ``AsyncWorkerPool`` and ``ProcessPool`` each hold a
:class:`~poolkit.workers._lifecycle.Lifecycle` as ``_core``; the read-only
views of it (``max_workers``, ``closed``, ``repr``) are the same code for all
three, written once here in :class:`CoreViews`. The blocking pools' ``map``
(and ``ProcessPool.options(...).map``) is one :class:`MapVerb`: its signature
and contract are the same everywhere, only the ``_map`` that runs it differs.
None of it is on a per-task hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack, overload

from poolkit._validate import check_bool, check_callable
from poolkit.workers._core import WorkerPoolStats, describe
from poolkit.workers._map import MapArgs

if TYPE_CHECKING:
    from poolkit.workers._lifecycle import Lifecycle

__all__ = ["CoreViews", "MapOptions", "MapVerb", "ShutdownVerb", "with_worker"]

PoolT = TypeVar("PoolT")
T = TypeVar("T")
A1 = TypeVar("A1")
A2 = TypeVar("A2")
A3 = TypeVar("A3")


class MapOptions(TypedDict, total=False):
    """The keywords of the blocking pools' ``map`` (for type checkers: a typo is an error)."""

    timeout: float | None
    chunksize: int
    ordered: bool
    buffersize: int | None
    progress: bool


class CoreViews:
    """``max_workers``, ``closed``, ``name`` and ``repr`` of a pool whose core is ``_core``."""

    __slots__ = ()

    _core: Lifecycle

    @property
    def max_workers(self) -> int:
        """The current bound on workers."""
        return self._core.max_workers

    @property
    def closed(self) -> bool:
        """Whether the pool is stopped or stopping (a broken pool is closed too)."""
        return self._core.closed

    @property
    def name(self) -> str:
        """The pool's name (given, or generated like ``WorkerPool-1``)."""
        return self._core.name

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        raise NotImplementedError  # each pool counts in its own crew or state

    def __repr__(self) -> str:
        return describe(type(self).__name__, self.stats(), self._core.name)


class MapVerb:
    """The blocking pools' ``map``; each class runs it with its own ``_map``."""

    __slots__ = ()

    def _map(
        self, fn: Callable[..., T], iterables: tuple[Iterable[Any], ...], how: MapArgs
    ) -> Iterator[T]:
        raise NotImplementedError  # the thread pool's lazy_map, the process pool's chunks

    # One to three iterables: each item's type is checked against fn's
    # parameter (as for builtins.map); more take any iterables. Narrower than
    # Executor.map's (fn: Callable[..., T], *iterables), which the pools
    # declare with a type: ignore[misc] on the class line.
    @overload
    def map(
        self, fn: Callable[[A1], T], it1: Iterable[A1], /, **options: Unpack[MapOptions]
    ) -> Iterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[[A1, A2], T],
        it1: Iterable[A1],
        it2: Iterable[A2],
        /,
        **options: Unpack[MapOptions],
    ) -> Iterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[[A1, A2, A3], T],
        it1: Iterable[A1],
        it2: Iterable[A2],
        it3: Iterable[A3],
        /,
        **options: Unpack[MapOptions],
    ) -> Iterator[T]: ...
    @overload
    def map(
        self,
        fn: Callable[..., T],
        it1: Iterable[Any],
        it2: Iterable[Any],
        it3: Iterable[Any],
        it4: Iterable[Any],
        /,
        *iterables: Iterable[Any],
        **options: Unpack[MapOptions],
    ) -> Iterator[T]: ...
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: bool = False,
    ) -> Iterator[T]:
        """Lazily map ``fn`` over ``iterables`` on the pool's workers.

        Input is consumed as results are taken: at most ``buffersize`` chunks
        are in flight, so an endless generator works. The first chunks are
        submitted before this returns (as ``Executor.map`` starts work at
        once). On a ``ProcessPool``, ``fn`` and the items must be picklable,
        and a chunk that runs too long is stopped with
        ``pool.options(timeout=...).map(...)``: its worker is killed and
        ``TaskTimeout`` is raised at that chunk's place (pebble's per-chunk
        ``timeout``).

        Args:
            fn: called as ``fn(*items)`` with one item from each iterable.
            timeout: as ``Executor.map``: seconds from this call after which
                taking a result that is not ready raises ``PoolTimeout`` (a
                ``TimeoutError``); chunks not started are then skipped. Any
                size, ``None`` or ``math.inf`` for no limit.
            chunksize: items per task; larger chunks cost less per item.
            ordered: yield results in input order (``False``: as completed).
            buffersize: chunks in flight (default 4 × max_workers, at least
                16, and at least 256 items' worth on a thread pool; at most
                ``queue_size`` on a bounded pool).
            progress: draw a progress bar (tqdm if installed).

        Returns:
            An iterator of results; ``fn``'s exception is raised at its item.

        Raises:
            PoolClosed: the pool is stopped.
            TypeError: ``fn`` is not callable, a flag is not a bool.
            ValueError: ``chunksize`` or ``buffersize`` below 1, bad ``timeout``.
        """
        return self._map(fn, iterables, MapArgs(timeout, chunksize, ordered, buffersize, progress))


class ShutdownVerb:
    """``Executor.shutdown`` of the blocking pools, spelled with their ``stop``."""

    __slots__ = ()

    def stop(
        self, wait: bool = True, cancel_pending: bool | None = None, timeout: float | None = None
    ) -> None:
        raise NotImplementedError  # each pool's own

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown``: stop taking tasks; ``cancel_futures`` cancels queued ones.

        Unlike :meth:`stop`, ``wait=False`` keeps queued tasks running in the
        background unless ``cancel_futures`` is true, as ``ThreadPoolExecutor``
        and ``ProcessPoolExecutor``.

        Raises:
            TypeError: ``wait`` or ``cancel_futures`` is not a bool.
        """
        check_bool("cancel_futures", cancel_futures)
        self.stop(wait=wait, cancel_pending=cancel_futures)


def with_worker(
    cls: type[PoolT],
    factory: Callable[[], object],
    max_workers: int | None,
    options: dict[str, Any],
) -> PoolT:
    """Build ``cls(max_workers, **options)`` whose workers each own ``factory()``.

    The private construction path of ``with_worker``: the factory is set on
    the instance before ``__init__`` runs (and starts ``min_workers``), so the
    public signature needs no private keyword for it.

    Raises:
        TypeError: ``factory`` is not callable.
    """
    check_callable("factory", factory)
    pool = cls.__new__(cls)
    # Both are the pool class's own: mypy sees only a bare type here.
    pool._factory = factory  # type: ignore[attr-defined]
    cls.__init__(pool, max_workers, **options)  # type: ignore[call-arg]
    return pool
