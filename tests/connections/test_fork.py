"""Fork safety: the child forgets the parent's connections and never touches them.

A forked child shares the parent's sockets. Whatever the child does with a
connection checked out in the parent (release it, discard it, leave a ``with``
block that was open at fork time, drop the proxy, close or drain the pool, run
the cleaner's pass, exit through atexit), the connector's hooks must not run
on it: a reset would roll back the parent's open transaction, a close would end
its session. The recording connectors log every call with the caller's pid to a
file, so the parent sees what the child did, even while the child was exiting.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from poolkit import (
    AsyncConnectionPool,
    AsyncKeyedConnectionPool,
    ConnectionPool,
    KeyedConnectionPool,
)
from poolkit.testing import FakeConnection, FakeConnector
from tests.connections.recording import AsyncFileRecorder, FileRecorder, calls

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Every hook a pool could wrongly call on the parent's connections.
TOUCHING = {"reset", "close", "commit", "ping", "check"}


def run_child(body: Callable[[], None]) -> tuple[int, str]:
    """Fork; the child runs ``body``, reports through a pipe and leaves by os._exit.

    Returns:
        The child's pid and its report ("ok" or the error it hit).
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # never return into pytest from here
        report = "ok"
        try:
            body()
        except BaseException as exc:
            report = f"child failed: {exc!r}"
        finally:
            os.write(write, report.encode())
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 4096):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid, b"".join(chunks).decode()


def touched(path: str, pid: int, parent_ids: set[int]) -> list[tuple[str, int]]:
    return [(hook, c) for hook, c in calls(path, pid) if hook in TOUCHING and c in parent_ids]


def test_child_never_resets_commits_or_closes_the_parents_connections(tmp_path: Path) -> None:
    log = str(tmp_path / "calls")
    pool: ConnectionPool[int] = ConnectionPool(FileRecorder(log), max_size=5, ping_after=0)
    held = pool.acquire()
    discarded = pool.acquire()
    dropped = pool.acquire()
    pool.acquire().close()  # one idle
    lease = pool.connection()
    leased = lease.__enter__()  # a `with pool.connection()` block open at fork time
    interrupted = pool.connection()
    interrupted.__enter__()
    leased_id = leased.raw
    parent_ids = {held.raw, discarded.raw, dropped.raw, leased_id, 4}

    def child() -> None:
        nonlocal dropped
        held.close()
        discarded.discard()
        lease.__exit__(None, None, None)  # the block ends normally: no commit here
        interrupted.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
        del dropped  # garbage-collected: forgotten, no LeakWarning, no close
        gc.collect()
        pool.maintain()
        pool.drain()
        assert pool.stats().in_use == 0
        with pool.connection() as fresh:  # the child's own pool works
            assert fresh.raw not in parent_ids
        pool.close()

    pid, report = run_child(child)
    assert report == "ok"
    assert touched(log, pid, parent_ids) == []
    # The parent's pool is intact: its block commits, its connections come back.
    lease.__exit__(None, None, None)
    assert ("commit", leased_id) in calls(log, os.getpid())
    interrupted.__exit__(None, None, None)
    for proxy in (held, discarded, dropped):
        proxy.close()
    stats = pool.stats()
    assert (stats.in_use, stats.idle, stats.closed) == (0, 5, 0)
    with pool.connection() as again:
        assert again.raw in parent_ids
    pool.close()
    assert sorted(c for hook, c in calls(log, os.getpid()) if hook == "close") == [1, 2, 3, 4, 5]


def test_keyed_child_never_touches_the_parents_connections(tmp_path: Path) -> None:
    log = str(tmp_path / "calls")
    recorders: dict[str, FileRecorder] = {}

    def factory(key: str) -> FileRecorder:
        return recorders.setdefault(key, FileRecorder(log))

    kpool: KeyedConnectionPool[str, int] = KeyedConnectionPool(factory, max_size_per_key=3)
    held = kpool.acquire("a")
    lease = kpool.connection("b")
    leased = lease.__enter__()
    leased_id = leased.raw
    parent_ids = {held.raw, leased_id}

    def child() -> None:
        held.close()
        lease.__exit__(None, None, None)
        assert kpool.keys() == []
        with kpool.connection("a"):
            pass
        kpool.close()

    pid, report = run_child(child)
    assert report == "ok"
    assert touched(log, pid, parent_ids) == []
    lease.__exit__(None, None, None)
    assert ("commit", leased_id) in calls(log, os.getpid())
    held.close()
    assert kpool.stats().idle == 2
    kpool.close()


