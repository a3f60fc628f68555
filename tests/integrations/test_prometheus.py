"""Prometheus export: scrape a loopback /metrics and parse it with prometheus-client's parser."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import poolkit
from poolkit import (
    BufferPool,
    ByteBufferPool,
    ConnectionPool,
    ObjectPool,
    PoolTimeout,
    ProcessPool,
    WorkerPool,
)
from poolkit.buffers import SizedBufferPool
from poolkit.testing import FakeConnector
from tests.optional import require

prometheus_client = require("prometheus_client", "prometheus")
from prometheus_client import CollectorRegistry, start_http_server  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from poolkit.integrations import prometheus  # noqa: E402

# One pool of each stats class, for the completeness check of the mapping table.
_STATS_MAKERS: dict[str, Any] = {
    "ConnectionPool": lambda: ConnectionPool(FakeConnector()),
    "WorkerPool": lambda: WorkerPool(1, timings=True),
    "ProcessPool": lambda: ProcessPool(1),
    "ObjectPool": lambda: ObjectPool(list),
    "BufferPool": lambda: BufferPool(),
    "ByteBufferPool": lambda: ByteBufferPool(),
    "SizedBufferPool": lambda: SizedBufferPool(2, 64),
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def scrape() -> Iterator[Any]:
    """A registry with poolkit's collector, served on loopback; calling it scrapes."""
    registry = CollectorRegistry()
    prometheus.register(registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"

    def fetch() -> tuple[Samples, dict[str, str]]:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        samples: Samples = {}
        types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples, types

    try:
        yield fetch
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


def _one(samples: Samples, name: str, pool: str, **labels: str) -> float:
    return samples[(name, tuple(sorted({"pool": pool, **labels}.items())))]


def test_a_connection_pool_is_exported_with_its_gauges_counters_and_histograms(
    scrape: Any,
) -> None:
    with ConnectionPool(FakeConnector(), max_size=2, name="prom-db") as pool:
        with pool.connection():
            pass
        held = pool.acquire()
        with pytest.raises(PoolTimeout):
            pool.acquire(timeout=0)  # none idle, and no time to open one
        samples, types = scrape()
        pool.release(held)
    assert _one(samples, "poolkit_connections_in_use", "prom-db") == 1
    assert _one(samples, "poolkit_connections_max", "prom-db") == 2
    assert _one(samples, "poolkit_connection_acquisitions_total", "prom-db") >= 2
    assert types["poolkit_connection_acquire_wait_seconds"] == "histogram"
    count = _one(samples, "poolkit_connection_acquire_wait_seconds_count", "prom-db")
    assert count == _one(samples, "poolkit_connection_acquisitions_total", "prom-db")
    inf = _one(samples, "poolkit_connection_acquire_wait_seconds_bucket", "prom-db", le="+Inf")
    assert inf == count
    assert _one(samples, "poolkit_connection_hold_seconds_count", "prom-db") == 1
    assert _one(samples, "poolkit_connection_create_seconds_count", "prom-db") >= 1
    assert _one(samples, "poolkit_connections_waiting", "prom-db") == 0
    assert _one(samples, "poolkit_connections", "prom-db") >= 1
    assert types["poolkit_connection_timeouts"] == "counter"
    assert _one(samples, "poolkit_connection_timeouts_total", "prom-db") == 1
    assert _one(samples, "poolkit_connections_closed_total", "prom-db", reason="lifetime") == 0


def test_worker_and_buffer_pools_are_exported(scrape: Any) -> None:
    bufs = BufferPool(name="prom-bufs")
    with bufs.borrow(1000):
        pass
    gate = threading.Event()
    with WorkerPool(2, timings=True, name="prom-workers") as workers:
        workers.submit(abs, -1).result(30)
        workers.submit(gate.wait, 30)
        samples, _ = scrape()
        gate.set()
    assert _one(samples, "poolkit_tasks_completed_total", "prom-workers") >= 1
    assert _one(samples, "poolkit_workers_max", "prom-workers") == 2
    assert _one(samples, "poolkit_task_run_seconds_count", "prom-workers") >= 1
    assert _one(samples, "poolkit_buffers_idle_bytes", "prom-bufs") == 1024
    assert _one(samples, "poolkit_buffers_misses_total", "prom-bufs") == 1
    bufs.close()


def test_a_closed_pool_leaves_the_next_scrape(scrape: Any) -> None:
    pool = ConnectionPool(FakeConnector(), name="prom-gone")
    samples, _ = scrape()
    assert _one(samples, "poolkit_connections_idle", "prom-gone") == 0
    pool.close()
    samples, _ = scrape()
    assert not [key for key in samples if ("pool", "prom-gone") in key[1]]


def test_register_twice_on_one_registry_is_a_no_op() -> None:
    """The second call returns the first collector; unregister removes it once."""
    registry = CollectorRegistry()
    first = prometheus.register(registry)
    assert prometheus.register(registry) is first
    assert prometheus.unregister(registry) is True
    assert prometheus.unregister(registry) is False
    assert prometheus.register(registry) is not first


def test_another_collector_of_the_same_names_is_refused_by_the_registry() -> None:
    registry = CollectorRegistry()
    registry.register(prometheus.PoolCollector())
    with pytest.raises(ValueError, match="Duplicated"):
        prometheus.register(registry)


def test_a_pool_whose_stats_raise_is_logged_and_the_others_still_scrape(
    scrape: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = ConnectionPool(FakeConnector(), max_size=3, name="prom-good")
    bad = ConnectionPool(FakeConnector(), name="prom-bad")

    def broken_stats() -> Any:
        raise RuntimeError("stats exploded")

    monkeypatch.setattr(bad, "stats", broken_stats)
    with caplog.at_level(logging.WARNING, logger="poolkit.integrations"):
        samples, _ = scrape()
    assert _one(samples, "poolkit_connections_max", "prom-good") == 3
    assert not [key for key in samples if ("pool", "prom-bad") in key[1]]
    [record] = [r for r in caplog.records if getattr(r, "pool", None) == "prom-bad"]
    assert "stats exploded" in record.getMessage()
    good.close()
    bad.close()


def test_a_pool_closed_between_pools_and_stats_does_not_break_the_scrape(
    scrape: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pools() listed it open; it is closed (and its stats read) during the scrape."""
    from poolkit.integrations import _metrics

    pool = ConnectionPool(FakeConnector(), name="prom-closing")
    listed = poolkit.pools()
    pool.close()
    monkeypatch.setattr(_metrics, "pools", lambda: listed)
    samples, _ = scrape()
    assert _one(samples, "poolkit_connections_in_use", "prom-closing") == 0


def test_two_pools_of_one_name_get_distinct_labels(scrape: Any) -> None:
    first = WorkerPool(1, name="prom-twin")
    second = WorkerPool(3, name="prom-twin")
    samples, _ = scrape()
    assert _one(samples, "poolkit_workers_max", "prom-twin") == 1
    assert _one(samples, "poolkit_workers_max", "prom-twin#2") == 3
    first.close()
    second.close()


@pytest.mark.parametrize("family", sorted(_STATS_MAKERS))
def test_every_stats_field_of_every_family_is_exported_or_listed_as_not(family: str) -> None:
    """The mapping table is complete: a new stats field must be mapped or skipped on purpose."""
    pool = _STATS_MAKERS[family]()
    try:
        fields = set(pool.stats().to_dict())
    finally:
        pool.close()
    kind = pool.stats().family
    mapped = {spec.field for spec in prometheus.METRICS if kind in spec.families}
    skipped = set().union(*(v for k, v in prometheus.UNEXPORTED.items() if kind in k))
    assert fields - mapped - skipped == set()


@pytest.mark.parametrize("stats_class", ["ResqueWorkerStats", "DaskPoolStats"])
def test_resque_and_dask_stats_fields_are_exported_or_listed_as_not(stats_class: str) -> None:
    """The same completeness rule for the pools that need a server, from their fields."""
    import dataclasses

    from poolkit.integrations.dask._pool import DaskPoolStats
    from poolkit.integrations.resque._stats import ResqueWorkerStats
    from poolkit.workers import WorkerPoolStats

    classes: dict[str, type[WorkerPoolStats]] = {
        "ResqueWorkerStats": ResqueWorkerStats,
        "DaskPoolStats": DaskPoolStats,
    }
    cls = classes[stats_class]
    fields = {f.name for f in dataclasses.fields(cls)} | set(cls._derived)
    mapped = {spec.field for spec in prometheus.METRICS if cls.family in spec.families}
    skipped = set().union(*(v for k, v in prometheus.UNEXPORTED.items() if cls.family in k))
    assert fields - mapped - skipped == set()


def test_serve_exports_on_loopback_and_closes() -> None:
    registry = CollectorRegistry()
    pool = ConnectionPool(FakeConnector(), max_size=7, name="prom-served")
    with prometheus.serve(0, registry=registry) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=30) as response:
            text = response.read().decode()
    pool.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = [
        s for s in families["poolkit_connections_max"].samples if s.labels["pool"] == "prom-served"
    ]
    assert sample.value == 7
    with pytest.raises(OSError):  # the port is released: nothing answers any more
        urllib.request.urlopen(server.url, timeout=30)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"port": -1}, ValueError, "port"),
        ({"port": 70000}, ValueError, "port"),
        ({"port": "80"}, TypeError, "port"),
        ({"port": 0, "addr": ""}, TypeError, "addr"),
        ({"port": 0, "registry": "default"}, TypeError, "registry"),
    ],
)
def test_serve_rejects_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        prometheus.serve(**kwargs)


def test_register_takes_a_registry_only() -> None:
    with pytest.raises(TypeError, match="registry must be a CollectorRegistry"):
        prometheus.register("default")  # type: ignore[arg-type]


def test_without_prometheus_client_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "poolkit.integrations.prometheus"
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "prometheus_client.core", raising=False)
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=r"pip install 'poolkit\[prometheus\]'"):
        importlib.import_module(name)
