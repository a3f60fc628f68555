"""OpenTelemetry export, read back with the SDK's InMemoryMetricReader."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from poolkit import BufferPool, ConnectionPool, PoolTimeout, WorkerPool
from poolkit.testing import FakeConnector
from tests.optional import require

require("opentelemetry.metrics", "opentelemetry")
sdk_metrics = require("opentelemetry.sdk.metrics", "dev")
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

from poolkit.integrations import opentelemetry as poolkit_otel  # noqa: E402

# (metric name, frozen attributes) -> value of the data point
Points = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def collect() -> Iterator[Any]:
    """A meter provider with poolkit instrumented and an in-memory reader; calling it collects."""
    reader = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    poolkit_otel.instrument(provider, max_age=0)

    def read() -> tuple[Points, dict[str, Any]]:
        points: Points = {}
        found: dict[str, Any] = {}
        data = reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
                    for p in metric.data.data_points:
                        attrs = {k: str(v) for k, v in (p.attributes or {}).items()}
                        points[(metric.name, frozenset(attrs.items()))] = p.value  # type: ignore[union-attr]
        return points, found

    yield read
    provider.shutdown()


def _one(points: Points, name: str, pool: str, **attrs: str) -> float:
    return points[(name, frozenset({"pool": pool, **attrs}.items()))]


def test_a_connection_pool_is_observed_under_otel_names(collect: Any) -> None:
    with ConnectionPool(FakeConnector(), max_size=2, name="otel-db") as pool:
        with pool.connection():
            pass
        held = pool.acquire()
        with pytest.raises(PoolTimeout):
            pool.acquire(timeout=0)
        points, found = collect()
        pool.release(held)
    assert _one(points, "poolkit.connections.in_use", "otel-db") == 1
    assert _one(points, "poolkit.connections.max", "otel-db") == 2
    assert _one(points, "poolkit.connection.timeouts", "otel-db") == 1
    acquired = _one(points, "poolkit.connection.acquisitions", "otel-db")
    assert acquired == 2
    assert _one(points, "poolkit.connection.acquire_wait.count", "otel-db") == acquired
    inf = _one(points, "poolkit.connection.acquire_wait.bucket", "otel-db", le="+Inf")
    assert inf == acquired
    assert _one(points, "poolkit.connection.hold_time.count", "otel-db") == 1
    assert found["poolkit.connection.hold_time.sum"].unit == "s"
    assert found["poolkit.connection.wait_time"].unit == "s"
    assert type(found["poolkit.connections.in_use"].data).__name__ == "Gauge"
    assert type(found["poolkit.connection.timeouts"].data).__name__ == "Sum"


def test_worker_and_buffer_pools_are_observed(collect: Any) -> None:
    bufs = BufferPool(name="otel-bufs")
    with bufs.borrow(1000):
        pass
    gate = threading.Event()
    with WorkerPool(2, timings=True, name="otel-workers") as workers:
        workers.submit(abs, -1).result(30)
        workers.submit(gate.wait, 30)
        points, found = collect()
        gate.set()
    assert _one(points, "poolkit.tasks.completed", "otel-workers") >= 1
    assert _one(points, "poolkit.workers.max", "otel-workers") == 2
    assert _one(points, "poolkit.task.run_time.count", "otel-workers") >= 1
    assert _one(points, "poolkit.buffers.idle", "otel-bufs") == 1
    assert found["poolkit.buffers.idle_bytes"].unit == "By"
    assert _one(points, "poolkit.buffers.idle_bytes", "otel-bufs") == 1024
    bufs.close()


def test_a_closed_pool_is_not_observed_at_the_next_collection(collect: Any) -> None:
    pool = ConnectionPool(FakeConnector(), name="otel-gone")
    points, _ = collect()
    assert _one(points, "poolkit.connections.idle", "otel-gone") == 0
    pool.close()
    points, _ = collect()
    assert not [key for key in points if ("pool", "otel-gone") in key[1]]


def test_instrument_twice_on_one_provider_creates_nothing_more() -> None:
    provider = sdk_metrics.MeterProvider(metric_readers=[InMemoryMetricReader()])
    first = poolkit_otel.instrument(provider)
    assert poolkit_otel.instrument(provider) is first
    assert "poolkit.connections.in_use" in first.instruments
    provider.shutdown()


def test_snapshots_are_reused_within_max_age() -> None:
    """One collection reads each pool's stats once, not once per instrument."""
    now = [0.0]
    cache = poolkit_otel._Snapshots(1.0, clock=lambda: now[0])
    pool = WorkerPool(1, name="otel-cache")
    first = cache.get()
    assert cache.get() is first
    now[0] = 1.0
    assert cache.get() is not first
    pool.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"meter_provider": "global"}, TypeError, "meter_provider"),
        ({"max_age": -1}, ValueError, "max_age"),
        ({"max_age": "1"}, TypeError, "max_age"),
    ],
)
def test_instrument_rejects_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        poolkit_otel.instrument(**kwargs)


def test_without_opentelemetry_api_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "poolkit.integrations.opentelemetry"
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "opentelemetry.metrics", raising=False)
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=r"pip install 'poolkit\[opentelemetry\]'"):
        importlib.import_module(name)


def test_every_metric_has_its_own_otel_name() -> None:
    names = [spec.otel_name for spec in poolkit_otel.METRICS]
    assert len(set(names)) == len(names)
    assert poolkit_otel.METRICS[0].otel_name == "poolkit.connections.total"
