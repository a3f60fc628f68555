"""Prometheus export: scrape a loopback /metrics and parse it with prometheus-client's parser."""

from __future__ import annotations

import importlib
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from poolkit import BufferPool, ConnectionPool, PoolTimeout, WorkerPool
from poolkit.testing import FakeConnector
from tests.optional import require

prometheus_client = require("prometheus_client", "prometheus")
from prometheus_client import CollectorRegistry, start_http_server  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from poolkit.integrations import prometheus  # noqa: E402

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


def test_a_second_collector_on_one_registry_is_refused() -> None:
    registry = CollectorRegistry()
    prometheus.register(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        prometheus.register(registry)


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
