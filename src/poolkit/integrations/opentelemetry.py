"""OpenTelemetry export of every live pool: observable instruments read at collection.

``pip install 'poolkit[opentelemetry]'`` (opentelemetry-api; an SDK or a
distro supplies the meter provider and exporter). Then::

    from poolkit.integrations import opentelemetry as poolkit_otel

    poolkit_otel.instrument()      # the global meter provider (again: a no-op)

Every metric of the Prometheus exporter, under the same table (docs/stats.md),
named OTel-style: ``poolkit_connections_in_use`` is ``poolkit.connections.in_use``,
``poolkit_tasks_completed_total`` is ``poolkit.tasks.completed``; the unit is
``s`` for seconds, ``By`` for bytes, ``1`` otherwise; every data point has the
attribute ``pool`` (the pool's name). Gauges are ``ObservableGauge``, counters
``ObservableCounter`` (cumulative; a connection pool's ``pop_stats()``
resets them, which a backend reads as a counter reset).

Histograms: OpenTelemetry has no observable histogram, and poolkit's histograms
are already aggregated by the pools (fixed buckets, docs/stats.md). Each one is
exported losslessly as observable instruments: ``<name>.count`` and
``<name>.sum`` (counters), ``<name>.max`` (a gauge) and ``<name>.bucket`` (a
counter per bucket, attribute ``le`` = the bucket's upper bound in seconds as
Prometheus writes it, ``+Inf`` last; cumulative). For example
``poolkit.connection.acquire_wait.count``. Feeding a synchronous histogram
from the deltas instead would invent observations (a value per bucket) and
lose the exact sum and max.

The callbacks read :func:`poolkit.pools` and each pool's ``stats()`` once per
collection: the first callback of a collection takes the snapshots, the
others reuse them for ``max_age`` seconds (HikariCP refreshes its pool
gauges at most once a second for the same reason). A pool whose ``stats()``
raises is left out and logged (WARNING on ``poolkit.integrations``).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from poolkit import __version__
from poolkit._validate import check_seconds
from poolkit.integrations._metrics import CLOSED, METRICS, MetricSpec, le_text, snapshots

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "poolkit.integrations.opentelemetry needs opentelemetry-api: "
        "pip install 'poolkit[opentelemetry]'"
    ) from exc

__all__ = ["MAX_AGE", "METRICS", "Instrumentation", "instrument"]

# Seconds the snapshots of one collection are reused by the instruments'
# callbacks: long enough for one collection's callbacks (which run one after
# another), short against any export interval (60 s by default).
MAX_AGE = 1.0

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Snapshots:
    """The live pools' ``to_dict()`` snapshots, taken at most once per ``max_age``."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._taken = -math.inf
        self._stats: list[dict[str, Any]] = []

    def get(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._clock()
            if now - self._taken >= self._max_age:
                self._stats = snapshots()
                self._taken = now
            return self._stats

    def of(self, spec: MetricSpec) -> Iterator[tuple[str, Any]]:
        """``(pool name, value)`` of the pools that have ``spec``'s field."""
        for s in self.get():
            if s.get("family") in spec.families and s.get(spec.field) is not None:
                yield s["name"], s[spec.field]


class Instrumentation:
    """The instruments :func:`instrument` created on one meter.

    Attributes:
        meter: the ``poolkit`` meter.
        instruments: instrument name -> the observable instrument.
    """

    def __init__(self, meter: Meter, max_age: float) -> None:
        self.meter = meter
        self._snapshots = _Snapshots(max_age)
        self.instruments: dict[str, Any] = {}
        for spec in METRICS:
            if spec.kind == "histogram":
                self._histogram(spec)
            else:
                self._add(spec.otel_name, spec.kind, spec.unit, spec.doc, self._values(spec))
        self._add(CLOSED.otel_name, "counter", "1", CLOSED.doc, self._closed)

    def _add(self, name: str, kind: str, unit: str, doc: str, callback: Callback) -> None:
        create = (
            self.meter.create_observable_gauge
            if kind == "gauge"
            else self.meter.create_observable_counter
        )
        self.instruments[name] = create(name, callbacks=[callback], unit=unit, description=doc)

    def _values(self, spec: MetricSpec) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(float(v), {"pool": n}) for n, v in self._snapshots.of(spec)]

        return observe

    def _histogram(self, spec: MetricSpec) -> None:
        name, doc = spec.otel_name, spec.doc

        def part(key: str) -> Callback:
            def observe(options: CallbackOptions) -> Iterable[Observation]:
                return [Observation(h[key], {"pool": n}) for n, h in self._snapshots.of(spec)]

            return observe

        def buckets(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(count, {"pool": n, "le": le_text(le)})
                for n, h in self._snapshots.of(spec)
                for le, count in h["buckets"]
            ]

        self._add(f"{name}.count", "counter", "1", f"{doc} (observations)", part("count"))
        self._add(f"{name}.sum", "counter", "s", f"{doc} (total)", part("sum"))
        self._add(f"{name}.max", "gauge", "s", f"{doc} (longest)", part("max"))
        self._add(f"{name}.bucket", "counter", "1", f"{doc} (cumulative, by le)", buckets)

    def _closed(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {"pool": n, "reason": reason})
            for n, by_reason in self._snapshots.of(CLOSED)
            for reason, count in by_reason.items()
        ]

    def __repr__(self) -> str:
        return f"<Instrumentation of {len(self.instruments)} instruments>"


_lock = threading.Lock()
# Meter provider -> its instrumentation (weakly: a provider shut down and
# dropped goes, with it). The global provider is resolved when None is given.
_done: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()


def instrument(
    meter_provider: MeterProvider | None = None, *, max_age: float = MAX_AGE
) -> Instrumentation:
    """Export every live pool through OpenTelemetry observable instruments.

    Idempotent: a second call for the same meter provider creates nothing
    and returns the first instrumentation.

    Args:
        meter_provider: where the ``poolkit`` meter comes from (default: the
            global one, ``opentelemetry.metrics.get_meter_provider()``: set
            yours first, or the instruments go to the no-op provider).
        max_age: seconds one collection's snapshots are reused by the other
            instruments' callbacks (0: read the pools for every instrument).

    Returns:
        The :class:`Instrumentation` (its meter and instruments).

    Raises:
        TypeError: ``meter_provider`` has no ``get_meter``.
        ValueError: ``max_age`` is negative.
    """
    max_age = check_seconds("max_age", max_age, allow_zero=True)
    provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
    if not callable(getattr(provider, "get_meter", None)):
        raise TypeError(
            f"meter_provider must be an OpenTelemetry MeterProvider, got {type(provider).__name__}"
        )
    with _lock:
        done = _done.get(provider)
        if done is None:
            meter = provider.get_meter("poolkit", __version__)
            done = _done[provider] = Instrumentation(meter, max_age)
    return done
