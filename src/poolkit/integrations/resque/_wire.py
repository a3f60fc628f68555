"""Resque's wire format: key names, job and failure JSON, timestamps, worker ids.

Pure data, no I/O: everything a Resque client in another language reads or
writes is built here, so the format lives in one place and is tested on its
own. Sources: resque/resque ``lib/resque/data_store.rb``, ``worker.rb``,
``job.rb``, ``failure/redis.rb``; goworker's ``workers.go`` and ``failure.go``.

* A job is the JSON object ``{"class": "Name", "args": [...]}``, compact, as
  Ruby's ``JSON.generate`` writes it; extra keys a client adds are kept,
  because a worker never re-encodes a job it moves (requeues and reliable
  fetch move the raw bytes).
* A failure is ``{"failed_at", "payload", "exception", "error", "backtrace",
  "worker", "queue"}`` in that order, pushed on ``<ns>:failed``.
* A worker id is ``host:pid:queues``; Resque's ``Worker.find`` splits it on
  ``:`` into three parts. One poolkit process registers one id per handler
  slot, ``host:pid-N:queues``, as goworker does, so every running job shows
  in ``<ns>:worker:<id>``.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Job",
    "Keys",
    "PayloadError",
    "decode_job",
    "encode_job",
    "failed_at",
    "failure_record",
    "iso8601",
    "parse_worker_id",
    "started_at",
    "text",
]

DEFAULT_NAMESPACE = "resque"


def text(value: bytes | str) -> str:
    """A Redis reply as text (clients with or without ``decode_responses``)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class _Key:
    """A fixed key of a namespace, ``<ns>:<suffix>``, read as an attribute of :class:`Keys`."""

    def __init__(self, suffix: str, doc: str) -> None:
        self.suffix = suffix
        self.__doc__ = doc

    def __get__(self, keys: Keys | None, owner: type[Keys]) -> str:
        # On the class (help(), documentation tools): the key's pattern.
        return f"{'<ns>' if keys is None else keys.ns}:{self.suffix}"


@dataclass(frozen=True)
class Keys:
    """Every key of one namespace, named as Resque names them.

    Attributes:
        ns: the namespace without its trailing colon (``"resque"``).
    """

    ns: str

    # The namespace's fixed keys (the others take a queue name or a worker id).
    queues = _Key("queues", "SET of known queue names.")
    workers = _Key("workers", "SET of registered worker ids.")
    heartbeats = _Key(
        "workers:heartbeat", "HASH worker id → ISO 8601 time of its last heartbeat (Resque ≥ 1.26)."
    )
    prune_lock = _Key(
        "pruning_dead_workers_in_progress",
        "Taken (SET NX EX) by the one worker pruning dead ones (Resque ≥ 2.0).",
    )
    pause = _Key("pause-all-workers", '``"true"`` pauses every worker of the namespace.')
    failed = _Key(
        "failed", "LIST of failure records (Resque's default ``Failure::Redis`` backend)."
    )

    def queue(self, name: str) -> str:
        """LIST of the jobs waiting in queue ``name`` (RPUSH, LPOP: FIFO)."""
        return f"{self.ns}:queue:{name}"

    def worker(self, worker_id: str) -> str:
        """STRING: the job a worker is working on (absent when idle)."""
        return f"{self.ns}:worker:{worker_id}"

    def started(self, worker_id: str) -> str:
        """STRING: when the worker started (Ruby's ``Time#to_s``)."""
        return f"{self.ns}:worker:{worker_id}:started"

    def processing(self, worker_id: str) -> str:
        """LIST holding the raw bytes of the job a poolkit worker slot runs.

        Not a Resque key: reliable fetch moves the job here atomically so
        that a worker killed mid-job loses nothing; Resque clients ignore it.
        """
        return f"{self.ns}:worker:{worker_id}:processing"

    def stat(self, name: str, worker_id: str | None = None) -> str:
        """Counter ``processed`` or ``failed``, global or of one worker."""
        suffix = "" if worker_id is None else f":{worker_id}"
        return f"{self.ns}:stat:{name}{suffix}"


