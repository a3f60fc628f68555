"""ProcessPool's records of tasks and worker processes, and how a worker is started.

A :class:`Worker` is one process plus the parent's end of its own pipe; the
parent always knows which :class:`Task` it runs (``Worker.task``), which is
what makes per-task timeouts, cancellation and crash attribution exact.
"""

from __future__ import annotations

import enum
import multiprocessing
import multiprocessing.context
import os
import runpy
import sys
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from poolkit.processes import _child as child

__all__ = ["CHILD_PATH", "Sink", "State", "Task", "Worker", "resolve_context", "start_worker"]

# The child loop is run from its file under spawn/forkserver (see _child).
CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")


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


def _preload_poolkit(ctx: multiprocessing.context.BaseContext) -> None:
    """Have the forkserver import poolkit before it forks any worker.

    Under spawn and forkserver each worker imports the parent's ``__main__``
    (so functions defined there unpickle), and a script that makes a pool
    imports poolkit. Python 3.11's forkserver does not preload ``__main__``
    despite its default preload list (the server is started without the main
    path), so without this every worker would import poolkit anew (~140 ms
    measured on the 2-core VM); with it, the import is a ``sys.modules`` hit.
    Only done when the pool picks the context by name (a context object
    passed in is left alone), and only before the server starts
    (``set_forkserver_preload`` has no effect afterwards).
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is not None:
        return
    modules = list(getattr(server, "_preload_modules", ["__main__"]))
    if "poolkit" not in modules:
        ctx.set_forkserver_preload([*modules, "poolkit"])


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
            _preload_poolkit(ctx)
        return ctx
    if isinstance(mp_context, multiprocessing.context.BaseContext):
        return mp_context
    raise TypeError(
        "mp_context must be None, a start method name ('spawn', 'forkserver', 'fork') "
        f"or a multiprocessing context, got {type(mp_context).__name__}"
    )


def start_worker(ctx: multiprocessing.context.BaseContext, config: bytes, name: str) -> Worker:
    """Start one worker process and return its record (state STARTING).

    Under ``fork`` the child calls the already imported loop; otherwise it
    runs the loop's file with ``runpy`` so that it never imports poolkit.

    Raises:
        OSError: the process could not be started.
    """
    parent_end, child_end = ctx.Pipe(duplex=True)
    process: multiprocessing.process.BaseProcess
    if ctx.get_start_method() == "fork":
        process = ctx.Process(  # type: ignore[attr-defined]
            target=child.main, args=(child_end, config), name=name
        )
    else:
        process = ctx.Process(  # type: ignore[attr-defined]
            target=runpy.run_path,
            args=(CHILD_PATH,),
            kwargs={
                "init_globals": {"POOLKIT_ARGS": (child_end, config)},
                "run_name": child.RUN_NAME,
            },
            name=name,
        )
    try:
        process.start()
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    return Worker(process, parent_end)
