"""ProcessPool's records of tasks and worker processes, and how a worker is started.

A :class:`Worker` is one process plus the parent's end of its own pipe; the
parent always knows which :class:`Task` it runs (``Worker.task``), which is
what makes per-task timeouts, cancellation and crash attribution exact.
"""

from __future__ import annotations

import enum
import multiprocessing
import multiprocessing.context
import sys
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from poolkit.processes import _child as child

__all__ = [
    "FORKSERVER_PRELOAD",
    "Sink",
    "State",
    "Task",
    "Worker",
    "resolve_context",
    "start_worker",
]

# What the forkserver imports once, before it forks any worker, when a pool
# picks the forkserver by name (a context object passed in is left alone).
# A worker starts in poolkit.processes._child, and when the parent runs a
# script it also imports that script (Python 3.11's forkserver does not
# preload it despite its default ["__main__"]), which imported this pool.
# Preloaded, both imports are sys.modules hits: a script's pool start to first
# result went from ~25 ms to ~9 ms on the 2-core VM (no change under -m).
FORKSERVER_PRELOAD = ["__main__", "poolkit.processes._pool"]


class State(enum.Enum):
    """Where a worker process is in its life."""

    STARTING = "starting"  # started, initializer not done (no READY yet)
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"  # sent STOP; exits after its finalizer
    DYING = "dying"  # killed by the pool; waiting to be reaped


class Sink(Protocol):
    """Where a ``map`` chunk's outcome goes (instead of a Future)."""

    @property
    def abandoned(self) -> bool:
        """Whether nobody wants the outcome any more (the chunk is skipped)."""

    def __call__(self, ok: bool, value: Any) -> None:
        """Take the outcome: results (``ok``) or an error / ``(partial, error)``."""


class Task:
    """One unit of work: its pickled message and where its outcome goes.

    Exactly one of ``future`` (``submit``), ``sink`` (a ``map`` chunk) is set,
    or neither (``go``: failures go to ``on_error``).
    """

    __slots__ = ("fn", "future", "payload", "sink", "timeout")

    def __init__(
        self,
        payload: bytes,
        fn: object,
        future: Future[Any] | None,
        timeout: float | None,
        sink: Sink | None = None,
    ) -> None:
        self.payload = payload
        self.fn = fn
        self.future = future
        self.timeout = timeout
        self.sink = sink


class Worker:
    """One worker process as the dispatcher sees it."""

    __slots__ = (
        "conn",
        "deadline",
        "done",
        "exited",
        "idle_since",
        "pid",
        "process",
        "sentinel",
        "state",
        "task",
    )

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid or 0
        self.sentinel: int = process.sentinel
        self.state = State.STARTING
        self.task: Task | None = None
        self.deadline: float | None = None
        self.done = 0
        self.idle_since = 0.0
        self.exited = False  # its sentinel fired: it takes no new task

    def __repr__(self) -> str:
        return f"<worker pid={self.pid} {self.state.value} tasks={self.done}>"


def _default_method() -> str:
    # forkserver is safe with threads (the parent is never forked) and
    # cheaper than spawn per worker; Python 3.14 makes it the Linux default.
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods and sys.platform != "darwin" else "spawn"


def resolve_context(mp_context: object) -> multiprocessing.context.BaseContext:
    """The multiprocessing context for ``mp_context`` (None, a method name, or a context).

    Raises:
        TypeError: not None, a str or a multiprocessing context.
        ValueError: an unknown start method name.
    """
    if mp_context is None or isinstance(mp_context, str):
        method = _default_method() if mp_context is None else mp_context
        methods = multiprocessing.get_all_start_methods()
        if method not in methods:
            raise ValueError(f"mp_context must be one of {methods}, got {method!r}")
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            # Public API; it takes effect only if the server is not running yet.
            ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        return ctx
    if isinstance(mp_context, multiprocessing.context.BaseContext):
        return mp_context
    raise TypeError(
        "mp_context must be None, a start method name ('spawn', 'forkserver', 'fork') "
        f"or a multiprocessing context, got {type(mp_context).__name__}"
    )


def start_worker(ctx: multiprocessing.context.BaseContext, config: bytes, name: str) -> Worker:
    """Start one worker process, running :func:`poolkit.processes._child.main`; return its record.

    The record's state is STARTING until the worker reports READY.

    Raises:
        OSError: the process could not be started.
    """
    parent_end, child_end = ctx.Pipe(duplex=True)
    process: multiprocessing.process.BaseProcess = ctx.Process(  # type: ignore[attr-defined]
        target=child.main, args=(child_end, config), name=name
    )
    try:
        process.start()
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    return Worker(process, parent_end)
