"""The Dask part of ``poolkit bench scaleout``: DaskPool.map against its peers.

A scheduler and two single-thread workers run as separate processes on
loopback (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``), so
the client process holds only client state. Subjects, all mapping ``abs``
over ``range(N)`` and summing the results:

* ``poolkit`` — ``DaskPool(client).map`` (lazy, default window);
* ``Client.map`` — ``client.gather(client.map(abs, range(N)))``: every task at once;
* ``as_completed loop`` — the hand-written bounded loop of dask/distributed#864
  (submit a window of 512, as DaskPool's default, ``as_completed(..., with_results=True)``, ``add``
  one per result).

Throughput: N = 2,000 (quick) or 20,000 tasks, in this process, best of 2
(quick) or 3 interleaved rounds. Client peak
memory: N = 20,000 (quick) or 200,000 inputs, each subject in a child
process of its own (growth of its resident set while it maps).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from poolkit._bench import BenchContext
from poolkit._demo.scaleout import free_port

WINDOW = 512
SUBJECTS = ("poolkit", "Client.map", "as_completed loop")


def _note(text: str) -> None:
    print(f"bench scaleout: {text}", file=sys.stderr)


@contextlib.contextmanager
def dask_cluster() -> Iterator[str]:
    """A scheduler and two workers in processes of their own; yields its address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler_args = ["--host", "127.0.0.1", "--port", str(port), "--no-show"]
    scheduler_args += ["--dashboard-address", "127.0.0.1:0"]  # never 8787: it may be taken
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", *scheduler_args],
        **quiet,  # type: ignore[call-overload]
    )
    worker_args = ["--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
    workers = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, *worker_args],
        **quiet,  # type: ignore[call-overload]
    )
    try:
        yield address
    finally:
        for proc in (workers, scheduler):
            proc.terminate()
        for proc in (workers, scheduler):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _connect(address: str) -> Any:
    from distributed import Client

    client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
    client.wait_for_workers(2, timeout=60)
    return client


def _mapper(subject: str, client: Any) -> Callable[[int], int]:
    """``run(n)``: map ``abs`` over ``range(n)`` the subject's way; the sum."""
    from distributed import as_completed

    from poolkit.integrations.dask import DaskPool

    def ours(n: int) -> int:
        with DaskPool(client) as pool:
            return sum(pool.map(abs, range(n)))

    def client_map(n: int) -> int:
        return sum(client.gather(client.map(abs, range(n), pure=False)))

    def bounded_loop(n: int) -> int:
        inputs = iter(range(n))
        tracker = as_completed(  # type: ignore[no-untyped-call]
            client.map(abs, list(itertools.islice(inputs, WINDOW)), pure=False),
            with_results=True,
        )
        total = 0
        for _future, result in tracker:
            total += result
            nxt = next(inputs, None)
            if nxt is not None:
                tracker.add(client.submit(abs, nxt, pure=False))  # type: ignore[no-untyped-call]
        return total

    return {"poolkit": ours, "Client.map": client_map, "as_completed loop": bounded_loop}[subject]


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(ctx: BenchContext) -> None:
    """Peak RSS growth of this client process while one subject maps N inputs."""
    subject = os.environ["POOLKIT_BENCH_SUBJECT"]
    n = int(os.environ["POOLKIT_INPUTS"])
    client = _connect(os.environ["POOLKIT_DASK_ADDRESS"])
    run = _mapper(subject, client)
    run(100)  # warm: imports, connections, the first tasks
    base = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        assert run(n) == n * (n - 1) // 2
    finally:
        done.set()
        sampler.join()
        client.close()
    label = f"dask map {n:,} inputs, client peak RSS growth"
    ctx.record(label, subject, "bytes", max(0, peak - base))


def run(ctx: BenchContext) -> None:
    """Throughput here, then client memory in one child process per subject."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        _note("Dask part skipped (distributed not installed: pip install 'poolkit[dask]')")
        return
    n = 2_000 if ctx.quick else 20_000
    inputs = 20_000 if ctx.quick else 200_000
    with dask_cluster() as address:
        client = _connect(address)
        try:
            # Rounds interleave the subjects and the best round counts: the
            # cluster warms up and the machine's load moves during a run.
            best = dict.fromkeys(SUBJECTS, 0.0)
            mappers = {subject: _mapper(subject, client) for subject in SUBJECTS}
            for run_map in mappers.values():
                run_map(100)
            for _round in range(2 if ctx.quick else 3):
                for subject, run_map in mappers.items():
                    start = time.perf_counter()
                    assert run_map(n) == n * (n - 1) // 2
                    best[subject] = max(best[subject], n / (time.perf_counter() - start))
            for subject, rate in best.items():
                ctx.record(f"dask map {n:,} trivial tasks", subject, "ops_per_s", rate)
        finally:
            client.close()
        for subject in SUBJECTS:
            ctx.run_in_child(
                "memory_child",
                {
                    "POOLKIT_BENCH_SUBJECT": subject,
                    "POOLKIT_INPUTS": str(inputs),
                    "POOLKIT_DASK_ADDRESS": address,
                },
            )
