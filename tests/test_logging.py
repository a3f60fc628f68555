"""Logging: one logger per family, the pool's name on every record, floods rate-limited."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from poolkit import (
    ConnectionPool,
    LeakWarning,
    PoolBroken,
    PoolOverload,
    PoolTimeout,
    ProcessPool,
    TaskTimeout,
    WorkerCrashed,
    WorkerPool,
    _log,
)
from poolkit.testing import FakeClock, FakeConnector
from tests.processes import tasks

PROMPT = 30.0


def _records(caplog: pytest.LogCaptureFixture, logger: str, pool: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and getattr(r, "pool", None) == pool]


def test_a_pool_timeout_is_a_warning_naming_the_pool(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    pool = ConnectionPool(FakeConnector(), max_size=1, name="orders-db")
    with pool, pool.connection(), pytest.raises(PoolTimeout):
        pool.acquire(timeout=0)
    [record] = _records(caplog, "poolkit.connections", "orders-db")
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("orders-db: PoolTimeout after 0 s: 1 in use")


def test_timeouts_are_rate_limited_per_pool_and_the_next_record_counts_the_rest(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    with ConnectionPool(FakeConnector(), max_size=1, name="flood") as pool, pool.connection():
        for _ in range(4):
            with pytest.raises(PoolTimeout):
                pool.acquire(timeout=0)
        assert len(_records(caplog, "poolkit.connections", "flood")) == 1
        monkeypatch.setattr(_log, "INTERVAL", 0.0)  # the interval has passed
        with pytest.raises(PoolTimeout):
            pool.acquire(timeout=0)
    first, second = _records(caplog, "poolkit.connections", "flood")
    assert "suppressed" not in first.getMessage()
    assert "(3 similar records suppressed in the last" in second.getMessage()
    assert second.suppressed == 3  # type: ignore[attr-defined]


def test_another_pool_is_not_silenced_by_the_first(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    for name in ("east", "west"):
        pool = ConnectionPool(FakeConnector(), max_size=1, name=name)
        with pool, pool.connection(), pytest.raises(PoolTimeout):
            pool.acquire(timeout=0)
        assert len(_records(caplog, "poolkit.connections", name)) == 1


def test_a_connection_overload_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    with ConnectionPool(FakeConnector(), max_size=1, max_waiting=1, name="capped") as pool:
        held = pool.acquire()
        waiter = threading.Thread(target=lambda: pool.release(pool.acquire(timeout=PROMPT)))
        waiter.start()
        while pool.stats().waiting == 0:
            threading.Event().wait(0.001)
        with pytest.raises(PoolOverload):
            pool.acquire()
        pool.release(held)
        waiter.join()
    [record] = _records(caplog, "poolkit.connections", "capped")
    assert "PoolOverload: 1 callers already waiting (max_waiting=1)" in record.getMessage()


def test_a_leak_is_logged_with_the_holders_stack_besides_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    clock = FakeClock()
    with ConnectionPool(FakeConnector(), leak_timeout=5, clock=clock, name="leaky") as pool:
        conn = pool.acquire()
        clock.advance(6)
        with pytest.warns(LeakWarning):
            pool.maintain()
        pool.release(conn)
    [record] = _records(caplog, "poolkit.connections", "leaky")
    assert "has been held for 6.0 s (leak_timeout)" in record.getMessage()
    assert "test_a_leak_is_logged_with_the_holders_stack" in record.getMessage()


def test_connect_failures_and_the_recovery_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="poolkit.connections")
    connector = FakeConnector()
    connector.fail_next_creates(1, ConnectionRefusedError("db down"))
    with ConnectionPool(connector, name="flaky") as pool, pool.connection(timeout=PROMPT):
        pass
    failed, recovered = _records(caplog, "poolkit.connections", "flaky")
    assert failed.levelno == logging.WARNING
    assert "opening a connection failed: ConnectionRefusedError('db down')" in failed.getMessage()
    assert recovered.levelno == logging.INFO
    assert "opened a connection again" in recovered.getMessage()


def test_nothing_is_logged_on_the_normal_paths(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="poolkit")
    with ConnectionPool(FakeConnector(), name="quiet") as pool:
        for _ in range(3):
            with pool.connection():
                pass
    with WorkerPool(2, name="quiet-workers") as workers:
        workers.map(abs, range(10))
    assert [r for r in caplog.records if r.name.startswith("poolkit")] == []


def test_a_worker_pool_overload_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.workers")
    gate = threading.Event()
    with WorkerPool(1, queue_size=0, nonblocking=True, name="busy") as pool:
        pool.submit(gate.wait, PROMPT)
        refused = 0
        for _ in range(3):  # the first may still find the worker free
            try:
                pool.submit(gate.wait, PROMPT)
            except PoolOverload:
                refused += 1
        gate.set()
    assert refused >= 2
    [record] = _records(caplog, "poolkit.workers", "busy")
    assert record.getMessage().startswith("busy: PoolOverload: ")


def test_a_broken_worker_pool_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="poolkit.workers")

    def bad_init() -> None:
        raise OSError("no model file")

    pool = WorkerPool(1, initializer=bad_init, name="broken")
    with pytest.raises(PoolBroken):
        pool.submit(int).result(PROMPT)
    pool.shutdown()
    records = _records(caplog, "poolkit.workers", "broken")
    assert any("the pool is broken" in r.getMessage() for r in records)


@pytest.fixture
def process_log(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING, logger="poolkit.processes")
    return caplog


def test_a_task_timeout_and_a_worker_crash_are_warnings(process_log: Any) -> None:
    with ProcessPool(1, name="procs") as pool:
        with pytest.raises(TaskTimeout):
            pool.options(timeout=0.2).submit(tasks.sleep_long).result(PROMPT)
        with pytest.raises(WorkerCrashed):
            pool.submit(tasks.exit_now, 3).result(PROMPT)
    messages = [r.getMessage() for r in _records(process_log, "poolkit.processes", "procs")]
    assert any("its worker (pid" in m and "was killed" in m for m in messages)
    assert any("died (exit code 3)" in m for m in messages)


@pytest.mark.parametrize("family", ["connections", "workers", "processes", "buffers"])
def test_each_family_has_its_logger_under_poolkit(family: str) -> None:
    assert _log.logger(family) is logging.getLogger(f"poolkit.{family}")


def test_the_rate_limit_table_forgets_pools_whose_interval_is_over(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="poolkit.connections")
    monkeypatch.setattr(_log, "_MAX_KEYS", 3)
    monkeypatch.setattr(_log, "_limits", {})
    now = [0.0]
    log = logging.getLogger("poolkit.connections")
    for i in range(5):
        assert _log.log_limited(log, logging.WARNING, f"p{i}", "timeout", "x", clock=lambda: now[0])
        now[0] += _log.INTERVAL
    assert len(_log._limits) <= 3
    assert len(caplog.records) == 5
