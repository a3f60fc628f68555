"""The one table from stats fields to exported metrics, shared by every exporter.

:data:`METRICS` maps each glossary field of docs/stats.md, per family, to a
metric (name, kind, help); :func:`snapshots` reads the live pools the way the
exporter contract says. ``poolkit.integrations.prometheus`` and
``poolkit.integrations.opentelemetry`` both export from here, so a pool
appears under the same names in both (``poolkit_connections_in_use`` and
``poolkit.connections.in_use``). Imports no client library.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from poolkit import _log
from poolkit._registry import pools

__all__ = ["CLOSED", "METRICS", "UNEXPORTED", "MetricSpec", "le_text", "snapshots"]

_LOG = logging.getLogger("poolkit.integrations")

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

    @property
    def otel_name(self) -> str:
        """The OpenTelemetry name: ``poolkit.<subject>.<rest>``
        (``poolkit_connections_in_use`` → ``poolkit.connections.in_use``; bytes keep
        their suffix, ``poolkit.buffers.idle_bytes``, beside ``.idle``); durations
        and ``poolkit_connections`` take the glossary's word, as OTel's semantic
        conventions do (``poolkit_connection_hold_seconds`` →
        ``poolkit.connection.hold_time``, ``poolkit.connections.total``)."""
        _, subject, *rest = self.name.split("_", 2)
        if not rest or self.name.endswith("_seconds"):  # poolkit_connections: .total
            rest = [self.field]
        return f"poolkit.{subject}.{rest[0]}"

    @property
    def unit(self) -> str:
        """The UCUM unit OpenTelemetry gets: ``s``, ``By`` or ``1``."""
        if self.name.endswith("_seconds"):
            return "s"
        if self.name.endswith("_bytes"):
            return "By"
        return "1"


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
_TIMED = frozenset({"processes", "resque"})
_RESQUE = frozenset({"resque"})
_DASK = frozenset({"dask"})
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
poolkit_connection_waits_for_create waited_for_create Acquisitions that waited for a new connection.
poolkit_connection_wait_seconds wait_time Seconds callers spent queued for a connection.
poolkit_connection_timeouts timeouts Acquisitions that gave up with PoolTimeout.
poolkit_connection_overloads overloads Acquisitions refused with PoolOverload.
poolkit_connections_created created Connections opened.
poolkit_connection_create_errors create_errors Failed attempts to open a connection.
poolkit_connection_reconnects_failed reconnects_failed Connects given up (reconnect_timeout).
poolkit_connection_retries retries Operations run() ran again on another connection.
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
poolkit_workers_paused paused 1 while the pool is paused.
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
        _TIMED,
        "counter",
        """
poolkit_tasks_timed_out timed_out Tasks stopped by their timeout.
""",
    ),
    *_specs(
        _PROC,
        "counter",
        """
poolkit_workers_crashed crashed Worker processes that died unexpectedly.
poolkit_workers_recycled recycled Workers retired by max_tasks_per_child or max_memory_per_child.
poolkit_workers_started started Worker processes started.
""",
    ),
    *_specs(
        _RESQUE,
        "counter",
        """
poolkit_tasks_unknown_class unknown_class Jobs failed because no handler knows their class.
poolkit_tasks_recovered recovered Jobs of dead workers put back on their queue.
poolkit_workers_pruned pruned Dead worker registrations removed.
poolkit_queue_polls polls Fetch round trips to the queue.
""",
    ),
    *_specs(
        _DASK,
        "gauge",
        """
poolkit_tasks_in_flight in_flight Tasks on the cluster.
poolkit_tasks_max_in_flight max_in_flight The bound on tasks on the cluster.
poolkit_tasks_peak_in_flight peak_in_flight The most tasks that were on the cluster at once.
poolkit_cluster_workers cluster_workers Workers connected to the cluster's scheduler.
""",
    ),
    *_specs(
        _BUF,
        "gauge",
        """
