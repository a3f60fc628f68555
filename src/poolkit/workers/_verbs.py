"""What every pool driver shows alike: views of its lifecycle core, ``with_worker``.

``WorkerPool``, ``AsyncWorkerPool`` and ``ProcessPool`` each hold a
:class:`~poolkit.workers._lifecycle.Lifecycle` as ``_core``; the read-only
views of it (``max_workers``, ``closed``, ``repr``) are the same code for all
three, written once here in :class:`CoreViews`. None of it is on a hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from poolkit._validate import check_callable
from poolkit.workers._core import WorkerPoolStats, describe

if TYPE_CHECKING:
    from poolkit.workers._lifecycle import Lifecycle

__all__ = ["CoreViews", "with_worker"]

PoolT = TypeVar("PoolT")


class CoreViews:
    """``max_workers``, ``closed`` and ``repr`` of a pool that holds its core as ``_core``."""

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

    def stats(self) -> WorkerPoolStats:
        """A snapshot of workers, tasks and outcome counters."""
        raise NotImplementedError  # each pool counts in its own crew or state

    def __repr__(self) -> str:
        return describe(type(self).__name__, self.stats(), self._core.name)


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
