"""The worker-process side of ProcessPool: one loop, standard library only.

Every worker process starts in :func:`main`, the ``Process`` target under
every start method: ``fork`` calls it in the forked copy of the parent;
``spawn`` and ``forkserver`` unpickle it by name, so the new process imports
this module, which costs ``poolkit/__init__`` and ``poolkit/processes/__init__``
(both load names on first use, so they import nothing) and the standard
library. A worker imports nothing else of poolkit: not the pool, not the
thread or asyncio pools, not asyncio.

Protocol, on the worker's own duplex pipe, in frames (an 8-byte big-endian
length, then the message; :func:`write_frames`, :class:`FrameReader`). The
worker runs its tasks one at a time in the order they arrive and answers each
before it starts the next, so messages carry no task ids: the parent knows
which task each worker runs (the oldest one not answered) and which ones it
holds behind it (pipelined, see ``_dispatch``).

* parent → child: ``pickle((mode, fn, args, kwargs))`` bytes; ``b""`` = stop.
  ``mode`` is :data:`CALL` (``fn(*args, **kwargs)``), :data:`CHUNK`
  (``[fn(*a) for a in args]``, for ``map``) or :data:`EACH` (``[fn(a) for a
  in args]``, a ``map`` over one iterable: its items travel without a tuple
  each). In every mode ``fn`` may travel pickled on its own (a ``bytes``
  object, never a callable): a map pickles its function once, not once per
  chunk, and a module-level function's pickled reference is kept for the
  tasks after (``_wire.function_blob``); the worker keeps what such a
  reference unpickles to (:func:`_load_function`).
* child → parent: ``pickle((kind, value, traceback_text, rss))``; ``kind`` is
  :data:`READY`, :data:`OK`, :data:`FAILED` or :data:`INIT_FAILED`; ``rss`` is
  the resident set size in bytes after the task when the pool caps memory.

Guarantees kept here:

* The child dies with the pool's process, however that ends (SIGKILL
  included): see :func:`_die_with_parent`.
* SIGINT is ignored: a Ctrl-C in the terminal reaches the whole process
  group; the parent handles it and stops the workers itself.
* Every message the child sends unpickles in a standard interpreter: a result
  or exception that cannot travel is replaced by a ``pickle.PicklingError``
  saying so, with the original traceback text.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import signal
import struct
import sys
import threading
import time
from multiprocessing.connection import wait

TYPE_CHECKING = False  # typing is not imported in workers (see poolkit/__init__.py)
if TYPE_CHECKING:
    from typing import Any

READY = 0
OK = 1
FAILED = 2
INIT_FAILED = 3
CALL = 0
CHUNK = 1
EACH = 2
STOP = b""
# How often a forked worker checks that its parent is alive (where
# PR_SET_PDEATHSIG is unavailable, or as a backstop): a quarter second bounds
# an orphan's life while costing an idle worker a handful of wake-ups a second.
PARENT_POLL_INTERVAL = 0.25
# prctl option number from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEADER = struct.Struct("!Q")
# Bytes asked of one read when no frame is half read: a batch of small
# messages (replies, pipelined tasks) comes in with one system call.
_READ_SIZE = 65536
# os.writev takes at most IOV_MAX (1024 on Linux and macOS) buffers per call.
_MAX_IOV = 512


def write_frames(fd: int, messages: list[bytes]) -> None:
    """Write ``messages`` to ``fd`` as frames, with as few system calls as it takes.

    Blocking: returns once every byte is written (a short write is resumed).
    """
    buffers: list[bytes] = []
    pack = _HEADER.pack
    for message in messages:
        buffers.append(pack(len(message)))
        buffers.append(message)
    while buffers:
        if len(buffers) <= _MAX_IOV:  # the usual case: one call, no slicing
            batch = buffers
            buffers = []
        else:
            batch = buffers[:_MAX_IOV]
            del buffers[:_MAX_IOV]
        written = os.writev(fd, batch)
        total = 0
        for buffer in batch:
            total += len(buffer)
        if written < total:
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]


class FrameReader:
    """Cuts the bytes read from a pipe into the messages of :func:`write_frames`."""

    __slots__ = ("_buf", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = _HEADER.size  # bytes the next frame needs in _buf

    def read(self, fd: int) -> list[bytes] | None:
        """Read once from ``fd`` (blocking if nothing is there); the complete messages.

        Returns:
            The messages completed by this read (maybe none), or None at
            end of file.

        Raises:
            OSError: the read failed.
        """
        data = os.read(fd, max(_READ_SIZE, self._need - len(self._buf)))
        if not data:
            return None
        buf = self._buf
        buf += data
        if len(buf) < self._need:
            return []
        messages = []
        pos = 0
        end = len(buf)
        size = _HEADER.size
        while end - pos >= size:
            (n,) = _HEADER.unpack_from(buf, pos)
            if end - pos - size < n:
                self._need = size + n
                break
            messages.append(bytes(buf[pos + size : pos + size + n]))
            pos += size + n
        else:
            self._need = size
        del buf[:pos]
        return messages


def _die_with_parent(method: str, pool_pid: int) -> None:
    """Arrange for this worker to end when the pool's process (pid ``pool_pid``) does.

    * ``PR_SET_PDEATHSIG`` (Linux): the kernel kills us the moment our
      parent ends. Under ``fork`` and ``spawn`` the parent is the pool's
      process; under ``forkserver`` it is the forkserver, which outlives the
      pool's process while any worker holds its inherited liveness pipe.
    * Under ``spawn`` and ``forkserver``, a thread waits on
      ``multiprocessing.parent_process().sentinel``: the read end of a pipe
      whose write end only the pool's process holds (multiprocessing keeps it
      for exactly this), so it reads end-of-file when that process ends.
      Exiting then also closes our copy of the forkserver's liveness pipe, so
      the forkserver exits once every worker has.
    * Under ``fork`` that pipe is not enough: a worker forked later inherits
      the pool's write ends of the earlier workers' pipes. The thread polls
      ``os.getppid()`` instead (the parent is the pool's process).
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the thread below still covers it
    if method == "fork":

        def watch() -> None:
            while os.getppid() == pool_pid:
                time.sleep(PARENT_POLL_INTERVAL)
            os._exit(1)

    else:
        parent = multiprocessing.parent_process()
        assert parent is not None  # set for every multiprocessing Process's target
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])  # returns once the pool's process has ended
            os._exit(1)

    threading.Thread(target=watch, name="poolkit-parent-watch", daemon=True).start()
    if method == "fork" and os.getppid() != pool_pid:  # died before the prctl took hold
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


