"""PoolkitPool: poolkit's connection pool under SQLAlchemy.

``pip install 'poolkit[sqlalchemy]'``::

    from sqlalchemy import create_engine
    from poolkit.integrations.sqlalchemy import PoolkitPool

    engine = create_engine(url, poolclass=PoolkitPool, pool_size=5, max_overflow=10,
                           pool_pre_ping=True,
                           poolkit_options={"leak_timeout": 30, "max_idle_time": 600})
    engine.pool.stats()      # poolkit's gauges and counters
    engine.pool.holders()    # who holds each checked-out connection

SQLAlchemy's pool arguments keep their meaning (``pool_size``,
``max_overflow``, ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``,
``pool_use_lifo``, ``pool_reset_on_return``); a timeout raises
:class:`PoolkitTimeoutError`, both ``sqlalchemy.exc.TimeoutError`` and
:class:`poolkit.PoolTimeout`. SQLAlchemy's pool events fire as with
``QueuePool``. ``docs/sqlalchemy.md`` has the details.

For ``create_async_engine``, ``poolclass=AsyncPoolkitPool`` (the same
arguments; SQLAlchemy's asyncio support needs greenlet, which the extra
installs).
"""

from __future__ import annotations

from poolkit.integrations.sqlalchemy._async_pool import AsyncPoolkitPool
from poolkit.integrations.sqlalchemy._pool import PoolkitPool, PoolkitTimeoutError

__all__ = ["AsyncPoolkitPool", "PoolkitPool", "PoolkitTimeoutError"]
