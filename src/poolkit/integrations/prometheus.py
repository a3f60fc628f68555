"""Prometheus export of every live pool: ``register()`` a collector, scrape ``/metrics``.

``pip install 'poolkit[prometheus]'`` (prometheus-client). Then::

    from prometheus_client import start_http_server
    from poolkit.integrations import prometheus

    prometheus.register()          # the default registry
    start_http_server(9000)        # or your web framework's /metrics

At each scrape the collector reads :func:`poolkit.pools` and each pool's
``stats().to_dict()`` (the contract in docs/stats.md): nothing is recorded
between scrapes and no pool is kept alive. Every sample has the label
``pool`` (the pool's name). Names follow Prometheus' practice: the
``poolkit_`` prefix, base units (``_seconds``, ``_bytes``), ``_total`` on
counters, a capacity apart from the current count (:data:`METRICS` lists them
all).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from poolkit._registry import pools

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, CollectorRegistry
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "poolkit.integrations.prometheus needs prometheus-client: pip install 'poolkit[prometheus]'"
    ) from exc

__all__ = ["METRICS", "PoolCollector", "register"]

# The families whose stats are worker-pool stats (WorkerPoolStats and subclasses).
_WORKER_FAMILIES = frozenset({"workers", "processes", "resque", "dask"})


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its name, type and the stats field it reads.

    Attributes:
        name: the metric name (counters without ``_total``, which the client adds).
        kind: ``"gauge"``, ``"counter"`` or ``"histogram"``.
        field: the ``to_dict()`` key; pools whose stats lack it (or hold
            ``None``) export no sample.
        families: the stats families it applies to.
        doc: the HELP text.
    """

    name: str
    kind: str
    field: str
    families: frozenset[str]
    doc: str


def _specs(families: frozenset[str], kind: str, rows: str) -> list[MetricSpec]:
    """Specs from ``name field doc...`` lines."""
    out = []
    for line in rows.strip().splitlines():
        name, field, doc = line.split(maxsplit=2)
        out.append(MetricSpec(name, kind, field, families, doc))
    return out


_CONN = frozenset({"connections"})
_WORK = _WORKER_FAMILIES
_PROC = frozenset({"processes"})
_BUF = frozenset({"buffers"})

# Every metric the collector exports, from the glossary's fields (docs/stats.md).
METRICS: tuple[MetricSpec, ...] = (
    *_specs(
        _CONN,
        "gauge",
        """
poolkit_connections total Connections the server may see: idle, in use, being opened or closed.
poolkit_connections_in_use in_use Connections held by callers.
poolkit_connections_idle idle Connections idle in the pool.
poolkit_connections_creating creating Connections being opened.
poolkit_connections_closing closing Connections being closed.
poolkit_connections_waiting waiting Callers waiting for a connection.
poolkit_connections_min min_size The pool's min_size.
poolkit_connections_max max_size The pool's max_size.
poolkit_connections_broken broken 1 when the pool is broken.
""",
    ),
    *_specs(
        _CONN,
        "counter",
        """
poolkit_connection_acquisitions acquired Successful checkouts.
poolkit_connection_waits waited Acquisitions that queued at the pool's limit.
poolkit_connection_timeouts timeouts Acquisitions that gave up with PoolTimeout.
poolkit_connection_overloads overloads Acquisitions refused with PoolOverload.
poolkit_connections_created created Connections opened.
poolkit_connection_create_errors create_errors Failed attempts to open a connection.
""",
    ),
    *_specs(
        _CONN,
        "histogram",
        """
poolkit_connection_acquire_wait_seconds acquire_wait Seconds from asking to getting a connection.
poolkit_connection_hold_seconds hold_time Seconds a connection was held by a caller.
poolkit_connection_create_seconds create_time Seconds a connect took.
""",
    ),
    *_specs(
        _WORK,
        "gauge",
        """
poolkit_workers_alive workers Workers alive (running a task or idle).
poolkit_workers_idle idle Workers waiting for a task.
poolkit_workers_running running Tasks running now.
poolkit_workers_max max_workers The bound on workers.
poolkit_workers_waiting waiting Callers waiting for room in a full pool.
poolkit_tasks_queued queued Tasks accepted and not started.
poolkit_workers_broken broken 1 when the pool is broken.
""",
    ),
    *_specs(
        _WORK,
        "counter",
        """
poolkit_tasks_submitted submitted Tasks accepted.
poolkit_tasks_completed completed Tasks that ran to the end (succeeded or failed).
poolkit_tasks_succeeded succeeded Tasks that returned.
poolkit_tasks_failed failed Tasks that raised.
poolkit_tasks_cancelled cancelled Tasks cancelled before they started.
poolkit_tasks_expired expired Tasks skipped because their deadline passed.
poolkit_tasks_overloads overloads Submissions refused for lack of room.
""",
    ),
    *_specs(
        _WORK,
        "histogram",
        """
poolkit_task_queue_wait_seconds queue_wait Seconds a task waited between submission and start.
poolkit_task_run_seconds run_time Seconds a task ran.
""",
    ),
    *_specs(
        _PROC,
        "counter",
        """
poolkit_tasks_timed_out timed_out Tasks stopped by their timeout (worker killed).
poolkit_workers_crashed crashed Worker processes that died unexpectedly.
poolkit_workers_recycled recycled Workers retired by max_tasks_per_child or max_memory_per_child.
poolkit_workers_started started Worker processes started.
""",
    ),
    *_specs(
        _BUF,
        "gauge",
        """
poolkit_buffers_idle idle Objects or buffers idle in the pool.
poolkit_buffers_idle_bytes idle_bytes Bytes the idle buffers hold.
poolkit_buffers_hit_ratio hit_ratio Share of gets served from the pool.
""",
    ),
    *_specs(
        _BUF,
        "counter",
        """
poolkit_buffers_hits hits Gets served from the pool.
poolkit_buffers_misses misses Gets that allocated.
poolkit_buffers_evicted evicted Idle items dropped to stay within a bound.
poolkit_buffers_expired expired Idle items released by max_idle_time.
""",
    ),
)


