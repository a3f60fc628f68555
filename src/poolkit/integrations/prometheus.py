"""Prometheus export of every live pool: ``register()`` a collector, scrape ``/metrics``.

``pip install 'poolkit[prometheus]'`` (prometheus-client). Then::

    from poolkit.integrations import prometheus

    prometheus.register()          # the default registry (again: a no-op)
    prometheus.serve(9000)         # or prometheus_client.start_http_server, or your
                                   # web framework's /metrics (generate_latest)

At each scrape the collector reads :func:`poolkit.pools` and each pool's
``stats().to_dict()`` (the contract in docs/stats.md): nothing is recorded
between scrapes and no pool is kept alive. Every sample has the label
``pool`` (the pool's name; a name two live pools share gets ``#2``, ``#3``...
on the younger ones, so no sample is a duplicate). Names follow Prometheus'
practice: the ``poolkit_`` prefix, base units (``_seconds``, ``_bytes``),
``_total`` on counters, a capacity apart from the current count.

:data:`METRICS` (shared with the OpenTelemetry exporter) is the one table
from stats fields to metrics, for every family; no pool class has code of
its own here. A pool whose ``stats()`` raises is left out of that scrape and
logged (WARNING on ``poolkit.integrations``, at most once per pool per ten
seconds); the other pools are still exported.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from poolkit._validate import check_int
from poolkit.integrations._metrics import (
    CLOSED,
    METRICS,
    UNEXPORTED,
    MetricSpec,
    le_text,
    snapshots,
)

try:
    from prometheus_client import start_http_server
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

__all__ = [
    "METRICS",
    "UNEXPORTED",
    "MetricSpec",
    "MetricsServer",
    "PoolCollector",
    "register",
    "serve",
    "snapshots",
    "unregister",
]


def _closed_family() -> CounterMetricFamily:
    return CounterMetricFamily(CLOSED.name, CLOSED.doc, labels=("pool", "reason"))


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
        stats = snapshots()
        for spec in METRICS:
            metric = _family(spec, [s for s in stats if s.get("family") in spec.families])
            if metric is not None:
                yield metric
        closed = _closed_family()
        for s in stats:
            for reason, n in (s.get("closed_by_reason") or {}).items():
                closed.add_metric((s["name"], reason), n)
        if closed.samples:
            yield closed


def _family(spec: MetricSpec, stats: list[dict[str, Any]]) -> Metric | None:
    samples = [(s["name"], s[spec.field]) for s in stats if s.get(spec.field) is not None]
    if not samples:
        return None
    if spec.kind == "histogram":
        hist = HistogramMetricFamily(spec.name, spec.doc, labels=("pool",))
        for name, data in samples:
            buckets = [(le_text(le), n) for le, n in data["buckets"]]
            hist.add_metric((name,), buckets, sum_value=data["sum"])
        return hist
    cls = GaugeMetricFamily if spec.kind == "gauge" else CounterMetricFamily
    metric = cls(spec.name, spec.doc, labels=("pool",))
    for name, value in samples:
        metric.add_metric((name,), float(value))
    return metric


_lock = threading.Lock()
# Registry -> the poolkit collector registered there (weakly: a registry dropped
# by its owner goes, with its collector).
_registered: weakref.WeakKeyDictionary[CollectorRegistry, PoolCollector] = (
    weakref.WeakKeyDictionary()
)


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is None:
        return REGISTRY
    if not isinstance(registry, CollectorRegistry):
        raise TypeError(f"registry must be a CollectorRegistry, got {type(registry).__name__}")
    return registry


def register(registry: CollectorRegistry | None = None) -> PoolCollector:
    """Export every live pool from ``registry`` (default: prometheus-client's ``REGISTRY``).

    Idempotent: a second call for the same registry registers nothing and
    returns the collector of the first, so a library and its application may
    both call it.

    Returns:
        The collector (:func:`unregister` removes it).

    Raises:
        TypeError: ``registry`` is not a ``CollectorRegistry``.
        ValueError: another collector already exports poolkit's metric names
            in ``registry`` (prometheus-client's "Duplicated timeseries").
    """
    registry = _registry(registry)
    with _lock:
        collector = _registered.get(registry)
        if collector is None:
            collector = PoolCollector()
            registry.register(collector)
            _registered[registry] = collector
    return collector


def unregister(registry: CollectorRegistry | None = None) -> bool:
    """Stop exporting the pools from ``registry``; return whether there was a collector.

    Raises:
        TypeError: ``registry`` is not a ``CollectorRegistry``.
    """
    registry = _registry(registry)
    with _lock:
        collector = _registered.pop(registry, None)
        if collector is not None:
            registry.unregister(collector)
    return collector is not None


class MetricsServer:
    """A ``/metrics`` endpoint served by a thread (what :func:`serve` returns).

    Attributes:
        host: the address it listens on.
        port: the port (the one the system chose when 0 was asked).
        url: ``http://host:port/metrics``.
    """

    def __init__(self, server: Any, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_port
        self.url = f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (waits for the serving thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(30)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"


def serve(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Register the collector (see :func:`register`) and serve ``registry`` on ``addr:port``.

    A thin layer over ``prometheus_client.start_http_server``, but on
    loopback by default (expose metrics on purpose, not by accident).

    Args:
        port: the TCP port; 0 lets the system choose (read ``.port``).
        addr: the address to listen on (``"0.0.0.0"`` for every interface).
        registry: the registry served (default: prometheus-client's ``REGISTRY``).

    Returns:
        The running server; ``close()`` it (or use ``with``) to stop.

    Raises:
        TypeError / ValueError: a bad ``port``, ``addr`` or ``registry``.
        OSError: the port is taken.
    """
    check_int("port", port, minimum=0)
    if port > 65535:
        raise ValueError(f"port must be at most 65535, got {port}")
    if not isinstance(addr, str) or not addr:
        raise TypeError(f"addr must be a non-empty str, got {addr!r}")
    registry = _registry(registry)
    register(registry)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread, addr)
