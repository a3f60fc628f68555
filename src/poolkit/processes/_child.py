"""The worker-process side of ProcessPool: one loop, standard library only.

Under ``spawn`` and ``forkserver`` this file is run by ``runpy.run_path`` (not
imported as ``poolkit.processes._child``), so starting a worker does not
import the ``poolkit`` package (~140 ms with every family loaded); under
``fork`` the parent calls :func:`main` directly. Either way it must import
nothing but the standard library.

Protocol, on the worker's own duplex pipe. One task is in flight per worker,
so messages carry no task ids: the parent knows which task each worker runs.

* parent → child: ``pickle((mode, fn, args, kwargs))`` bytes; ``b""`` = stop.
  ``mode`` is :data:`CALL` (``fn(*args, **kwargs)``) or :data:`CHUNK`
  (``[fn(*a) for a in args]``, for ``map``).
* child → parent: ``pickle((kind, value, traceback_text, rss))``; ``kind`` is
  :data:`READY`, :data:`OK`, :data:`FAILED` or :data:`INIT_FAILED`; ``rss`` is
  the resident set size in bytes after the task when the pool caps memory.

Guarantees kept here:

* The child dies with its parent: ``PR_SET_PDEATHSIG`` on Linux, plus a
  thread that polls ``os.getppid()`` (a forkserver child's parent is the
  forkserver, which exits when the pool's process does).
* SIGINT is ignored: a Ctrl-C in the terminal reaches the whole process
  group; the parent handles it and stops the workers itself.
* Every message the child sends unpickles in a standard interpreter: a result
  or exception that cannot travel is replaced by a ``pickle.PicklingError``
  saying so, with the original traceback text.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from typing import Any

READY = 0
OK = 1
FAILED = 2
INIT_FAILED = 3
CALL = 0
CHUNK = 1
STOP = b""
# ``run_path`` name of this file in a worker (see the module docstring).
RUN_NAME = "__poolkit_process_child__"
# How often a worker checks that its parent is alive where PR_SET_PDEATHSIG is
# unavailable (or as a backstop): a quarter second bounds an orphan's life
# while costing an idle worker a handful of wake-ups per second.
PARENT_POLL_INTERVAL = 0.25
# prctl option number from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _release_forkserver() -> None:
    """Drop this worker's copy of the forkserver's "parent alive" pipe.

    The forkserver exits when every copy of that pipe's write end is closed,
    and it hands one copy to each process it forks. Kept, the copies in our
    workers would keep the forkserver alive after the pool's process died,
    and the forkserver would keep the workers alive (their parent never
    dies): nobody would ever exit.
    """
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None
        server._forkserver_address = None


def _die_with_parent(parent: int) -> None:
    """Arrange for this process to end when ``parent`` (its parent process) does."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the polling thread below still covers it

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(PARENT_POLL_INTERVAL)

    threading.Thread(target=watch, name="poolkit-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the prctl took hold
        os._exit(1)


def _rss() -> int:
    """This process's resident set size in bytes (``/proc``, else peak RSS)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip, else a PicklingError describing it."""
    try:
        pickle.loads(pickle.dumps(exc, _PROTOCOL))
        return exc
    except BaseException as why:
        return pickle.PicklingError(
            f"the task raised {type(exc).__name__}: {exc}, which couldn't be pickled to send "
            f"it to the parent ({why!r}); raise exceptions whose args rebuild them"
        )


def _failure(exc: BaseException, partial: list[Any] | None) -> bytes:
    text = "".join(traceback.format_exception(exc))
    value: Any = _portable(exc) if partial is None else (partial, _portable(exc))
    try:
        return pickle.dumps((FAILED, value, text, None), _PROTOCOL)
    except BaseException:  # partial results that cannot travel
        return pickle.dumps((FAILED, ([], _portable(exc)), text, None), _PROTOCOL)


def _run(data: bytes, report_rss: bool) -> bytes:
    """Run one task message; return the reply message (never raises)."""
    try:
        mode, fn, args, kwargs = pickle.loads(data)
    except BaseException as exc:
        why = pickle.UnpicklingError(
            f"couldn't unpickle the task in the worker: {exc!r}; the function must be "
            "importable in a fresh interpreter (a module-level def), or install cloudpickle"
        )
        return _failure(why, None)
    partial: list[Any] | None = None
    try:
        if mode == CALL:
            value = fn(*args, **kwargs)
        else:
            partial = []
            for item in args:
                partial.append(fn(*item))
            value = partial
    except BaseException as exc:
        return _failure(exc, partial)
    finally:
        fn = args = kwargs = None  # don't keep the task alive while idle
    rss = _rss() if report_rss else None
    try:
        return pickle.dumps((OK, value, None, rss), _PROTOCOL)
    except BaseException as exc:
        failed = pickle.PicklingError(
            f"couldn't pickle the task's result to send it to the parent: {exc!r}; "
            "return picklable data"
        )
        return _failure(failed, None)


def main(conn: Any, config: bytes) -> None:
    """The worker loop: initializer, then tasks until stop or the parent goes.

    Args:
        conn: this worker's end of its pipe (a ``multiprocessing`` Connection).
        config: ``pickle((initializer, initargs, finalizer, report_rss, start_method,
            pool_pid))``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send = conn.send_bytes
    recv = conn.recv_bytes
    try:
        initializer, initargs, finalizer, report_rss, method, pool_pid = pickle.loads(config)
        if method == "forkserver":
            _release_forkserver()
        # A forkserver worker's parent is the forkserver (it exits with the
        # pool's process); otherwise it is the pool's process itself, whose
        # pid is passed so that a parent dying during start-up is noticed.
        _die_with_parent(os.getppid() if method == "forkserver" else pool_pid)
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        send(pickle.dumps((INIT_FAILED, _portable(exc), text, None), _PROTOCOL))
        return
    send(pickle.dumps((READY, os.getpid(), None, None), _PROTOCOL))
    while True:
        try:
            data = recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe: it is gone or killing us
        if data == STOP:
            break
        send(_run(data, report_rss))
    if finalizer is not None:
        finalizer()


if __name__ == RUN_NAME:
    main(*globals()["POOLKIT_ARGS"])
