"""Leak diagnostics: who holds which connection, since when, acquired where.

With ``leak_timeout`` set, each acquisition records the holder (thread, asyncio
task, time, and the acquiring stack); the cleaner warns with
:class:`~poolkit.LeakWarning` when a connection is held longer, and a proxy
garbage-collected without release is warned about and closed. The recording
costs a stack walk per acquisition, which is why it is opt-in.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType

from poolkit._errors import LeakWarning
from poolkit._log import log, logger
from poolkit.connections._core import Entry, PoolCore

__all__ = [
    "Holder",
    "capture",
    "describe_holders",
    "skip_frames_of",
    "timeout_message",
    "warn_dropped",
    "warn_held",
]

_LOG = logger("connections")

# Frames kept from the acquiring stack: enough to reach the user's request
# handler through a web framework's layers, small enough to read in a warning.
STACK_LIMIT = 12
# Holders named in a PoolTimeout message: the longest-held few answer "who has
# my connections?" without flooding the log.
TIMEOUT_HOLDERS = 3
# Modules whose frames are skipped to find the acquiring call: the pool's own,
# and those of the layers that integrations put between the user and the pool.
_skipped_packages: tuple[str, ...] = ("poolkit.connections.",)


@dataclass(frozen=True)
class Holder:
    """Who holds a connection, for :meth:`~poolkit.ConnectionPool.holders`.

    Attributes:
        connection: ``repr()`` of the connection.
        held_for: seconds since it was acquired.
        thread: name of the acquiring thread (``None`` without ``leak_timeout``).
        task: name of the acquiring asyncio task, if any.
        stack: the acquiring stack, formatted (``None`` without ``leak_timeout``).
        where: ``file:line in function`` of the acquiring call, if recorded.
    """

    connection: str
    held_for: float
    thread: str | None
    task: str | None
    stack: str | None
    where: str | None = None

    def summary(self) -> str:
        """One line: who, for how long, from where."""
        who = (self.task and f"task {self.task}") or (self.thread and f"thread {self.thread}")
        where = f" at {self.where}" if self.where else ""
        return f"{self.connection} held {self.held_for:.1f} s by {who or 'unknown'}{where}"


class _Record:
    """The acquiring thread, task and stack, kept raw: formatting (which reads
    source files) happens only when a warning or ``holders()`` needs the text."""

    __slots__ = ("frames", "task", "thread")

    def __init__(self, thread: str, task: str | None, frames: list[tuple[CodeType, int]]) -> None:
        self.thread = thread
        self.task = task
        self.frames = frames

    def format(self) -> str:
        """The stack, outermost call first, as ``traceback`` prints it."""
        summary = traceback.StackSummary.from_list(
            [(code.co_filename, line, code.co_name, None) for code, line in reversed(self.frames)]
        )
        return "".join(summary.format())


def capture() -> _Record:
    """Record the current thread, task and stack, from the caller of the pool.

    Walks frames by hand: ``traceback.extract_stack`` reads source lines and
    cost ~100 µs per acquisition in the benchmark; this costs a few µs.
    """
    # No asyncio task can run in a process that never imported asyncio, and
    # importing it here would cost the sync pools ~15 ms at start-up.
    asyncio = sys.modules.get("asyncio")
    try:
        task = None if asyncio is None else asyncio.current_task()
    except RuntimeError:
        task = None
    frames: list[tuple[CodeType, int]] = []
    frame: FrameType | None = sys._getframe(1)
    # Skip the pool's own frames (acquire, the context manager...): the
    # interesting frame is the user's call.
    skipped = _skipped_packages
    while frame is not None and frame.f_globals.get("__name__", "").startswith(skipped):
        frame = frame.f_back
    while frame is not None and len(frames) < STACK_LIMIT:
        frames.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return _Record(
        threading.current_thread().name, task.get_name() if task is not None else None, frames
    )


def skip_frames_of(*packages: str) -> None:
    """Record the acquiring call outside ``packages`` too (``"sqlalchemy."``).

    An integration calls it once at import, so that a holder's ``where``
    names the user's line rather than the library between it and the pool.
    """
    global _skipped_packages
    _skipped_packages = tuple(dict.fromkeys(_skipped_packages + packages))


def _holder(entry: Entry, now: float) -> Holder:
    record = entry.holder
    if isinstance(record, _Record):
        where = None
        if record.frames:
            code, line = record.frames[0]
            where = f"{code.co_filename}:{line} in {code.co_name}"
        return Holder(
            repr(entry.conn),
            now - entry.acquired_at,
            record.thread,
            record.task,
            record.format(),
            where,
        )
    return Holder(repr(entry.conn), now - entry.acquired_at, None, None, None)


def describe_holders(core: PoolCore, now: float) -> list[Holder]:
    """Every busy connection's holder, longest-held first."""
    entries = sorted(core.in_use, key=lambda e: e.acquired_at)
    return [_holder(entry, now) for entry in entries]


