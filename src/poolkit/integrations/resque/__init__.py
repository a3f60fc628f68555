"""Resque-compatible Redis workers (goworker's row), on poolkit's pools.

``pip install 'poolkit[resque]'`` (redis-py). Jobs use Resque's wire format
exactly, so Ruby Resque, goworker and every Resque port can enqueue for a
poolkit worker, read its failures and registrations, and consume what
:func:`enqueue` pushed::

    from poolkit.integrations.resque import ResqueWorker, enqueue

    enqueue("redis://127.0.0.1:6379/0", "mail", "SendWelcome", 42)

    worker = ResqueWorker("redis://127.0.0.1:6379/0", "mail,default", concurrency=8)
    worker.register("SendWelcome", send_welcome)   # called as send_welcome(42)
    worker.run()                                   # until SIGTERM / SIGINT / stop()

Guarantees and limits are in ``docs/scaleout.md``: reliable fetch (a job is
moved atomically to a per-slot processing list while it runs), jobs of dead
workers requeued by the next worker that starts, graceful stop with a grace
period, at-least-once execution.
"""

from __future__ import annotations

from typing import Any

from poolkit.integrations.resque._options import check_namespace
from poolkit.integrations.resque._queues import QueueOrder, parse_queues
from poolkit.integrations.resque._stats import ResqueWorkerStats
from poolkit.integrations.resque._store import Store, connect
from poolkit.integrations.resque._wire import DEFAULT_NAMESPACE, Keys, encode_job
from poolkit.integrations.resque._worker import ResqueWorker

__all__ = ["QueueOrder", "ResqueWorker", "ResqueWorkerStats", "enqueue", "parse_queues"]


def enqueue(
    redis: object, queue: str, class_name: str, *args: Any, namespace: str = DEFAULT_NAMESPACE
) -> str:
    """Push a job as Ruby's ``Resque.enqueue`` does (goworker's ``Enqueue``).

    ``SADD <ns>:queues <queue>`` and ``RPUSH <ns>:queue:<queue>
    {"class":...,"args":[...]}``, in one round trip.

    Args:
        redis: a URL or a ``redis.Redis``.
        queue: the queue name.
        class_name: the job class a worker dispatches on.
        *args: the job's arguments (JSON values).
        namespace: the key prefix (default ``"resque"``).

    Returns:
        The job as pushed (its JSON text).

    Raises:
        TypeError: an argument of the wrong type, or an arg JSON cannot carry.
        ValueError: an empty or malformed queue or class name.
    """
    if not isinstance(class_name, str):
        raise TypeError(f"class_name must be a str, got {type(class_name).__name__}")
    if not class_name:
        raise ValueError("class_name must not be empty")
    name = parse_queues([queue]).names[0] if isinstance(queue, str) else None
    if name is None:
        raise TypeError(f"queue must be a str, got {type(queue).__name__}")
    raw = encode_job(class_name, args)
    Store(connect(redis), Keys(check_namespace(namespace))).push(name, raw)
    return raw