def _traceback_text(exc: BaseException) -> str:
    # Imported on the failure path only: traceback (and linecache, which it
    # loads) is not otherwise needed by a worker.
    import traceback

    return "".join(traceback.format_exception(exc))


def _failure(exc: BaseException, partial: list[Any] | None) -> bytes:
    text = _traceback_text(exc)
    value: Any = _portable(exc) if partial is None else (partial, _portable(exc))
    try:
        return pickle.dumps((FAILED, value, text, None), _PROTOCOL)
    except BaseException:  # partial results that cannot travel
        return pickle.dumps((FAILED, ([], _portable(exc)), text, None), _PROTOCOL)


# Functions unpickled from their pickled reference, by those bytes: unpickling
# a reference imports through the module system, which costs more than a
# trivial task. Bounded, as the parent's side (_wire.function_blob).
_FUNCTIONS: dict[bytes, Any] = {}
_MAX_FUNCTIONS = 256


def _by_name(fn: Any) -> bool:
    """Whether ``fn`` is what its module's attribute of its name holds (pickle's by-reference)."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    name = getattr(fn, "__qualname__", None)
    return isinstance(name, str) and getattr(module, name, None) is fn


def _load_function(blob: bytes) -> Any:
    """The function pickled in ``blob``: as ``pickle.loads``, kept when it is a reference.

    Kept only when ``blob`` is exactly the reference to the function's own
    name (not an older name rebound to it), and used only while that name
    still leads to it, so the result is what unpickling the reference again
    would give; a function pickled by value (cloudpickle) is never kept: each
    task gets its own copy.
    """
    fn = _FUNCTIONS.get(blob)
    if fn is not None and _by_name(fn):
        return fn
    fn = pickle.loads(blob)
    if _by_name(fn) and pickle.dumps(fn, _PROTOCOL) == blob:
        if len(_FUNCTIONS) >= _MAX_FUNCTIONS:
            _FUNCTIONS.clear()
        _FUNCTIONS[blob] = fn
    return fn


def _run(data: bytes, report_rss: bool) -> bytes:
    """Run one task message; return the reply message (never raises)."""
    try:
        mode, fn, args, kwargs = pickle.loads(data)
        if type(fn) is bytes:  # pickled on its own by the parent (a map's, or kept)
            fn = _load_function(fn)
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
            # The chunk's loop runs in C (starmap, map); extend() keeps the items
            # appended before one raised, which are the chunk's partial results.
            partial = []
            partial.extend(itertools.starmap(fn, args) if mode == CHUNK else map(fn, args))
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
    fd = conn.fileno()  # conn stays referenced here: it owns the descriptor

    def send(message: bytes) -> None:
        if len(message) > _READ_SIZE:
            write_frames(fd, [message])
            return
        # A small reply (the usual one) goes out as one buffer: a copy of a
        # few bytes costs less than building write_frames' iovec list.
        data = _HEADER.pack(len(message)) + message
        written = os.write(fd, data)
        if written < len(data):
            rest = memoryview(data)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]

    try:
        initializer, initargs, finalizer, report_rss, method, pool_pid = pickle.loads(config)
        _die_with_parent(method, pool_pid)
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:
        text = _traceback_text(exc)
        send(pickle.dumps((INIT_FAILED, _portable(exc), text, None), _PROTOCOL))
        return
    send(pickle.dumps((READY, os.getpid(), None, None), _PROTOCOL))
    reader = FrameReader()
    inbox: list[bytes] = []  # read, not run yet: the oldest last (pop() takes it)
    while True:
        if not inbox:
            try:
                got = reader.read(fd)
            except OSError:
                return
            if got is None:
                return  # the parent closed the pipe: it is gone or killing us
            got.reverse()
            inbox = got
            continue
        data = inbox.pop()
        if data == STOP:
            break
        # Answer before starting the next task: the parent's record of which
        # task runs (for timeouts and crashes) is the oldest unanswered one.
        send(_run(data, report_rss))
    if finalizer is not None:
        finalizer()
