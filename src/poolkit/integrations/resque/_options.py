"""ResqueWorker's options, validated once (names and messages as the pools')."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from poolkit._validate import check_int, check_seconds
from poolkit.integrations.resque._queues import QueueOrder, parse_queues
from poolkit.integrations.resque._runners import MODES
from poolkit.integrations.resque._store import HEARTBEAT_INTERVAL, PRUNE_INTERVAL

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACE",
    "DEFAULT_INTERVAL",
    "HEARTBEAT_INTERVAL",
    "PRUNE_INTERVAL",
    "WorkerOptions",
    "check_namespace",
]

# goworker's -concurrency default; a process pool defaults to one per core.
DEFAULT_CONCURRENCY = 25
# Resque's and goworker's polling interval when every queue is empty.
DEFAULT_INTERVAL = 5.0
# How long running jobs may finish after a stop (SIGTERM) before they are
# stopped and put back on their queue; a deployment's kill timeout is
# usually 30 s (Kubernetes' terminationGracePeriodSeconds), so stay below.
DEFAULT_GRACE = 25.0


def check_namespace(namespace: object) -> str:
    """The namespace without a trailing colon (goworker writes ``resque:``)."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
    ns = namespace.rstrip(":")
    if not ns:
        raise ValueError("namespace must not be empty (Resque's default is 'resque')")
    return ns


@dataclass(frozen=True)
class WorkerOptions:
    """Validated :class:`ResqueWorker` options (see its docstring)."""

    order: QueueOrder
    concurrency: int
    namespace: str
    mode: str
    interval: float
    grace: float
    job_timeout: float | None
    heartbeat_interval: float
    prune_interval: float
    pool_options: Mapping[str, Any]
    host: str

    @classmethod
    def build(
        cls,
        *,
        queues: object,
        concurrency: object,
        namespace: object,
        mode: object,
        interval: object,
        grace: object,
        job_timeout: object,
        heartbeat_interval: object,
        prune_interval: object,
        pool_options: Mapping[str, Any] | None,
        hostname: object,
    ) -> WorkerOptions:
        """Check every option; the message of an error names the parameter.

        Raises:
            TypeError, ValueError: a bad option.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        order = parse_queues(queues)
        default = (os.cpu_count() or 1) if mode == "processes" else DEFAULT_CONCURRENCY
        workers = check_int(
            "concurrency", default if concurrency is None else concurrency, minimum=1
        )
        timeout = None
        if job_timeout is not None:
            timeout = check_seconds("job_timeout", job_timeout, allow_zero=False)
            if mode == "threads":
                raise ValueError(
                    "job_timeout needs mode='processes' or mode='asyncio': a running "
                    "thread cannot be stopped"
                )
        options = dict(pool_options or {})
        if "max_workers" in options:
            raise ValueError("pool_options must not set max_workers: pass concurrency=")
        if hostname is not None and (not isinstance(hostname, str) or not hostname):
            raise ValueError(f"hostname must be a non-empty str, got {hostname!r}")
        return cls(
            order=order,
            concurrency=workers,
            namespace=check_namespace(namespace),
            mode=str(mode),
            interval=check_seconds("interval", interval, allow_zero=False),
            grace=check_seconds("grace", grace),
            job_timeout=timeout,
            heartbeat_interval=check_seconds(
                "heartbeat_interval", heartbeat_interval, allow_zero=False
            ),
            prune_interval=check_seconds("prune_interval", prune_interval, allow_zero=False),
            pool_options=options,
            host=(hostname or socket.gethostname()).replace(":", "-"),
        )
