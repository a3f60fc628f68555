"""Nothing taken from Redis is lost: killed workers, signals, stale registrations, a stress run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from poolkit.integrations.resque import ResqueWorker, enqueue
from tests.adapters.conftest import PROMPT, eventually
from tests.integrations import resque_jobs

ROOT = Path(__file__).resolve().parents[2]


def spawn_worker(url: str, queue: str, grace: float) -> tuple[subprocess.Popen[str], list[str]]:
    """A worker in a child process (``resque_jobs.main``); returns it and its slot ids."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.resque_jobs", url, queue, str(grace)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ids = proc.stdout.readline().strip().split(",")
    return proc, ids


def test_a_worker_killed_mid_job_has_its_job_requeued_by_the_next_worker(
    rclient: Any, redis_url: str, tmp_path: Path
) -> None:
    """SIGKILL mid-job: the job waits in the dead slot's processing list, then runs again."""
    marker, ran = tmp_path / "started", tmp_path / "ran"
    enqueue(rclient, "q", "MarkThenBlock", str(marker), 60)
    proc, ids = spawn_worker(redis_url, "q", grace=5)
    try:
        eventually(marker.exists, "the job started in the child worker")
        busy = [i for i in ids if rclient.get(f"resque:worker:{i}") is not None]
        assert len(busy) == 1
        assert rclient.llen("resque:queue:q") == 0  # taken, so only a processing list has it
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert rclient.llen(f"resque:worker:{busy[0]}:processing") == 1
    # The next worker prunes the dead registrations and requeues the job first thing.
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.05)
    worker.register("MarkThenBlock", lambda path, seconds: resque_jobs.append_line(str(ran), "x"))
    worker.run(burst=True, handle_signals=False)
    assert ran.read_text() == "x\n"  # ran once
    stats = worker.stats()
    assert (stats.recovered, stats.pruned, stats.succeeded) == (1, len(ids), 1)
    assert rclient.smembers("resque:workers") == set()
    assert rclient.keys("resque:worker:*") == []


def test_sigterm_lets_the_running_job_finish_then_the_worker_exits(
    rclient: Any, redis_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    enqueue(rclient, "q", "MarkThenBlock", str(marker), 0.5)
    proc, _ids = spawn_worker(redis_url, "q", grace=PROMPT)
    try:
        eventually(marker.exists, "the job started in the child worker")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=PROMPT)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out.strip() == "done 1 0"  # one succeeded, none put back
    assert int(rclient.get("resque:stat:processed")) == 1
    assert rclient.smembers("resque:workers") == set()


