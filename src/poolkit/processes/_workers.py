"""ProcessPool's records of tasks and worker processes, and how a worker is started.

A :class:`Worker` is one process plus the parent's end of its own pipe; the
parent always knows which :class:`Task` it runs (``Worker.task``, the oldest
of ``Worker.tasks`` not answered yet) and which it holds behind it (the rest
of ``Worker.tasks``, pipelined), which is what makes per-task timeouts,
cancellation and crash attribution exact.

Under ``spawn`` and ``forkserver`` a new worker first re-imports the parent's
main module (multiprocessing's rule, so that functions defined there unpickle).
Two kinds of main break that, and :func:`start_worker` handles both:

* a main that is not a file (``python - < script.py`` names it ``<stdin>``):
  multiprocessing would try to run ``<stdin>`` as a path; the worker is
  started as for ``python -c`` or a notebook (no main to import; the
  functions of such a main travel by value, see ``_wire.dumps``);
* a script without the ``if __name__ == "__main__":`` guard: the worker's
  import of it runs the script's pool again. That nested start exits the
  worker at once with :data:`EXIT_UNGUARDED_MAIN`, which the parent turns
  into a one-line fix instead of a page of tracebacks from every worker.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import multiprocessing
import multiprocessing.context
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from poolkit.processes import _child as child

__all__ = [
    "EXIT_UNGUARDED_MAIN",
    "FORKSERVER_PRELOAD",
    "FRAME_OVERHEAD",
    "Sink",
    "State",
    "Task",
    "Worker",
    "exited_before_ready",
    "main_is_a_file",
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

# Bytes a message costs on the pipe beyond its own (the frame header).
FRAME_OVERHEAD = 8
# Held task bytes when a pipe's buffer size is unknown: a page, what any pipe holds.
_MIN_HELD_LIMIT = 4096

# Exit code of a would-be worker whose import of the parent's main module tried
# to start a ProcessPool (no `if __name__ == "__main__":` guard). Not 1 (an
# uncaught exception) nor 2 (a usage error), so the parent can tell it apart.
EXIT_UNGUARDED_MAIN = 87
# What to do about it, said once by the parent (PoolBroken) and by the worker.
UNGUARDED_MAIN_FIX = (
    'put the script\'s code under `if __name__ == "__main__":`, or pass mp_context="fork"'
)
# Serialises worker starts that hide a pseudo-file __main__.__file__ (see
# _main_file_hidden): two starts must not interleave their save and restore.
_MAIN_FILE_LOCK = threading.Lock()


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

    __slots__ = ("fn", "future", "payload", "queued_at", "sent", "sink", "timeout")

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
        # Given to a worker once already (its Future is RUNNING): a task
        # requeued from a killed worker's pipeline is not marked again.
        self.sent = False
        # For the pool's queue_wait (time.monotonic()); it starts when the
        # worker answers the task it held before it (see Dispatcher._on_reply).
        self.queued_at = time.monotonic()


class Worker:
    """One worker process as the dispatcher sees it."""

    __slots__ = (
        "conn",
        "deadline",
        "done",
        "draining",
        "exited",
        "fd",
        "held_bytes",
        "held_limit",
        "idle_since",
        "outbox",
        "pid",
        "process",
        "reader",
        "send_lock",
        "sentinel",
        "started",
        "state",
        "tasks",
    )

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn  # owns the descriptor ``fd``
        self.fd = conn.fileno()
        self.pid: int = process.pid or 0
        self.sentinel: int = process.sentinel
        self.state = State.STARTING
        # Given and not answered, in the order sent: the first runs, the
        # rest wait in the worker (pipelined). BUSY iff not empty.
        self.tasks: collections.deque[Task] = collections.deque()
        self.held_bytes = 0  # frame bytes of ``tasks``: what the child may not have read
        self.held_limit = held_limit(self.fd)
        self.outbox: list[bytes] = []  # messages assigned, not written yet (in order)
        self.send_lock = threading.Lock()  # writes to the pipe, in outbox order
        self.reader = child.FrameReader()
        self.deadline: float | None = None  # of tasks[0]
        self.started = 0.0  # when tasks[0] started, as the parent saw it
        self.done = 0
        self.draining = False  # over its memory cap: no new task, retired when empty
        self.idle_since = 0.0
        self.exited = False  # its sentinel fired: it takes no new task

    @property
    def task(self) -> Task | None:
        """The task this worker runs (None when it runs none)."""
        return self.tasks[0] if self.tasks else None

    def __repr__(self) -> str:
        return (
            f"<worker pid={self.pid} {self.state.value} tasks={self.done} held={len(self.tasks)}>"
        )


def held_limit(fd: int) -> int:
    """Bytes of held task messages the pipe ``fd`` surely buffers: a quarter of its socket buffers.

    A quarter leaves room for the kernel's accounting of each write. A pipe
    whose buffers cannot be read holds 4 KiB, what any pipe buffers.
    """
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return _MIN_HELD_LIMIT
    with sock:
        try:
            size = min(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            )
        except OSError:
            return _MIN_HELD_LIMIT
    return max(_MIN_HELD_LIMIT, size // 4)


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


def main_is_a_file() -> bool:
    """Whether ``__main__`` comes from a file a new interpreter can run.

    False for a REPL, ``python -c``, a notebook kernel (no ``__file__``) and a
    script read from standard input (``__file__`` is ``"<stdin>"``: CPython
    names pseudo-files in angle brackets).
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return isinstance(path, str) and path[:1] not in ("", "<")  # _wire inlines this rule