class SlowClose(FakeConnector):
    """close() blocks until ``release`` is set, so a fork can catch it in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = threading.Event()
        self.release = threading.Event()

    def close(self, conn: FakeConnection) -> None:
        self.closing.set()
        self.release.wait(30)
        super().close(conn)


def test_keyed_child_forked_during_a_close_can_still_evict_at_the_global_cap() -> None:
    """A close in flight in the parent at fork time is not the child's: its count
    must not linger in the child's global budget, where it would block every
    eviction at the cap (and time out an acquire that an idle connection of
    another key could serve)."""
    slow = SlowClose()
    kpool: KeyedConnectionPool[str, FakeConnection] = KeyedConnectionPool(
        lambda key: slow if key == "slow" else FakeConnector(), max_size_per_key=2, max_size=2
    )
    doomed = kpool.acquire("slow")
    closer = threading.Thread(target=doomed.discard)
    closer.start()
    assert slow.closing.wait(30)

    def child() -> None:
        x = kpool.acquire("x")
        kpool.acquire("y").close()  # idle under "y"; the cap (2) is reached
        with kpool.connection("x", timeout=5):  # needs y's idle connection evicted
            pass
        x.close()
        kpool.close()

    try:
        _pid, report = run_child(child)
    finally:
        slow.release.set()
        closer.join(30)
    assert report == "ok"
    kpool.close()


class LoopThread:
    """An event loop in a thread, so the main thread can fork while it runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def test_async_child_never_touches_the_parents_connections(tmp_path: Path) -> None:
    log = str(tmp_path / "calls")
    pool: AsyncConnectionPool[int] = AsyncConnectionPool(
        AsyncFileRecorder(log), max_size=4, ping_after=0
    )
    lt = LoopThread()
    held = lt.run(pool.acquire())
    discarded = lt.run(pool.acquire())
    lease = pool.connection()
    leased = lt.run(lease.__aenter__())
    leased_id = leased.raw
    parent_ids = {held.raw, discarded.raw, leased_id}

    def child() -> None:
        async def main() -> None:
            await held.close()
            await discarded.discard()
            await lease.__aexit__(None, None, None)
            async with pool.connection() as fresh:
                assert fresh.raw not in parent_ids
            await pool.close()

        asyncio.run(main())

    pid, report = run_child(child)
    assert report == "ok"
    assert touched(log, pid, parent_ids) == []
    lt.run(lease.__aexit__(None, None, None))
    assert ("commit", leased_id) in calls(log, os.getpid())
    lt.run(held.close())
    lt.run(discarded.close())
    assert pool.stats().idle == 3
    lt.run(pool.close())
    lt.stop()


def test_async_keyed_child_never_touches_the_parents_connections(tmp_path: Path) -> None:
    log = str(tmp_path / "calls")
    recorders: dict[str, AsyncFileRecorder] = {}

    def factory(key: str) -> AsyncFileRecorder:
        return recorders.setdefault(key, AsyncFileRecorder(log))

    kpool: AsyncKeyedConnectionPool[str, int] = AsyncKeyedConnectionPool(factory)
    lt = LoopThread()
    held = lt.run(kpool.acquire("a"))
    lease = kpool.connection("b")
    leased = lt.run(lease.__aenter__())
    leased_id = leased.raw
    parent_ids = {held.raw, leased_id}

    def child() -> None:
        async def main() -> None:
            await held.close()
            await lease.__aexit__(None, None, None)
            assert kpool.keys() == []
            async with kpool.connection("a"):
                pass
            await kpool.close()

        asyncio.run(main())

    pid, report = run_child(child)
    assert report == "ok"
    assert touched(log, pid, parent_ids) == []
    lt.run(lease.__aexit__(None, None, None))
    assert ("commit", leased_id) in calls(log, os.getpid())
    lt.run(held.close())
    assert kpool.stats().idle == 2
    lt.run(kpool.close())
    lt.stop()


# A program that forks with connections out and lets the child exit the normal
# way (sys.exit at top level): atexit handlers run (one closes the pool), the
# `with` block open at fork time is left by SystemExit, and proxies still held
# are collected at interpreter shutdown.
EXIT_NORMALLY = """
import asyncio, atexit, os, sys
from poolkit import AsyncConnectionPool, ConnectionPool, KeyedConnectionPool
from tests.connections.recording import AsyncFileRecorder, FileRecorder

kind, log = sys.argv[1], sys.argv[2]
if kind == "sync":
    pool = ConnectionPool(FileRecorder(log), max_size=3, ping_after=0)
    acquire, lease = pool.acquire, pool.connection
elif kind == "keyed":
    pool = KeyedConnectionPool(lambda key: FileRecorder(log), max_size_per_key=3)
    acquire, lease = (lambda: pool.acquire("k")), (lambda: pool.connection("k"))
atexit.register(pool.close)
held = acquire()
kept = acquire()
with lease() as leased:
    ids = (held.raw, kept.raw, leased.raw)
    pid = os.fork()
    if pid == 0:
        held.close()
        sys.exit(0)  # leaves the block by SystemExit; `kept` dies at shutdown
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print(pid, *ids)
held.close()
kept.close()
"""


@pytest.mark.parametrize("kind", ["sync", "keyed"])
def test_child_exiting_normally_through_atexit_never_touches_the_parents_connections(
    tmp_path: Path, kind: str
) -> None:
    log = str(tmp_path / "calls")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(EXIT_NORMALLY), kind, log],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no LeakWarning, no traceback from either process
    pid, *parent_ids = map(int, done.stdout.split())
    assert touched(log, pid, set(parent_ids)) == []
    # The parent's own pool committed its block and closed everything at exit.
    parent = [call for call in calls(log) if call not in calls(log, pid)]
    assert ("commit", parent_ids[2]) in parent
    closes = sorted(c for hook, c in parent if hook == "close")
    assert closes == sorted(parent_ids)
