"""Every Redis operation of a Resque worker, and why each is atomic.

Reliable fetch (the worker keeps nothing Redis does not also hold):

1. *Fetch* is one Lua script per handler slot: it pops the first job of the
   first non-empty queue (in the order the caller computed), pushes its raw
   bytes on the slot's processing list and writes ``<ns>:worker:<id>``, all
   at once. A worker killed at any point either took nothing or left the job
   in its processing list, with the queue it came from beside it.
2. *Ack* (``MULTI``): delete the processing list and the worker key, count
   the job processed (and failed, with the failure record pushed on
   ``<ns>:failed``), as Resque's ``done_working`` and ``Job#fail`` do.
3. *Prune*: a registration whose process is gone (same host, pid dead or
   reused by us) or whose heartbeat is older than ``prune_interval`` is
   removed, and its job is requeued at the head of its queue (raw bytes,
   under ``WATCH``, so a worker that heartbeats meanwhile is left alone).
   A job of a dead foreign worker (Ruby Resque, goworker) exists only in
   its worker key: it is failed into ``<ns>:failed``, as Resque does.

Acks and fetches of one loop turn go in one pipeline: one round trip moves
every finished job out and every free slot's next job in.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from poolkit.integrations.resque._wire import (
    Keys,
    failure_record,
    iso8601,
    parse_worker_id,
    started_at,
    text,
)

if TYPE_CHECKING:
    import redis

__all__ = ["Ack", "Fetched", "PruneReport", "Store", "connect", "pid_alive"]

_LOG = logging.getLogger("poolkit.integrations.resque")

# KEYS: processing list, worker key, pause key, then the queues to try in order.
# ARGV: run_at, then each queue's name already JSON-encoded (so Lua needs no
# cjson, which would re-encode the job: it turns [] into {}).
# Returns nil (nothing), -1 (paused), or {index of the queue (1-based), job}.
_FETCH = """
local pause = redis.call('GET', KEYS[3])
if pause and string.lower(pause) == 'true' then return -1 end
for i = 4, #KEYS do
  local job = redis.call('LPOP', KEYS[i])
  if job then
    redis.call('RPUSH', KEYS[1], job)
    redis.call('SET', KEYS[2], '{"queue":' .. ARGV[i - 2] .. ',"run_at":"' .. ARGV[1]
      .. '","payload":' .. job .. '}')
    return {i - 3, job}
  end
