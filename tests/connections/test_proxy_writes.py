"""The proxy a pool hands out: attribute writes reach the connection; a
connector's proxy_class is what acquire() returns."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from poolkit import AsyncConnectionPool, ConnectionDetached, ConnectionPool, ReleaseError
from poolkit.connections import AsyncPooledConnection, PooledConnection
from poolkit.testing import AsyncFakeConnector, FakeConnector


def test_attribute_writes_reach_the_connection_until_release() -> None:
    """conn.x = v sets the connection's attribute (any connector); after release it raises."""
    with ConnectionPool(FakeConnector(), max_size=1, timeout=5.0) as pool:
        conn = pool.acquire()
        conn.timeout = 2.5
        assert getattr(conn.raw, "timeout") == 2.5  # noqa: B009  (not a FakeConnection field)
        del conn.timeout
        assert not hasattr(conn.raw, "timeout")
        raw = conn.raw
        conn.close()
        with pytest.raises(ConnectionDetached):
            conn.timeout = 1.0
        assert not hasattr(raw, "timeout")
        with pool.connection() as again:  # the proxy's own state is intact
            assert again.raw is raw


def test_async_attribute_writes_reach_the_connection_until_release() -> None:
    """The async twin."""

    async def main() -> None:
        async with AsyncConnectionPool(AsyncFakeConnector(), max_size=1, timeout=5.0) as pool:
            conn = await pool.acquire()
            conn.timeout = 2.5
            assert getattr(conn.raw, "timeout") == 2.5  # noqa: B009  (not a FakeConnection field)
            await conn.close()
            with pytest.raises(ConnectionDetached):
                conn.timeout = 1.0

    asyncio.run(main())


class _Marked(PooledConnection[Any]):
    __slots__ = ()

    def mark(self) -> str:
        return f"marked {self.raw.id}"


class _AsyncMarked(AsyncPooledConnection[Any]):
    __slots__ = ()


def test_connector_proxy_class_is_what_acquire_returns() -> None:
    """A connector's proxy_class is built by acquire() and released like the default one."""
    fake = FakeConnector()
    fake.proxy_class = _Marked  # type: ignore[attr-defined]
    with ConnectionPool(fake, max_size=1, timeout=5.0) as pool:
        conn = pool.acquire()
        assert type(conn) is _Marked
        assert conn.mark() == "marked 1"
        pool.release(conn)
        with pytest.raises(ReleaseError, match="already released"):
            pool.release(conn)
        with pool.connection() as again:
            assert type(again) is _Marked
        assert pool.stats().created == 1


def test_async_connector_proxy_class_is_what_acquire_returns() -> None:
    """The async twin."""

    async def main() -> None:
        fake = AsyncFakeConnector()
        fake.proxy_class = _AsyncMarked  # type: ignore[attr-defined]
        async with AsyncConnectionPool(fake, max_size=1, timeout=5.0) as pool:
            conn = await pool.acquire()
            assert type(conn) is _AsyncMarked
            await conn.close()

    asyncio.run(main())


@pytest.mark.parametrize("bad", [int, _AsyncMarked, "PooledConnection"])
def test_a_proxy_class_that_is_not_a_proxy_subclass_is_refused(bad: object) -> None:
    fake = FakeConnector()
    fake.proxy_class = bad  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="proxy_class must be a subclass of PooledConnection"):
        ConnectionPool(fake)
