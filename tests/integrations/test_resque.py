"""ResqueWorker on a real Redis: Resque's wire format both ways, goworker's semantics."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from poolkit.integrations.resque import ResqueWorker, ResqueWorkerStats, enqueue
from poolkit.workers import WorkerPoolStats
from tests.adapters.conftest import PROMPT, eventually
from tests.integrations import resque_jobs
from tests.integrations.test_resque_wire import FAILURE_KEYS

# Exactly what Ruby's `Resque.enqueue(Archive, 35, "tar")` sends (Resque.push:
# SADD the queue name, RPUSH the compact JSON, class first).
RUBY_ARCHIVE = b'{"class":"Archive","args":[35,"tar"]}'
# A job with a nested hash, nil, a float, non-ASCII text as UTF-8 (Ruby's
# JSON.generate does not escape it) and an extra key a Resque plugin added.
RUBY_NOTIFY = (
    '{"class":"Notify","args":[{"user_id":7,"tags":["a","é"]},null,1.5],"id":"j-1"}'
).encode()


def ruby_enqueue(client: Any, queue: str, raw: bytes, ns: str = "resque") -> None:
    """Resque.enqueue as Ruby Resque writes it, command for command."""
    client.sadd(f"{ns}:queues", queue)
    client.rpush(f"{ns}:queue:{queue}", raw)


def failures(client: Any, ns: str = "resque") -> list[dict[str, Any]]:
    """``Resque::Failure::Redis.all``: every record of ``<ns>:failed``, decoded."""
    return [json.loads(raw) for raw in client.lrange(f"{ns}:failed", 0, -1)]


def test_a_job_enqueued_by_ruby_resque_runs_with_its_args(rclient: Any, redis_url: str) -> None:
    """The payload Ruby writes is decoded as Resque does: class, then args as positionals."""
    ruby_enqueue(rclient, "archive", RUBY_ARCHIVE)
    ruby_enqueue(rclient, "archive", RUBY_NOTIFY)
    seen: list[tuple[Any, ...]] = []
    worker = ResqueWorker(redis_url, "archive", concurrency=1, interval=0.05)
    worker.register("Archive", lambda *args: seen.append(args))
    worker.register("Notify", lambda *args: seen.append(args))
    worker.run(burst=True, handle_signals=False)
    assert seen == [(35, "tar"), ({"user_id": 7, "tags": ["a", "é"]}, None, 1.5)]
    assert int(rclient.get("resque:stat:processed")) == 2
    assert rclient.llen("resque:queue:archive") == 0


def test_enqueue_writes_exactly_what_ruby_resque_writes(rclient: Any, redis_url: str) -> None:
    """Byte for byte the payload of Resque.enqueue, and the queue name in resque:queues."""
    raw = enqueue(redis_url, "archive", "Archive", 35, "tar")
    assert raw.encode() == RUBY_ARCHIVE
    assert rclient.lrange("resque:queue:archive", 0, -1) == [RUBY_ARCHIVE]
    assert rclient.smembers("resque:queues") == {b"archive"}
    enqueue(rclient, "archive", "Notify", {"user_id": 7, "tags": ["a", "é"]}, None, 1.5)
    assert rclient.lindex("resque:queue:archive", 1) == RUBY_NOTIFY.replace(b',"id":"j-1"', b"")


def test_failures_are_written_as_resques_failure_backend_reads_them(
    rclient: Any, redis_url: str
) -> None:
    """A raising job: a record with Resque's keys in Resque's order, the payload kept whole."""
    ruby_enqueue(rclient, "mail", RUBY_NOTIFY)
    worker = ResqueWorker(redis_url, "mail", concurrency=1, interval=0.05)
    worker.register("Notify", resque_jobs.fail)
    worker.run(burst=True, handle_signals=False)
    [record] = failures(rclient)
    assert list(record) == FAILURE_KEYS
    assert record["payload"] == json.loads(RUBY_NOTIFY)  # extra key "id" kept
    assert record["exception"] == "TypeError"  # fail() takes one argument, got three
    assert "positional argument" in record["error"]
    assert isinstance(record["backtrace"], list)
    assert record["backtrace"]
    assert record["worker"] in worker.worker_ids
    assert record["queue"] == "mail"
    assert record["failed_at"].endswith(" UTC")
    assert record["failed_at"][4] == "/"
    assert int(rclient.get("resque:stat:failed")) == 1
    assert int(rclient.get("resque:stat:processed")) == 1  # Resque counts failures as processed


def test_an_unknown_class_fails_into_failed_and_is_never_dropped(
    rclient: Any, redis_url: str
) -> None:
    ruby_enqueue(rclient, "archive", RUBY_ARCHIVE)
    worker = ResqueWorker(redis_url, "archive", concurrency=2, interval=0.05)
    worker.register("Other", resque_jobs.add)
    worker.run(burst=True, handle_signals=False)
    [record] = failures(rclient)
    assert record["exception"] == "UnknownJobClass"
    assert "'Archive'" in record["error"]
    assert "register" in record["error"]
    assert record["payload"] == {"class": "Archive", "args": [35, "tar"]}
    stats = worker.stats()
    assert (stats.unknown_class, stats.failed, stats.submitted) == (1, 1, 1)


def test_a_payload_that_is_not_json_fails_with_its_raw_text(rclient: Any, redis_url: str) -> None:
    ruby_enqueue(rclient, "q", b"not json{")
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.05)
    worker.run(burst=True, handle_signals=False)
    [record] = failures(rclient)
    assert (record["exception"], record["payload"]) == ("PayloadError", "not json{")


def test_while_working_the_worker_key_holds_the_job_as_resque_web_reads_it(
    rclient: Any, redis_url: str, running: Callable[[ResqueWorker], threading.Thread]
) -> None:
    """Registration ``host:pid-N:queues``, ``worker:<id>`` = {queue, run_at, payload}."""
    release = threading.Event()
    started = threading.Event()

    def job(*args: Any) -> None:
        started.set()
        release.wait(PROMPT)

    worker = ResqueWorker(redis_url, "archive,low", concurrency=2, interval=0.05)
    worker.register("Archive", job)
    ruby_enqueue(rclient, "archive", RUBY_ARCHIVE)
    running(worker)
    assert started.wait(PROMPT)
    members = {m.decode() for m in rclient.smembers("resque:workers")}
    assert members == set(worker.worker_ids)
    host, pid_slot, queues = worker.worker_ids[0].split(":")
    assert (host, queues) == (socket.gethostname(), "archive,low")
    assert pid_slot.split("-")[0].isdigit()
    busy = [w for w in worker.worker_ids if rclient.get(f"resque:worker:{w}") is not None]
    [busy_id] = busy
    info = json.loads(rclient.get(f"resque:worker:{busy_id}"))
    assert list(info) == ["queue", "run_at", "payload"]
    assert info["queue"] == "archive"
    assert info["payload"] == json.loads(RUBY_ARCHIVE)
    assert info["run_at"].endswith("Z")
    assert rclient.get(f"resque:worker:{busy_id}:started") is not None
    assert rclient.hget("resque:workers:heartbeat", busy_id) is not None
    release.set()
    eventually(lambda: worker.stats().succeeded == 1, "the job finished")
    eventually(lambda: rclient.get(f"resque:worker:{busy_id}") is None, "worker key cleared")


def test_after_run_returns_the_registrations_are_gone(rclient: Any, redis_url: str) -> None:
    worker = ResqueWorker(redis_url, "q", concurrency=3, interval=0.05)
    worker.run(burst=True, handle_signals=False)
    assert rclient.smembers("resque:workers") == set()
    assert rclient.hgetall("resque:workers:heartbeat") == {}
    assert rclient.keys("resque:worker:*") == []


def test_queues_are_polled_in_priority_order(rclient: Any, redis_url: str) -> None:
    """Strict order: every job of the first queue before any job of the second."""
    for i in range(3):
        enqueue(rclient, "low", "Rec", f"low{i}")
        enqueue(rclient, "high", "Rec", f"high{i}")
    order: list[str] = []
    worker = ResqueWorker(redis_url, ["high", "low"], concurrency=1, interval=0.05)
    worker.register("Rec", order.append)
    worker.run(burst=True, handle_signals=False)
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"]


def test_weighted_queues_serve_every_queue(rclient: Any, redis_url: str) -> None:
    """Weighted order: the lighter queue is served while the heavier still has jobs."""
    for i in range(40):
        enqueue(rclient, "high", "Rec", f"high{i}")
        enqueue(rclient, "low", "Rec", f"low{i}")
    order: list[str] = []
    worker = ResqueWorker(redis_url, "high=3,low=1", concurrency=1, interval=0.05)
    worker.register("Rec", order.append)
    worker.run(burst=True, handle_signals=False)
    first_half = order[:40]
    assert len(order) == 80
    assert 0 < sum(x.startswith("low") for x in first_half) < 20


def test_a_namespace_prefixes_every_key(rclient: Any, redis_url: str) -> None:
    ruby_enqueue(rclient, "q", RUBY_ARCHIVE, ns="app")
    ruby_enqueue(rclient, "q", RUBY_ARCHIVE)  # resque:, not ours
    worker = ResqueWorker(redis_url, "q", namespace="app:", concurrency=1, interval=0.05)
    worker.register("Archive", resque_jobs.add)
    worker.run(burst=True, handle_signals=False)
    assert rclient.llen("resque:queue:q") == 1
    assert int(rclient.get("app:stat:failed")) == 1  # add(35, "tar") raised
    assert failures(rclient, "app")[0]["exception"] == "TypeError"


def test_pause_all_workers_is_honoured(
    rclient: Any, redis_url: str, running: Callable[[ResqueWorker], threading.Thread]
) -> None:
    """``resque:pause-all-workers = "true"`` stops fetching until it is cleared."""
    rclient.set("resque:pause-all-workers", "true")
    done = threading.Event()
    enqueue(rclient, "q", "Job")
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.02)
    worker.register("Job", done.set)
    running(worker)
    eventually(lambda: worker.stats().paused and worker.stats().polls >= 3, "paused polls")
    assert rclient.llen("resque:queue:q") == 1
    rclient.delete("resque:pause-all-workers")
    assert done.wait(PROMPT)


def test_stats_use_the_worker_pool_vocabulary(rclient: Any, redis_url: str) -> None:
    for i in range(5):
        enqueue(rclient, "q", "Add", i, 1)
    enqueue(rclient, "q", "Fail", "boom")
    worker = ResqueWorker(redis_url, "q", concurrency=4, interval=0.05)
    worker.register("Add", resque_jobs.add)
    worker.register("Fail", resque_jobs.fail)
    worker.run(burst=True, handle_signals=False)
    stats = worker.stats()
    assert isinstance(stats, WorkerPoolStats)
    assert isinstance(stats, ResqueWorkerStats)
    assert (stats.submitted, stats.succeeded, stats.failed) == (6, 5, 1)
    assert stats.submitted == stats.completed + stats.cancelled
    assert (stats.max_workers, stats.running, stats.closed) == (4, 0, True)
    assert "ResqueWorker" in repr(worker)
    assert "5 ok" in repr(worker)


def test_coroutine_handlers_run_on_an_async_worker_pool(rclient: Any, redis_url: str) -> None:
    seen: list[int] = []

    async def job(n: int) -> None:
        await asyncio.sleep(0.001)
        seen.append(n)

    for i in range(20):
        enqueue(rclient, "q", "Job", i)
    worker = ResqueWorker(redis_url, "q", mode="asyncio", concurrency=8, interval=0.05)
    worker.register("Job", job)
    worker.run(burst=True, handle_signals=False)
    assert sorted(seen) == list(range(20))
    assert worker.stats().succeeded == 20


def test_async_job_timeout_cancels_the_coroutine_and_fails_the_job(
    rclient: Any, redis_url: str
) -> None:
    async def slow() -> None:
        await asyncio.sleep(PROMPT)

    enqueue(rclient, "q", "Slow")
    worker = ResqueWorker(redis_url, "q", mode="asyncio", job_timeout=0.05, interval=0.05)
    worker.register("Slow", slow)
    worker.run(burst=True, handle_signals=False)
    [record] = failures(rclient)
    assert record["exception"] == "poolkit.TaskTimeout"
    assert "job_timeout=0.05" in record["error"]
    assert worker.stats().timed_out == 1


def test_process_handlers_run_in_worker_processes(rclient: Any, redis_url: str) -> None:
    for i in range(6):
        enqueue(rclient, "q", "Add", i, i)
    enqueue(rclient, "q", "Fail", "in a child")
    worker = ResqueWorker(redis_url, "q", mode="processes", concurrency=2, interval=0.05)
    worker.register("Add", resque_jobs.add)
    worker.register("Fail", resque_jobs.fail)
    worker.run(burst=True, handle_signals=False)
    stats = worker.stats()
    assert (stats.succeeded, stats.failed) == (6, 1)
    [record] = failures(rclient)
    assert record["exception"] == "ValueError"
    assert record["error"] == "in a child"
    assert any("resque_jobs.py" in line for line in record["backtrace"])  # the remote frame


def test_process_job_timeout_kills_the_job_and_the_worker_goes_on(
    rclient: Any, redis_url: str
) -> None:
    enqueue(rclient, "q", "Sleep", 30)
    enqueue(rclient, "q", "Add", 1, 2)
    worker = ResqueWorker(
        redis_url, "q", mode="processes", concurrency=1, job_timeout=0.5, interval=0.05
    )
    worker.register("Sleep", resque_jobs.sleep)
    worker.register("Add", resque_jobs.add)
    worker.run(burst=True, handle_signals=False)
    [record] = failures(rclient)
    assert record["exception"] == "poolkit.TaskTimeout"
    stats = worker.stats()
    assert (stats.timed_out, stats.succeeded, stats.failed) == (1, 1, 1)


def test_stop_lets_running_jobs_finish_within_grace(
    rclient: Any, redis_url: str, running: Callable[[ResqueWorker], threading.Thread]
) -> None:
    release = threading.Event()
    started = threading.Event()

    def job() -> None:
        started.set()
        release.wait(PROMPT)

    enqueue(rclient, "q", "Job")
    enqueue(rclient, "q", "Job")
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.05, grace=PROMPT)
    worker.register("Job", job)
    thread = running(worker)
    assert started.wait(PROMPT)
    worker.stop()
    assert thread.is_alive()  # waiting for the running job
    release.set()
    thread.join(PROMPT)
    stats = worker.stats()
    assert (stats.succeeded, stats.cancelled) == (1, 0)
    assert rclient.llen("resque:queue:q") == 1  # the second job was never taken
    assert rclient.smembers("resque:workers") == set()


def test_stop_past_grace_puts_the_running_job_back_at_the_head(
    rclient: Any, redis_url: str, running: Callable[[ResqueWorker], threading.Thread]
) -> None:
    release = threading.Event()
    started = threading.Event()

    def job(n: int) -> None:
        started.set()
        release.wait(PROMPT)

    enqueue(rclient, "q", "Job", 1)
    enqueue(rclient, "q", "Job", 2)
    worker = ResqueWorker(redis_url, "q", concurrency=1, interval=0.05, grace=0.05)
    worker.register("Job", job)
    thread = running(worker)
    assert started.wait(PROMPT)
    worker.stop()
    thread.join(PROMPT)
    release.set()
    assert rclient.lrange("resque:queue:q", 0, -1) == [
        b'{"class":"Job","args":[1]}',
        b'{"class":"Job","args":[2]}',
    ]
    stats = worker.stats()
    assert (stats.cancelled, stats.succeeded, stats.submitted) == (1, 0, 1)
    assert rclient.keys("resque:worker:*") == []


def test_stop_past_grace_kills_a_process_job_and_requeues_it(
    rclient: Any, redis_url: str, running: Callable[[ResqueWorker], threading.Thread], tmp_path: Any
) -> None:
    marker = tmp_path / "started"
    enqueue(rclient, "q", "Block", str(marker), 30)
    worker = ResqueWorker(redis_url, "q", mode="processes", concurrency=1, interval=0.05, grace=0)
    worker.register("Block", resque_jobs.mark_then_block)
    thread = running(worker)
    eventually(marker.exists, "the job started in a worker process")
    worker.stop()
    thread.join(PROMPT)
    assert not thread.is_alive()
    assert rclient.llen("resque:queue:q") == 1
    assert worker.stats().cancelled == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"queues": ""}, ValueError, "queue"),
        ({"queues": "*"}, ValueError, "globs"),
        ({"queues": "a,a"}, ValueError, "more than once"),
        ({"queues": "a=0"}, ValueError, "weight of 'a'"),
        ({"queues": 3}, TypeError, "queues must be"),
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": 2.5}, TypeError, "concurrency"),
        ({"mode": "fibers"}, ValueError, "mode"),
        ({"interval": 0}, ValueError, "interval"),
        ({"grace": -1}, ValueError, "grace"),
        ({"job_timeout": 1.0}, ValueError, "job_timeout"),
        ({"namespace": ""}, ValueError, "namespace"),
        ({"pool_options": {"max_workers": 3}}, ValueError, "concurrency"),
        ({"redis": 42}, TypeError, "redis must be"),
    ],
)
def test_bad_arguments_name_the_parameter(
    redis_url: str, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    args: dict[str, Any] = {"redis": redis_url, "queues": "q", **kwargs}
    with pytest.raises(error, match=words):
        ResqueWorker(args.pop("redis"), args.pop("queues"), **args)


def test_register_and_enqueue_refuse_bad_input(redis_url: str) -> None:
    worker = ResqueWorker(redis_url, "q")

    async def coro() -> None:
        pass

    with pytest.raises(TypeError, match="fn must be callable"):
        worker.register("X", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mode='asyncio'"):
        worker.register("X", coro)
    with pytest.raises(ValueError, match="class_name"):
        worker.register("", resque_jobs.add)
    with pytest.raises(TypeError, match="JSON"):
        enqueue(redis_url, "q", "X", object())
    with pytest.raises(ValueError, match="queue name"):
        enqueue(redis_url, "a,b", "X")
    with pytest.raises(TypeError, match="burst"):
        worker.run(burst=1)  # type: ignore[arg-type]


def test_run_twice_is_refused(redis_url: str) -> None:
    from poolkit import PoolClosed

    worker = ResqueWorker(redis_url, "q", interval=0.05)
    worker.run(burst=True, handle_signals=False)
    with pytest.raises(PoolClosed, match="already ran"):
        worker.run(burst=True, handle_signals=False)