end
return nil
"""

# Resque's heartbeat interval (60 s) and prune interval (5 heartbeats).
HEARTBEAT_INTERVAL = 60.0
PRUNE_INTERVAL = 300.0
# How long the prune lock is held at most (Resque: the heartbeat interval).
_PRUNE_LOCK_SECONDS = 60


def connect(redis_or_url: object) -> redis.Redis:
    """A ``redis.Redis`` from a URL, or the given client.

    Raises:
        ImportError: redis-py is not installed (names the extra).
        TypeError: neither a URL nor a ``redis.Redis``.
    """
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "poolkit.integrations.resque needs redis-py: pip install 'poolkit[resque]'"
        ) from exc
    if isinstance(redis_or_url, str):
        return redis.Redis.from_url(redis_or_url)
    if isinstance(redis_or_url, redis.Redis):
        return redis_or_url
    raise TypeError(
        "redis must be a URL ('redis://host:6379/0') or a redis.Redis, got "
        f"{type(redis_or_url).__name__}"
    )


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (comm) S ...": the state follows the last ')'.
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Ack:
    """A finished job to report: its slot, and its failure record if it failed."""

    slot_id: str
    failure: str | None = None


@dataclass(frozen=True)
class Fetched:
    """What one fetch gave a slot: a job (raw bytes and its queue), or nothing."""

    slot_id: str
    queue: str | None = None
    raw: bytes | str | None = None
    paused: bool = False


@dataclass(frozen=True)
class PruneReport:
    """What a prune did: registrations removed, jobs requeued, jobs failed."""

    pruned: int = 0
    requeued: int = 0
    failed: int = 0


class Store:
    """The Redis side of one worker (one namespace)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._fetch = client.register_script(_FETCH)

    # -- registration -------------------------------------------------------

    def register(self, ids: Sequence[str]) -> None:
        """Register each slot as Resque's ``register_worker`` does, with a heartbeat."""
        now = self.server_time()
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(self.keys.workers, *ids)
        for worker_id in ids:
            pipe.set(self.keys.started(worker_id), started_at(now))
            pipe.hset(self.keys.heartbeats, worker_id, iso8601(now))
        pipe.execute()

    def unregister(self, ids: Sequence[str]) -> None:
        """Remove the registrations and their per-worker keys (``unregister_worker``)."""
        pipe = self.client.pipeline(transaction=True)
        for worker_id in ids:
            pipe.delete(*self._worker_keys(worker_id))
        pipe.srem(self.keys.workers, *ids)
        pipe.hdel(self.keys.heartbeats, *ids)
        pipe.execute()

    def heartbeat(self, ids: Sequence[str]) -> None:
        """Write each slot's heartbeat with the server's time, as Resque does."""
        stamp = iso8601(self.server_time())
        self.client.hset(self.keys.heartbeats, mapping=dict.fromkeys(ids, stamp))

    def server_time(self) -> datetime:
        """Redis's clock: heartbeats are compared across hosts with it."""
        seconds, micros = self.client.time()
        return datetime.fromtimestamp(seconds + micros / 1e6, tz=UTC)

    def _worker_keys(self, worker_id: str) -> list[str]:
        k = self.keys
        return [
            k.worker(worker_id),
            k.started(worker_id),
            k.processing(worker_id),
            k.stat("processed", worker_id),
            k.stat("failed", worker_id),
        ]

    # -- the work loop ------------------------------------------------------

    def exchange(
        self, acks: Sequence[Ack], fetches: Sequence[tuple[str, Sequence[str]]]
    ) -> list[Fetched]:
        """Ack finished jobs and fetch one job per ``(slot_id, queue order)``; one round trip."""
        if not acks and not fetches:
            return []
        # One MULTI block: each ack is atomic (nothing counted twice or lost
        # if the connection drops), and the fetch scripts are atomic anyway.
        pipe = self.client.pipeline(transaction=True)
        for ack in acks:
            self._ack(pipe, ack)
        run_at = iso8601(datetime.now(UTC))
        for slot_id, order in fetches:
            self._fetch(
                keys=[
                    self.keys.processing(slot_id),
                    self.keys.worker(slot_id),
                    self.keys.pause,
                    *(self.keys.queue(q) for q in order),
                ],
                args=[run_at, *(json.dumps(q) for q in order)],
                client=pipe,
            )
        replies = pipe.execute()[-len(fetches) :] if fetches else []
        out: list[Fetched] = []
        for (slot_id, order), reply in zip(fetches, replies, strict=True):
            if reply == -1:
                out.append(Fetched(slot_id, paused=True))
            elif reply:
                index, raw = reply
                out.append(Fetched(slot_id, order[int(index) - 1], raw))
            else:
                out.append(Fetched(slot_id))
        return out

    def ack(self, acks: Sequence[Ack]) -> None:
        """Report finished jobs without fetching."""
        if acks:
            pipe = self.client.pipeline(transaction=True)
            for ack in acks:
                self._ack(pipe, ack)
            pipe.execute()

    def _ack(self, pipe: Any, ack: Ack) -> None:
        k = self.keys
        pipe.delete(k.processing(ack.slot_id), k.worker(ack.slot_id))
        pipe.incr(k.stat("processed"))
        pipe.incr(k.stat("processed", ack.slot_id))
        if ack.failure is not None:
            pipe.rpush(k.failed, ack.failure)
            pipe.incr(k.stat("failed"))
            pipe.incr(k.stat("failed", ack.slot_id))

    def requeue(self, slot_id: str, queue: str, raw: bytes | str) -> None:
        """Put a job back at the head of its queue and clear the slot (stop, no grace left)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.keys.queue(queue), raw)
        pipe.sadd(self.keys.queues, queue)
        pipe.delete(self.keys.processing(slot_id), self.keys.worker(slot_id))
        pipe.execute()

    def fail_now(self, slot_id: str, failure: str) -> None:
        """Ack one failed job at once (a job that never reached a handler)."""
        self.ack([Ack(slot_id, failure)])

    # -- pruning ------------------------------------------------------------

    def prune(
        self,
        *,
        own: Callable[[str], bool],
        host: str,
        prune_interval: float,
        alive: Callable[[int], bool] = pid_alive,
    ) -> PruneReport:
        """Remove dead registrations; requeue or fail the job each was working on.

        A registration is dead when its heartbeat is older than
        ``prune_interval`` (any host), or when it is on this host and its pid
        is not running, or is this process's pid under an id this process
        does not own (a restarted container reuses its pid). ``own(id)`` says
        whether this process uses ``id``; it is asked after the registrations
        are read, so a worker of this process that registered meanwhile is
        known. Only one worker of the namespace prunes at a time (Resque's
        prune lock).
        """
        if not self.client.set(self.keys.prune_lock, host, nx=True, ex=_PRUNE_LOCK_SECONDS):
            return PruneReport()
        try:
            now = self.server_time()
            heartbeats = {
                text(k): text(v) for k, v in self.client.hgetall(self.keys.heartbeats).items()
            }
            report = PruneReport()
            for member in self.client.smembers(self.keys.workers):
                worker_id = text(member)
                if own(worker_id):
                    continue
                beat = heartbeats.get(worker_id)
                if self._is_dead(worker_id, beat, now, host, prune_interval, alive):
                    report = _add(report, self._prune_one(worker_id, beat))
            return report
        finally:
            self.client.delete(self.keys.prune_lock)

    @staticmethod
    def _is_dead(
        worker_id: str,
        beat: str | None,
        now: datetime,
        host: str,
        prune_interval: float,
        alive: Callable[[int], bool],
    ) -> bool:
        worker_host, pid, _queues = parse_worker_id(worker_id)
        if worker_host == host and pid is not None and (pid == os.getpid() or not alive(pid)):
            return True
        if beat is None:
            return False  # a client without heartbeats: only the pid check can tell
        try:
            last = datetime.fromisoformat(beat.replace("Z", "+00:00"))
        except ValueError:
            return False
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return (now - last).total_seconds() > prune_interval

    def _prune_one(self, worker_id: str, beat: str | None) -> PruneReport:
        import redis

        k = self.keys
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(k.heartbeats, k.worker(worker_id), k.processing(worker_id))  # type: ignore[no-untyped-call]
                now_beat = pipe.hget(k.heartbeats, worker_id)
                if (None if now_beat is None else text(now_beat)) != beat:
                    return PruneReport()  # it heartbeat since we looked: alive
                info_raw = pipe.get(k.worker(worker_id))
                raw = pipe.lindex(k.processing(worker_id), 0)
                info = _json_object(info_raw)
                pipe.multi()
                requeued = failed = 0
                queue = info.get("queue") if info is not None else None
                if raw is not None and isinstance(queue, str):
                    pipe.lpush(k.queue(queue), raw)
                    pipe.sadd(k.queues, queue)
                    requeued = 1
                elif info is not None and "payload" in info:
                    pipe.rpush(k.failed, _dirty_exit(worker_id, info))
                    pipe.incr(k.stat("failed"))
                    failed = 1
                pipe.delete(*self._worker_keys(worker_id))
                pipe.srem(k.workers, worker_id)
                pipe.hdel(k.heartbeats, worker_id)
                pipe.execute()
            except redis.WatchError:
                return PruneReport()  # changed under us: the next prune looks again
        _LOG.warning(
            "pruned dead Resque worker %s (%s)",
            worker_id,
            "job requeued" if requeued else ("job failed" if failed else "idle"),
        )
        return PruneReport(1, requeued, failed)

    # -- enqueue ------------------------------------------------------------

    def push(self, queue: str, raw: str) -> None:
        """``Resque.push``: SADD the queue name, RPUSH the job, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), raw)
        pipe.execute()


def _add(a: PruneReport, b: PruneReport) -> PruneReport:
    return PruneReport(a.pruned + b.pruned, a.requeued + b.requeued, a.failed + b.failed)


def _json_object(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _dirty_exit(worker_id: str, info: dict[str, Any]) -> str:
    payload = info.get("payload")
    job_class = payload.get("class") if isinstance(payload, dict) else None
    return failure_record(
        payload=payload,
        exception="DirtyExit",
        error=f"worker {worker_id} died while working on this {job_class} job "
        "(its registration was pruned as dead)",
        backtrace=[],
        worker=worker_id,
        queue=str(info.get("queue", "")),
        when=datetime.now(UTC),
    )
