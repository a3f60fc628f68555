"""A private Redis for the integration tests, started on a free loopback port.

The suite never touches the machine's Redis: a ``redis-server`` runs in a
temporary directory, without persistence, for the whole session, and each
test gets it empty. Missing ``redis-server`` or redis-py skips locally and
fails in CI (``CI=true``), as the adapter tests do for their servers.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters import conftest as adapters
from tests.adapters.conftest import PROMPT, eventually, free_port, missing
from tests.integrations.dask_cluster import distributed

# The machine's PostgreSQL, as the adapter tests reach it (skip locally, fail in
# CI when it is absent): the SQLAlchemy tests use it too.
pg_dsn = adapters.pg_dsn


class RedisServer:
    """A ``redis-server`` process on a free loopback port in ``directory``."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        proc = self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {proc.returncode}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            eventually(up, f"redis-server answering on port {self.port}")
        except BaseException:
            self.kill()
            raise
        finally:
            client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the session."""
    try:
        import redis  # noqa: F401
    except ImportError:
        missing("redis-py (pip install 'poolkit[resque]')")
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        missing("redis-server (scripts/install-test-servers.sh installs it)")
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The private server's URL, its database emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def rclient(redis_url: str) -> Iterator[Any]:
    """A ``redis.Redis`` on the emptied database (bytes replies, as Resque sees them)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def dask_installed() -> None:
    """distributed is importable: skip locally, fail in CI (``CI=true``) when not."""
    if distributed is None:
        missing("distributed (pip install 'poolkit[dask]')")


@pytest.fixture
def running() -> Iterator[Callable[[Any], threading.Thread]]:
    """Run workers in background threads; each is stopped and joined at the end."""
    from poolkit.integrations.resque import ResqueWorker

    started: list[tuple[ResqueWorker, threading.Thread]] = []

    def start(worker: Any) -> threading.Thread:
        thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
        thread.start()
        started.append((worker, thread))
        return thread

    yield start
    for worker, thread in started:
        worker.stop(grace=0)
        thread.join(PROMPT)
        assert not thread.is_alive(), "a worker did not stop"
