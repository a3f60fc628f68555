"""Fork safety: the child starts empty; the parent's connections are untouched."""

from __future__ import annotations

import os
import sys

import pytest

from poolkit import ConnectionPool, KeyedConnectionPool
from poolkit.testing import FakeConnector


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_sees_an_empty_pool_and_never_closes_parent_connections() -> None:
    fake = FakeConnector()
    pool = ConnectionPool(fake, max_size=2)
    held = pool.acquire()
    pool.acquire().close()  # one idle
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and never return into pytest
        code = 1
        try:
            stats = pool.stats()
            held.close()  # the parent's connection: dropped, not pooled or closed
            with pool.connection() as c:
                fresh = c.raw.id
            ok = (
                (stats.size, stats.idle) == (0, 0)
                and not any(conn.closed for conn in fake.connections[:2])
                and fresh == 3
            )
            code = 0 if ok else 1
        finally:
            os.write(write, b"ok" if code == 0 else b"bad")
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 10)
    os.close(read)
    assert answer == b"ok"
    assert os.waitstatus_to_exitcode(status) == 0
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.in_use) == (2, 1, 1)
    assert not any(c.closed for c in fake.connections)
    held.close()
    pool.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_keyed_pool_child_starts_empty() -> None:
    made: dict[str, FakeConnector] = {}

    def factory(key: str) -> FakeConnector:
        return made.setdefault(key, FakeConnector())

    kpool = KeyedConnectionPool(factory, max_size=2)
    with kpool.connection("a"):
        pass
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            empty = kpool.keys() == [] and kpool.stats().size == 0
            with kpool.connection("b"):
                pass
            code = 0 if empty and not made["a"].connections[0].closed else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert kpool.keys() == ["a"]
    kpool.close()
