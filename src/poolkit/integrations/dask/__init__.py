"""DaskPool: the worker-pool vocabulary on a Dask distributed cluster.

``pip install 'poolkit[dask]'``. What ``Client`` lacks and poolkit's pools
have (dask/distributed#864 "Throttling tasks", open since 2017):

* ``map`` is lazy and bounded: input is pulled as results come back, at most
  ``max_in_flight`` tasks are on the cluster, an endless generator works
  (``Client.map`` needs ``len()`` and submits everything at once);
* ``submit`` returns a ``concurrent.futures.Future``, so ``as_completed``,
  ``wait`` and ``asyncio.wrap_future`` work on it, and waits for room when
  ``max_in_flight`` tasks are already out;
* ``group(cancel_on_error=True)``: the first failure cancels the rest — work
  not yet sent never starts, tasks on the cluster are cancelled there;
* ``wait()``, ``close()`` / context manager, ``stats()`` in the worker-pool
  vocabulary.

How results come back: one *collector* thread per pool reads finished Dask
futures from a ``distributed.as_completed`` (which fetches results on the
client's event loop, many at once) and resolves the matching
``concurrent.futures.Future``. Callbacks of those Futures run on that thread;
they may call the pool (``submit``, ``cancel``) but must not block on other
results of the same pool.

Tasks are submitted with ``pure=False``: two calls with the same arguments
run twice, as they would on a ``WorkerPool``. The client belongs to the
caller: ``close()`` leaves it open.
"""

from __future__ import annotations

from poolkit.integrations.dask._group import DaskTaskGroup
from poolkit.integrations.dask._pool import DaskPool, DaskPoolStats

__all__ = ["DaskPool", "DaskPoolStats", "DaskTaskGroup"]
