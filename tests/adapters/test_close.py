"""One shutdown verb: every adapter client that owns connections ends with close().

HTTPPool, MemcacheClient and DBPool each close their connections on close()
and on leaving a with block; a call afterwards raises PoolClosed; close() is
idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from poolkit import PoolClosed
from poolkit.adapters import dbapi
from poolkit.adapters.http import HTTPPool
from tests.adapters.conftest import LoopbackHTTPServer, MemcachedServer

TIMEOUT = 5.0


def test_http_pool_close_closes_its_connections_and_ends_it(
    http_server: LoopbackHTTPServer,
) -> None:
    """After close() no connection is open and a request raises PoolClosed."""
    with HTTPPool(timeout=TIMEOUT) as http:
        assert http.get(http_server.base + "/").status == 200
        assert http.stats().pool.idle == 1
    stats = http.stats().pool
    assert (stats.idle, stats.in_use) == (0, 0)
    with pytest.raises(PoolClosed):
        http.get(http_server.base + "/")
    http.close()  # idempotent


def test_memcache_client_close_closes_its_connections_and_ends_it(
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    """MemcacheClient: close() (here by the with block) closes every server's pool."""
    from poolkit.adapters.memcache import MemcacheClient  # the fixture checked pymemcache

    server = memcached_factory()
    with MemcacheClient([server.address], timeout=TIMEOUT, connect_timeout=TIMEOUT) as mc:
        mc.set("k", b"v")
        assert mc.stats().idle == 1
    stats = mc.stats()
    assert (stats.idle, stats.in_use) == (0, 0)
    with pytest.raises(PoolClosed):
        mc.get("k")
    mc.close()  # idempotent


def test_db_pool_close_closes_its_connections_and_ends_it(tmp_path: Path) -> None:
    """DBPool (sqlite_pool): close() closes the connections; connect() then raises."""
    with dbapi.sqlite_pool(str(tmp_path / "t.db"), max_size=2) as db:
        with db.connection() as conn:
            conn.execute("CREATE TABLE t (x)")
        assert db.stats().idle == 1
    stats = db.stats()
    assert (stats.idle, stats.in_use) == (0, 0)
    with pytest.raises(PoolClosed):
        db.connect()
    db.close()  # idempotent