def warn_held(entries: Iterable[Entry], now: float, name: str) -> None:
    """Warn once per entry held past ``leak_timeout``, with its acquiring stack."""
    for entry in entries:
        holder = _holder(entry, now)
        who = (holder.task and "task " + holder.task) or "thread " + str(holder.thread)
        # Logged first (the warnings filter may turn the warning into an
        # error), and every time: the warnings module shows one per line.
        log(
            _LOG,
            logging.WARNING,
            name,
            "%s has been held for %.1f s (leak_timeout) by %s. Acquired at:\n%s",
            holder.connection,
            holder.held_for,
            who,
            holder.stack or "",
        )
        warnings.warn(
            LeakWarning(
                f"connection pool {name!r}: {holder.connection} has been held for "
                f"{holder.held_for:.1f} s (leak_timeout) by {who}; "
                f"release it (use pool.connection()) or raise leak_timeout. "
                f"Acquired at:\n{holder.stack or ''}"
            ),
            stacklevel=2,
        )


def warn_dropped(entry: Entry, name: str) -> None:
    """Warn that a proxy was garbage-collected while still holding its connection."""
    stack = ""
    if isinstance(entry.holder, _Record):
        stack = " Acquired at:\n" + entry.holder.format()
    else:
        stack = " Set leak_timeout= on the pool to see where it was acquired."
    log(
        _LOG,
        logging.WARNING,
        name,
        "a pooled connection (%r) was garbage-collected without being released; it was closed.%s",
        entry.conn,
        stack,
    )
    warnings.warn(
        LeakWarning(
            f"connection pool {name!r}: a pooled connection ({entry.conn!r}) was "
            "garbage-collected without being released; it was closed. Release it "
            f"with pool.connection() or conn.close().{stack}"
        ),
        stacklevel=2,
    )


def timeout_message(core: PoolCore, timeout: float, now: float) -> str:
    """The ``PoolTimeout`` message: the pool's state, then the likely cause.

    When opening a connection failed (a bad address, refused credentials),
    that is the cause: the message says so with the error and stops there,
    since raising ``max_size`` or hunting leaks would not help. The leak advice
    is kept for a pool at its limit with connections in use.
    """
    state = (
        f"{core.in_use_count} in use (max_size={core.max_size}), {core.creating} being "
        f"created, {len(core.waiters)} waiting"
    )
    head = f"couldn't acquire a connection within {timeout:g} s"
    error = core.last_create_error
    if error is not None:
        return f"{head}: couldn't connect: {error!r} ({state})"
    msg = f"{head}: {state}"
    budget = core.budget  # a keyed pool's caps across keys
    at_limit = core.size >= core.max_size or (
        budget is not None and budget.total >= budget.max_size
    )
    if not at_limit:
        # Room to open one: a connection is still on its way.
        return msg + "; opening a connection took longer than that: raise timeout"
    holders = describe_holders(core, now)[:TIMEOUT_HOLDERS]
    if holders and holders[0].stack is not None:
        msg += "; longest holders: " + "; ".join(h.summary() for h in holders)
        msg += "; raise max_size or timeout, or release connections sooner"
    else:
        if holders:
            msg += f"; the longest-held connection has been out {holders[0].held_for:.1f} s"
        msg += "; raise max_size or timeout, or look for leaks with leak_timeout="
    return msg