class PayloadError(ValueError):
    """A job taken from a queue is not a Resque job (bad JSON, no class, ...)."""


@dataclass(frozen=True)
class Job:
    """A decoded job.

    Attributes:
        class_name: the job class (``payload["class"]``).
        args: the positional arguments (``payload["args"]``; missing is ``[]``).
        payload: the whole decoded object, extra keys included.
    """

    class_name: str
    args: list[Any]
    payload: dict[str, Any]


def encode_job(class_name: str, args: list[Any] | tuple[Any, ...]) -> str:
    """The job JSON exactly as Ruby's ``Resque.push`` writes it.

    Keys in Ruby's order (``class``, then ``args``), no spaces, UTF-8 kept as
    is (``JSON.generate`` does not escape non-ASCII text).

    Raises:
        TypeError: an argument JSON cannot carry.
    """
    try:
        return json.dumps(
            {"class": class_name, "args": list(args)},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"args of a {class_name} job must be JSON values (str, int, float, bool, "
            f"None, list, dict): {exc}"
        ) from exc


def decode_job(raw: bytes | str) -> Job:
    """Decode a job taken from a queue.

    Raises:
        PayloadError: not a JSON object with a string ``class`` and a list
            ``args`` (a missing ``args`` is read as ``[]``, as Resque does).
    """
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"job is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"job must be a JSON object, got {type(payload).__name__}")
    class_name = payload.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise PayloadError(f"job has no class name: 'class' is {class_name!r}")
    args = payload.get("args", [])
    if args is None:
        args = []
    if not isinstance(args, list):
        raise PayloadError(f"job args must be a JSON array, got {type(args).__name__}")
    return Job(class_name, args, payload)


def iso8601(when: datetime) -> str:
    """``Time#utc.iso8601``: ``2024-01-02T03:04:05Z`` (``run_at``, heartbeats)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def started_at(when: datetime) -> str:
    """Ruby's ``Time#to_s`` in UTC: ``2024-01-02 03:04:05 +0000``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def failed_at(when: datetime) -> str:
    """Resque's failure time, ``%Y/%m/%d %H:%M:%S %Z``, in UTC."""
    return when.astimezone(UTC).strftime("%Y/%m/%d %H:%M:%S UTC")


def exception_name(exc: BaseException) -> str:
    """The exception's class as Resque shows it (``exception.class.to_s``)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def backtrace(exc: BaseException) -> list[str]:
    """The traceback as a list of lines, innermost frame last.

    A ProcessPool task's remote traceback travels as the ``__cause__`` of
    the exception, so the chain is included.
    """
    lines = "".join(traceback.format_exception(exc)).splitlines()
    return [line for line in lines if line.strip()]


def failure_record(
    *,
    payload: object,
    exception: str,
    error: str,
    backtrace: list[str] | None,
    worker: str,
    queue: str,
    when: datetime,
) -> str:
    """A failure as ``Resque::Failure::Redis#save`` writes it (same keys, same order)."""
    return json.dumps(
        {
            "failed_at": failed_at(when),
            "payload": payload,
            "exception": exception,
            "error": error,
            "backtrace": backtrace if backtrace is not None else [],
            "worker": worker,
            "queue": queue,
        },
        separators=(",", ":"),
        ensure_ascii=False,
        default=repr,
    )


def parse_worker_id(worker_id: str) -> tuple[str, int | None, str]:
    """``host:pid:queues`` → (host, pid or None, queues).

    goworker and poolkit write ``pid-N`` (a slot number) in the pid field;
    the pid is what comes before the dash. An id that does not parse gives
    ``None`` as its pid, so it is never judged by a pid check.
    """
    host, _, rest = worker_id.partition(":")
    pid_field, _, queues = rest.partition(":")
    head = pid_field.split("-", 1)[0]
    pid = int(head) if head.isdigit() else None
    return host, pid, queues
