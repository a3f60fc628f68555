"""``poolkit bench scaleout``: ResqueWorker against RQ, DaskPool against Client.map.

Resque part (a private ``redis-server`` on a free loopback port): N jobs are
enqueued, then one worker drains the queue in burst mode; the figure is jobs
per second from the worker's start to its return (N = 3,000 quick / 20,000
full; 200 / 1,000 for RQ's forking ``Worker``, 1,000 / 5,000 for
``SimpleWorker``). Subjects:

* ``poolkit`` — ``ResqueWorker(concurrency=8)`` (threads);
* ``poolkit concurrency=1`` — one job at a time, like for like with RQ;
* ``rq Worker`` — RQ's default worker (a forked work horse per job);
* ``rq SimpleWorker`` — RQ's in-process worker.

Two job kinds: ``trivial`` (``time.sleep(0)``) and ``1ms`` (``time.sleep(0.001)``).
The Dask part is in ``scaleout_dask.py``. A peer that is not installed, or a
missing ``redis-server``, is skipped with a note on standard error.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from poolkit._bench import BenchContext
from poolkit._demo.scaleout import redis_server

FAMILY = "scaleout"
CONCURRENCY = 8
JOB_KINDS = {"trivial": 0.0, "1ms": 0.001}


def _note(text: str) -> None:
    print(f"bench scaleout: {text}", file=sys.stderr)


def _poolkit_rate(url: str, n: int, seconds: float, concurrency: int) -> float:
    import redis

    from poolkit.integrations.resque import ResqueWorker

    client = redis.Redis.from_url(url)
    client.flushall()
    job = f'{{"class":"Sleep","args":[{seconds}]}}'
    pipe = client.pipeline(transaction=False)
    pipe.sadd("resque:queues", "bench")
    for _ in range(n):
        pipe.rpush("resque:queue:bench", job)
    pipe.execute()
    worker = ResqueWorker(url, "bench", concurrency=concurrency, interval=0.1)
    worker.register("Sleep", time.sleep)
    start = time.perf_counter()
    worker.run(burst=True, handle_signals=False)
    elapsed = time.perf_counter() - start
    assert worker.stats().succeeded == n, worker.stats()
    client.close()
    return n / elapsed


def _rq_rate(url: str, n: int, seconds: float, worker_class: Any) -> float:
    import redis
    from rq import Queue

    client = redis.Redis.from_url(url)
    client.flushall()
    queue = Queue("bench", connection=client)
    for _ in range(n):
        queue.enqueue(time.sleep, seconds)
    worker = worker_class([queue], connection=client)
    start = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - start
    done = queue.finished_job_registry.count
    assert done == n, f"{worker_class.__name__} finished {done} of {n}"
    client.close()
    return n / elapsed


def _resque(ctx: BenchContext) -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        _note("Resque part skipped (redis-py not installed: pip install 'poolkit[resque]')")
        return
    # (subject, rate(url, n, seconds), jobs quick, jobs full): RQ's Worker forks
    # per job (~30 ms here), so it gets fewer jobs; the rest get enough that
    # start-up (registration, threads) is a small part of the time.
    subjects: list[tuple[str, Callable[[str, int, float], float], int, int]] = [
        ("poolkit", lambda u, n, s: _poolkit_rate(u, n, s, CONCURRENCY), 3000, 20000),
        ("poolkit concurrency=1", lambda u, n, s: _poolkit_rate(u, n, s, 1), 3000, 20000),
    ]
    try:
        from rq import SimpleWorker, Worker

        subjects += [
            ("rq Worker", lambda u, n, s: _rq_rate(u, n, s, Worker), 200, 1000),
            ("rq SimpleWorker", lambda u, n, s: _rq_rate(u, n, s, SimpleWorker), 1000, 5000),
        ]
    except ImportError:
        _note("rq not installed (pip install 'poolkit[bench]'): RQ subjects skipped")
    binary = shutil.which("redis-server")
    if binary is None:
        _note("Resque part skipped (no redis-server binary; apt-get install redis-server)")
        return
    with redis_server(binary) as url:
        for kind, seconds in JOB_KINDS.items():
            for subject, rate, quick, full in subjects:
                n = quick if ctx.quick else full
                best = max(rate(url, n, seconds) for _ in range(1 if ctx.quick else 3))
                ctx.record(f"resque jobs, {kind}", subject, "ops_per_s", best)


def run(ctx: BenchContext) -> None:
    """The Resque part here, then the Dask part (``scaleout_dask.py``)."""
    _resque(ctx)
    ctx.include("scaleout_dask.py")