def test_a_second_sigterm_puts_the_running_job_back_at_once(
    rclient: Any, redis_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    enqueue(rclient, "q", "MarkThenBlock", str(marker), 60)
    proc, _ids = spawn_worker(redis_url, "q", grace=60)
    try:
        eventually(marker.exists, "the job started in the child worker")
        proc.send_signal(signal.SIGTERM)

        # Two signals sent at once may arrive as one: repeat until it exits.
        # Any exit well before the 60 s grace shows a later signal skipped it.
        def gone() -> bool:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                return False
            return True

        eventually(gone, "the worker exited after a second SIGTERM")
        out, _ = proc.communicate(timeout=PROMPT)
    finally:
        proc.kill()
    assert out.strip() == "done 0 1"
    assert rclient.llen("resque:queue:q") == 1


def test_a_registration_with_an_expired_heartbeat_is_pruned_and_its_job_requeued(
    rclient: Any, redis_url: str
) -> None:
    """Another host's worker that stopped heartbeating past prune_interval is dead."""
    dead = "other-host:4242-0:q"
    job = b'{"class":"Rec","args":["again"]}'
    old = (datetime.now(UTC) - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    rclient.sadd("resque:workers", dead)
    rclient.hset("resque:workers:heartbeat", dead, old)
    rclient.rpush(f"resque:worker:{dead}:processing", job)
    rclient.set(
        f"resque:worker:{dead}",
        json.dumps({"queue": "q", "run_at": old, "payload": json.loads(job)}),
    )
    seen: list[str] = []
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.05, prune_interval=60)
    worker.register("Rec", seen.append)
    worker.run(burst=True, handle_signals=False)
    assert seen == ["again"]
    assert worker.stats().recovered == 1


def test_a_live_heartbeat_on_another_host_is_left_alone(rclient: Any, redis_url: str) -> None:
    alive = "other-host:4242-0:q"
    rclient.sadd("resque:workers", alive)
    rclient.hset("resque:workers:heartbeat", alive, datetime.now(UTC).isoformat())
    ResqueWorker(redis_url, "q", interval=0.05).run(burst=True, handle_signals=False)
    assert rclient.smembers("resque:workers") == {alive.encode()}


def test_a_dead_foreign_workers_job_is_failed_as_resque_does(rclient: Any, redis_url: str) -> None:
    """A Ruby worker (no processing list) died on this host: its job goes to failed."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that surely is not running any more
    dead = f"{__import__('socket').gethostname()}:{proc.pid}:q"
    rclient.sadd("resque:workers", dead)
    rclient.set(
        f"resque:worker:{dead}",
        '{"queue":"q","run_at":"2024-01-02T03:04:05Z","payload":{"class":"Archive","args":[]}}',
    )
    ResqueWorker(redis_url, "q", interval=0.05).run(burst=True, handle_signals=False)
    [raw] = rclient.lrange("resque:failed", 0, -1)
    record = json.loads(raw)
    assert (record["exception"], record["worker"], record["queue"]) == ("DirtyExit", dead, "q")
    assert record["payload"] == {"class": "Archive", "args": []}
    assert rclient.smembers("resque:workers") == set()


@pytest.mark.stress
def test_stress_several_workers_lose_and_duplicate_nothing(
    rclient: Any, redis_url: str, tmp_path: Path
) -> None:
    """2,000 jobs, two queues, three workers (threads and asyncio), one stopped mid-run."""
    total = 2000
    for i in range(total):
        enqueue(rclient, "a" if i % 3 else "b", "Rec", i)
    lock = threading.Lock()
    seen: list[int] = []

    def rec(n: int) -> None:
        with lock:
            seen.append(n)

    async def arec(n: int) -> None:
        rec(n)

    workers = [
        ResqueWorker(redis_url, "a,b", concurrency=8, interval=0.01),
        ResqueWorker(redis_url, "b=2,a=1", concurrency=4, interval=0.01),
        ResqueWorker(redis_url, ["b", "a"], mode="asyncio", concurrency=16, interval=0.01),
    ]
    for w in workers:
        w.register("Rec", arec if w.stats().max_workers == 16 else rec)
    threads = [
        threading.Thread(target=w.run, kwargs={"burst": True, "handle_signals": False})
        for w in workers
    ]
    for t in threads:
        t.start()
    eventually(lambda: len(seen) > total // 4, "a quarter done")
    workers[0].stop(grace=PROMPT)  # one worker leaves mid-run, finishing what it runs
    for t in threads:
        t.join(PROMPT * 3)
        assert not t.is_alive()
    assert sorted(seen) == list(range(total))  # every job once: none lost, none twice
    stats = [w.stats() for w in workers]
    assert sum(s.succeeded for s in stats) == total
    assert all(s.submitted == s.completed + s.cancelled for s in stats)
    assert int(rclient.get("resque:stat:processed")) == total
    assert rclient.keys("resque:worker:*") == []
    assert rclient.smembers("resque:workers") == set()


def test_a_worker_rides_out_a_redis_restart(
    redis_server: Any, tmp_path: Path, running: Any
) -> None:
    """goworker#15 (no reconnect after Redis loss): the worker retries and goes on."""
    import redis

    from tests.integrations.conftest import RedisServer

    own = RedisServer(redis_server.binary, tmp_path).start()
    try:
        seen: list[str] = []
        worker = ResqueWorker(own.url, "q", concurrency=1, interval=0.02)
        worker.register("Rec", seen.append)
        thread = running(worker)
        enqueue(own.url, "q", "Rec", "before")
        eventually(lambda: seen == ["before"], "the job before the restart")
        own.kill()
        own.start()  # same port, empty: the worker's connections are all broken
        with redis.Redis.from_url(own.url) as client:
            enqueue(client, "q", "Rec", "after")
        eventually(lambda: seen == ["before", "after"], "the job after the restart")
        worker.stop(grace=0)
        thread.join(PROMPT)
        assert not thread.is_alive()
    finally:
        own.kill()
