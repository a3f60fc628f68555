"""Optional integrations, each behind an extra and imported on demand.

- :mod:`poolkit.integrations.resque` (``pip install 'poolkit[resque]'``):
  Resque-compatible Redis workers (goworker's row): consume the jobs Ruby
  Resque, goworker or any Resque client enqueued, on a ``WorkerPool``,
  ``AsyncWorkerPool`` or ``ProcessPool``.
- :mod:`poolkit.integrations.dask` (``pip install 'poolkit[dask]'``):
  ``DaskPool``, the worker-pool vocabulary (``submit``, bounded ``map``,
  ``group``, ``wait``, ``stats``) on a Dask distributed cluster.
- :mod:`poolkit.integrations.sqlalchemy` (``pip install 'poolkit[sqlalchemy]'``):
  ``PoolkitPool``, a SQLAlchemy pool class backed by a ``ConnectionPool``
  (``create_engine(url, poolclass=PoolkitPool)``), and ``AsyncPoolkitPool``
  over an ``AsyncConnectionPool`` for ``create_async_engine``.
- :mod:`poolkit.integrations.prometheus` (``pip install 'poolkit[prometheus]'``):
  ``register()`` a collector exporting every live pool's stats, ``serve()`` ``/metrics``.
- :mod:`poolkit.integrations.opentelemetry` (``pip install 'poolkit[opentelemetry]'``):
  ``instrument()``: the same metrics as OpenTelemetry observable instruments.

Nothing is imported here: ``import poolkit`` never needs redis, dask or SQLAlchemy.
"""
