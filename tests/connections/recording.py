"""Connectors for the pool tests that record what the pool did, from outside.

- :class:`FileRecorder` / :class:`AsyncFileRecorder`: every hook call is
  appended to a file as ``<pid> <hook> <connection id>``, so calls made in a
  forked child (even while it exits) are visible to the parent.
- :class:`ServerConnector` / :class:`AsyncServerConnector`: a "server" that
  counts connections open from its point of view (created minus closes that
  returned), with optional slow closes and faults injected into any hook.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Callable


class FileRecorder:
    """A connector whose connections are ints; each hook call is logged to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._ids = itertools.count(1)

    def log(self, hook: str, conn: int) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {hook} {conn}\n".encode())
        finally:
            os.close(fd)

    def create(self) -> int:
        conn = next(self._ids)
        self.log("create", conn)
        return conn

    def close(self, conn: int) -> None:
        self.log("close", conn)

    def check(self, conn: int) -> bool:
        self.log("check", conn)
        return True

    def ping(self, conn: int) -> bool:
        self.log("ping", conn)
        return True

    def reset(self, conn: int) -> None:
        self.log("reset", conn)

    def commit(self, conn: int) -> None:
        self.log("commit", conn)


class AsyncFileRecorder(FileRecorder):
    """The asyncio twin of :class:`FileRecorder`."""

    async def create(self) -> int:  # type: ignore[override]
        return FileRecorder.create(self)

    async def close(self, conn: int) -> None:  # type: ignore[override]
        FileRecorder.close(self, conn)

    async def ping(self, conn: int) -> bool:  # type: ignore[override]
        return FileRecorder.ping(self, conn)

    async def reset(self, conn: int) -> None:  # type: ignore[override]
        FileRecorder.reset(self, conn)

    async def commit(self, conn: int) -> None:  # type: ignore[override]
        FileRecorder.commit(self, conn)


def calls(path: str, pid: int | None = None) -> list[tuple[str, int]]:
    """The (hook, connection) calls logged in ``path`` (by process ``pid`` only)."""
    try:
        with open(path) as f:
            lines = f.read().split()
    except FileNotFoundError:
        return []
    out = []
    for i in range(0, len(lines), 3):
        if pid is None or int(lines[i]) == pid:
            out.append((lines[i + 1], int(lines[i + 2])))
    return out


# A fault script: called with the hook's name before the hook runs; it may raise.
Faults = Callable[[str], None]


def _no_faults(hook: str) -> None:
    return None


class ServerConnector:
    """Connections as ints; the "server" counts open ones and remembers the peak.

    A connection is open at the server from ``create()`` until its ``close()``
    returns; ``close_delay`` makes closes slow, as a server acknowledging a
    terminate message. ``faults(hook)`` runs before each hook and may raise.
    """

    def __init__(self, close_delay: float = 0.0, faults: Faults = _no_faults) -> None:
        self.close_delay = close_delay
        self.faults = faults
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.open: set[int] = set()
        self.peak = 0
        self.created = 0
        self.closed: list[int] = []
        # Closes of a connection already closed or never opened.
        self.bad_closes: list[int] = []

    def _opened(self) -> int:
        with self._lock:
            conn = next(self._ids)
            self.open.add(conn)
            self.created += 1
            self.peak = max(self.peak, len(self.open))
            return conn

    def _gone(self, conn: int) -> None:
        # Recorded, not asserted: the pool logs and swallows an Exception
        # from close(), so an assertion here would hide the very double close
        # it means to catch. The test asserts ``bad_closes == []``.
        with self._lock:
            if conn not in self.open:
                self.bad_closes.append(conn)
                return
            self.open.discard(conn)
            self.closed.append(conn)

    def create(self) -> int:
        self.faults("create")
        return self._opened()

    def close(self, conn: int) -> None:
        if self.close_delay:
            time.sleep(self.close_delay)
        self._gone(conn)
        self.faults("close")  # after the server let go: the pool must still account for it

    def check(self, conn: int) -> bool:
        self.faults("check")
        return True

    def ping(self, conn: int) -> bool:
        self.faults("ping")
        return True

    def reset(self, conn: int) -> None:
        self.faults("reset")

    def commit(self, conn: int) -> None:
        self.faults("commit")


class AsyncServerConnector(ServerConnector):
    """The asyncio twin of :class:`ServerConnector` (closes sleep on the loop)."""

    async def create(self) -> int:  # type: ignore[override]
        await asyncio.sleep(0)
        self.faults("create")
        return self._opened()

    async def close(self, conn: int) -> None:  # type: ignore[override]
        await asyncio.sleep(self.close_delay)
        self._gone(conn)

    async def ping(self, conn: int) -> bool:  # type: ignore[override]
        await asyncio.sleep(0)
        self.faults("ping")
        return True

    async def reset(self, conn: int) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.faults("reset")

    async def commit(self, conn: int) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.faults("commit")