poolkit_buffers_idle idle Objects or buffers idle in the pool.
poolkit_buffers_idle_bytes idle_bytes Bytes the idle buffers hold.
poolkit_buffers_max_idle max_idle The most idle objects or buffers kept.
poolkit_buffers_max_idle_bytes max_idle_bytes The most bytes idle buffers may hold.
poolkit_buffers_hit_ratio hit_ratio Share of gets served from the pool.
poolkit_buffers_default_size_bytes default_buffer_size Size a new ByteBuffer gets (calibrated).
poolkit_buffers_max_size_bytes max_buffer_size Largest ByteBuffer kept (calibrated).
""",
    ),
    *_specs(
        _BUF,
        "counter",
        """
poolkit_buffers_hits hits Gets served from the pool.
poolkit_buffers_misses misses Gets that allocated.
poolkit_buffers_returned returned Objects given back with put.
poolkit_buffers_kept kept Given-back items filed as idle.
poolkit_buffers_evicted evicted Idle items dropped to stay within a bound.
poolkit_buffers_expired expired Idle items released by max_idle_time.
poolkit_buffers_refused refused Gives-back refused (ReleaseError, or their size).
poolkit_buffers_cleared cleared Idle items released by clear() or close().
poolkit_buffers_oversize oversize Gets above the largest size class (not pooled).
poolkit_buffers_dropped dropped Given-back items let go, for any reason.
poolkit_buffers_dropped_by_accept dropped_by_accept Given-back items the keep rule refused.
poolkit_buffers_dropped_by_error dropped_by_error Given-back items dropped because reset raised.
poolkit_buffers_dropped_by_gc dropped_by_gc Idle items the garbage collector took.
poolkit_buffers_dropped_closed dropped_closed Items given back to a closed pool.
poolkit_buffers_dropped_oversize dropped_oversize Given-back buffers above the largest class.
poolkit_buffers_dropped_budget dropped_budget Given-back buffers over the idle byte budget.
poolkit_buffers_dropped_class_full dropped_class_full Given-back buffers whose size class was full.
poolkit_buffers_dropped_in_use dropped_in_use Given-back buffers a view still used.
poolkit_buffers_contended_gets contended_gets Gets that found the pool's lock busy.
poolkit_buffers_contended_puts contended_puts Puts that found the pool's lock busy.
poolkit_buffers_calibrations calibrations Calibrations of the default and max buffer size.
poolkit_buffers_replaced replaced Grown buffers replaced by a fresh one.
""",
    ),
)

# Fields of the stats that are deliberately not exported, per family group:
# labels, a closed pool's flag (closed pools are not listed), sums and derived
# figures that PromQL computes from what is exported, a list.
UNEXPORTED: dict[frozenset[str], frozenset[str]] = {
    _CONN: frozenset({"family", "name", "closed", "closed_by_reason"}),  # closed: the sum
    _WORK: frozenset({"family", "name", "closed"}),
    _BUF: frozenset({"family", "name", "gets", "idle_by_class"}),
}

# Connections closed, per reason (closed_by_reason): a counter with a ``reason`` label.
CLOSED = MetricSpec(
    "poolkit_connections_closed",
    "counter",
    "closed_by_reason",
    _CONN,
    "Connections closed, by reason.",
)


def snapshots() -> list[dict[str, Any]]:
    """``stats().to_dict()`` of every live pool, each ``name`` unique.

    A pool whose ``stats()`` raises is left out (and logged, rate-limited);
    a name two pools share gets ``#2``, ``#3``... on the younger ones.
    """
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for pool in pools():
        name = str(getattr(pool, "name", type(pool).__name__))
        try:
            snapshot = pool.stats().to_dict()
        except Exception as exc:
            # One broken pool (or one closing under the scrape) must not cost
            # the scrape of every other pool.
            _log.log_limited(
                _LOG, logging.WARNING, name, "stats", "stats() failed, left out: %r", exc
            )
            continue
        n = seen[name] = seen.get(name, 0) + 1
        snapshot["name"] = name if n == 1 else f"{name}#{n}"
        out.append(snapshot)
    return out


def le_text(bound: float | str) -> str:
    """A histogram bucket's upper bound as Prometheus writes it (``"0.001"``, ``"+Inf"``)."""
    return bound if isinstance(bound, str) else repr(float(bound))