def _importing_main_to_become_a_worker() -> bool:
    """Whether this process is a new one still importing its parent's main module.

    multiprocessing runs that import (spawn, forkserver) under the name
    ``__mp_main__`` and makes it ``__main__`` only once it has finished, so
    while it runs the two differ. A pool started then is the script's own,
    run again because the script has no ``__main__`` guard.
    """
    importing = sys.modules.get("__mp_main__")
    return importing is not None and importing is not sys.modules.get("__main__")


def _exit_unguarded_main() -> None:
    """End this would-be worker: its parent reports the fix (see :data:`EXIT_UNGUARDED_MAIN`)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.write(
            "poolkit: a new process importing the main module to become a worker was asked "
            f"to start a ProcessPool, and stopped; {UNGUARDED_MAIN_FIX}\n"
        )
        sys.stderr.flush()
    os._exit(EXIT_UNGUARDED_MAIN)


def exited_before_ready(code: int | None) -> tuple[str, str | None]:
    """Why the pool breaks when a worker ended with ``code`` before READY, and the fix if known."""
    if code == EXIT_UNGUARDED_MAIN:
        return (
            "a worker process could not start: importing the main module started this pool "
            'again (the script has no `if __name__ == "__main__":` guard)',
            f"Fix: {UNGUARDED_MAIN_FIX}",
        )
    return f"a worker process exited with code {code} before it was ready", None


@contextlib.contextmanager
def _main_file_hidden(ctx: multiprocessing.context.BaseContext) -> Iterator[None]:
    """Start a worker as if ``__main__`` had no file when its "file" is ``<stdin>``.

    multiprocessing decides what a new process imports from
    ``__main__.__file__`` alone, and would run ``<stdin>`` as a path; with no
    ``__file__`` it imports nothing, as for ``python -c``. The attribute is
    restored as soon as the process has its start data (``start()`` returns).
    """
    if ctx.get_start_method() == "fork":
        yield  # a forked worker has the parent's main already
        return
    with _MAIN_FILE_LOCK:
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        if main is None or not isinstance(path, str) or main_is_a_file():
            yield
            return
        main.__file__ = None
        try:
            yield
        finally:
            main.__file__ = path


def start_worker(ctx: multiprocessing.context.BaseContext, config: bytes, name: str) -> Worker:
    """Start one worker process, running :func:`poolkit.processes._child.main`; return its record.

    The record's state is STARTING until the worker reports READY. Called
    while this process is itself a would-be worker importing an unguarded main
    module, it ends this process instead (see :data:`EXIT_UNGUARDED_MAIN`).

    Raises:
        OSError: the process could not be started.
    """
    if _importing_main_to_become_a_worker():
        _exit_unguarded_main()
    parent_end, child_end = ctx.Pipe(duplex=True)
    process: multiprocessing.process.BaseProcess = ctx.Process(  # type: ignore[attr-defined]
        target=child.main, args=(child_end, config), name=name
    )
    try:
        with _main_file_hidden(ctx):
            process.start()
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    return Worker(process, parent_end)