class PoolCollector:
    """A Prometheus collector of every live pool (a ``prometheus_client`` Collector)."""

    def describe(self) -> list[Metric]:
        """Every metric, without samples: the registry learns the names (and
        refuses a second poolkit collector) without collecting at registration."""
        kinds = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}
        out: list[Metric] = [
            kinds.get(spec.kind, HistogramMetricFamily)(spec.name, spec.doc, labels=("pool",))
            for spec in METRICS
        ]
        out.append(_closed_family())
        return out

    def collect(self) -> Iterator[Metric]:
        """One metric family per :data:`METRICS` entry with samples, plus closes by reason."""
        snapshots = []
        for pool in pools():
            try:
                snapshots.append(pool.stats().to_dict())
            except Exception:
                continue
        for spec in METRICS:
            metric = _family(spec, [s for s in snapshots if s.get("family") in spec.families])
            if metric is not None:
                yield metric
        closed = _closed_family()
        for s in snapshots:
            for reason, n in (s.get("closed_by_reason") or {}).items():
                closed.add_metric((s["name"], reason), n)
        if closed.samples:
            yield closed


def _closed_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        "poolkit_connections_closed", "Connections closed, by reason.", labels=("pool", "reason")
    )


def _family(spec: MetricSpec, snapshots: list[dict[str, Any]]) -> Metric | None:
    samples = [(s["name"], s[spec.field]) for s in snapshots if s.get(spec.field) is not None]
    if not samples:
        return None
    if spec.kind == "histogram":
        hist = HistogramMetricFamily(spec.name, spec.doc, labels=("pool",))
        for name, data in samples:
            buckets = [(_le(le), n) for le, n in data["buckets"]]
            hist.add_metric((name,), buckets, sum_value=data["sum"])
        return hist
    cls = GaugeMetricFamily if spec.kind == "gauge" else CounterMetricFamily
    metric = cls(spec.name, spec.doc, labels=("pool",))
    for name, value in samples:
        metric.add_metric((name,), float(value))
    return metric


def _le(bound: float | str) -> str:
    return bound if isinstance(bound, str) else repr(float(bound))


def register(registry: CollectorRegistry | None = None) -> PoolCollector:
    """Export every live pool from ``registry`` (default: prometheus-client's ``REGISTRY``).

    Returns:
        The collector (``registry.unregister(collector)`` removes it).

    Raises:
        TypeError: ``registry`` is not a ``CollectorRegistry``.
        ValueError: a collector of poolkit's metrics is already registered there.
    """
    if registry is None:
        registry = REGISTRY
    elif not isinstance(registry, CollectorRegistry):
        raise TypeError(f"registry must be a CollectorRegistry, got {type(registry).__name__}")
    collector = PoolCollector()
    registry.register(collector)
    return collector
