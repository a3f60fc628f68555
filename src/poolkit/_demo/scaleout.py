"""Demo part ``scaleout`` (run only when named): Resque jobs and a Dask cluster.

Resque half (needs ``redis-server`` and redis-py): a private Redis on a free
loopback port; jobs pushed exactly as Ruby's ``Resque.enqueue`` pushes them;
worker A (a child process) takes them, and is killed with SIGKILL in the
middle of a long job; worker B starts, prunes A's registrations, puts A's
jobs back on their queue and finishes everything: nothing lost.

Dask half (needs distributed): a LocalCluster of two worker processes; a
client maps ``abs`` over N inputs with ``Client.map`` (everything submitted at
once) and with ``DaskPool.map`` (bounded, lazy), each in a child process of
its own, sampling its resident memory: the chart shows one growing with N
and the other flat.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from poolkit._demo._measure import run_child
from poolkit._demo._report import DemoContext, Section

__all__ = ["dask_memory", "free_port", "redis_server", "resque_recovery", "run"]

QUEUE = "images"
WAYS = ("Client.map", "DaskPool.map")
# Bound on waits for something that must happen promptly; reaching it fails the demo.
PROMPT = 30.0


def thumbnail(url: str, job_id: int, key: str) -> None:
    """A Resque job (``url`` bound by the worker): a little work, then record it ran."""
    import redis

    time.sleep(0.005)
    with redis.Redis.from_url(url) as client:
        client.rpush(key, job_id)


def slow_report(url: str, job_id: int, key: str, seconds: float) -> None:
    """A long Resque job: the one worker A is killed in the middle of."""
    time.sleep(seconds)
    thumbnail(url, job_id, key)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server(binary: str) -> Iterator[str]:
    """A private redis-server on a free loopback port (no persistence); its URL."""
    import redis

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", tmp, "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _until(lambda: _pings(redis, port), "redis-server to answer")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait()


def _pings(redis: Any, port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


def _until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + PROMPT
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo scaleout: gave up waiting for {what}")
        time.sleep(0.01)


def _worker(url: str) -> Any:
    from poolkit.integrations.resque import ResqueWorker

    worker = ResqueWorker(url, QUEUE, concurrency=4, interval=0.05, grace=5)
    worker.register("Thumbnail", functools.partial(thumbnail, url))
    worker.register("SlowReport", functools.partial(slow_report, url))
    return worker


def resque_recovery(url: str, jobs: int, slow: float) -> dict[str, Any]:
    """Enqueue ``jobs`` + 1 jobs Ruby-style, kill worker A mid-job, recover with B."""
    import redis

    client = redis.Redis.from_url(url)
    done_key = "demo:done"
    # Byte for byte what Ruby's Resque.enqueue writes: SADD the queue, RPUSH compact JSON.
    client.sadd("resque:queues", QUEUE)
    client.rpush(
        f"resque:queue:{QUEUE}", json.dumps({"class": "SlowReport", "args": [0, done_key, slow]})
    )
    for i in range(1, jobs + 1):
        client.rpush(f"resque:queue:{QUEUE}", f'{{"class":"Thumbnail","args":[{i},"{done_key}"]}}')
    child = subprocess.Popen(
        [sys.executable, "-m", "poolkit._demo.scaleout", "worker", url], stdout=subprocess.DEVNULL
    )
    try:
        # Wait until A works on the slow job (Resque's worker key shows it), then kill it.
        _until(lambda: _busy_with(client, "SlowReport"), "worker A to start the slow job")
        killed_mid = client.keys("resque:worker:*:processing")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    worker_b = _worker(url)
    worker_b.run(burst=True, handle_signals=False)
    stats = worker_b.stats()
    ran = [int(x) for x in client.lrange(done_key, 0, -1)]
    client.close()
    return {
        "enqueued": jobs + 1,
        "in_flight_at_kill": len(killed_mid),
        "pruned": stats.pruned,
        "recovered": stats.recovered,
        "done_by_b": stats.succeeded,
        "distinct_done": len(set(ran)),
        "lost": jobs + 1 - len(set(ran)),
        "ran_twice": len(ran) - len(set(ran)),
    }


def _busy_with(client: Any, class_name: str) -> bool:
    for key in client.keys("resque:worker:*"):
        name = key.decode()
        if name.endswith((":started", ":processing")):
            continue
        value = client.get(key)
        if value and json.loads(value)["payload"]["class"] == class_name:
            return True
    return False


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dask_memory(address: str, way: str, inputs: int) -> dict[str, Any]:
    """In this process: map ``abs`` over ``inputs`` one way; sample the resident set."""
    from distributed import Client

    from poolkit.integrations.dask import DaskPool

    client: Any = Client(address, timeout=PROMPT)  # type: ignore[no-untyped-call]
    base = _rss_bytes()
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append((time.perf_counter() - start, (_rss_bytes() - base) / (1 << 20)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        if way == "Client.map":
            total = sum(client.gather(client.map(abs, range(inputs), pure=False)))
        else:
            with DaskPool(client) as pool:
                total = sum(pool.map(abs, range(inputs)))
    finally:
        done.set()
        sampler.join()
        client.close()
    assert total == inputs * (inputs - 1) // 2
    elapsed = time.perf_counter() - start
    peak = max([mib for _, mib in samples] or [0.0])
    return {"seconds": elapsed, "peak_mib": peak, "samples": samples}


def _in_child(address: str, way: str, inputs: int) -> dict[str, Any]:
    args = ("memory", address, way, inputs)
    return run_child("poolkit._demo.scaleout", args, f"dask map {way!r}", timeout=1800)


def _resque_half(ctx: DemoContext, rows: list[list[object]], findings: list[str]) -> None:
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        binary = None
    if binary is None:
        findings.append(
            "Resque half skipped: it needs redis-server and redis-py "
            "(apt-get install redis-server; pip install 'poolkit[resque]')."
        )
        return
    jobs, slow = (40, 1.0) if ctx.quick else (400, 2.0)
    with (
        ctx.progress("Resque: enqueue, kill worker A, recover", 1) as bar,
        redis_server(binary) as url,
    ):
        r = resque_recovery(url, jobs, slow)
        bar.advance()
    rows += [
        ["Resque jobs enqueued (Ruby's format)", r["enqueued"]],
        ["jobs in worker A's processing lists when it was SIGKILLed", r["in_flight_at_kill"]],
        ["dead registrations pruned by worker B", r["pruned"]],
        ["jobs put back on the queue by worker B", r["recovered"]],
        ["jobs lost", r["lost"]],
    ]
    findings.append(
        f"worker A was killed with {r['in_flight_at_kill']} jobs in flight; worker B "
        f"recovered {r['recovered']} and finished the queue: {r['distinct_done']} of "
        f"{r['enqueued']} jobs done, {r['lost']} lost ({r['ran_twice']} ran twice: "
        "at-least-once)."
    )


def _dask_half(
    ctx: DemoContext,
    rows: list[list[object]],
    findings: list[str],
    charts: list[tuple[str, str]],
) -> None:
    try:
        import distributed
    except ImportError:
        findings.append("Dask half skipped: pip install 'poolkit[dask]'.")
        return
    cluster_of: Any = distributed.LocalCluster
    inputs = 5_000 if ctx.quick else 50_000
    results: dict[str, dict[str, Any]] = {}
    with (
        ctx.progress(f"Dask: map over {inputs:,} inputs, 2 ways", len(WAYS)) as bar,
        cluster_of(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
    ):
        for way in WAYS:
            results[way] = _in_child(cluster.scheduler_address, way, inputs)
            bar.advance()
    for way in WAYS:
        r = results[way]
        rows.append([f"{way}: client peak memory growth (MiB)", f"{r['peak_mib']:.1f}"])
        rows.append([f"{way}: tasks/s", f"{inputs / r['seconds']:,.0f}"])
    series: dict[str, tuple[Sequence[float], Sequence[float]]] = {
        way: ([t for t, _ in results[way]["samples"]], [m for _, m in results[way]["samples"]])
        for way in WAYS
    }
    charts.append(
        (
            ctx.line_chart(
                "scaleout_dask_memory.png",
                title=f"Client memory while mapping {inputs:,} inputs on a Dask cluster",
                xlabel="seconds",
                ylabel="resident memory growth (MiB)",
                series=series,
            ),
            "Client.map holds every task at once; DaskPool.map keeps a bounded window",
        )
    )
    ours, theirs = results["DaskPool.map"], results["Client.map"]
    findings.append(
        f"client memory growth over {inputs:,} inputs: DaskPool.map {ours['peak_mib']:.1f} MiB "
        f"(bounded window) vs Client.map {theirs['peak_mib']:.1f} MiB (every task at once); "
        f"throughput {inputs / ours['seconds']:,.0f} vs {inputs / theirs['seconds']:,.0f} tasks/s."
    )


def run(ctx: DemoContext) -> Section:
    """Both halves; a half whose dependencies are missing says how to get them."""
    rows: list[list[object]] = []
    findings: list[str] = []
    charts: list[tuple[str, str]] = []
    _resque_half(ctx, rows, findings)
    _dask_half(ctx, rows, findings, charts)
    return Section(
        title="Scale-out: Resque workers and a Dask cluster",
        intro=(
            "Resque: jobs pushed in Ruby Resque's format are worked by a poolkit "
            "ResqueWorker in a child process, which is killed (SIGKILL) in the middle of a "
            "long job; a second worker prunes its registrations and puts its jobs back. "
            "Dask: one client maps over many inputs with Client.map and with DaskPool.map, "
            "each in its own process, its resident memory sampled."
        ),
        headers=["step", "result"],
        rows=rows,
        findings=findings,
        charts=charts,
    )


def _main(argv: list[str]) -> None:
    if argv[0] == "worker":
        _worker(argv[1]).run(handle_signals=True)
    else:
        print(json.dumps(dask_memory(argv[1], argv[2], int(argv[3]))))


if __name__ == "__main__":
    _main(sys.argv[1:])
