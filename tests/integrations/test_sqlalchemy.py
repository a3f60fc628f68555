"""PoolkitPool under SQLAlchemy on real SQLite files: Core, ORM, the pool arguments, events."""

from __future__ import annotations

import gc
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from poolkit import LeakWarning, PoolTimeout
from tests.optional import in_ci, require

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import orm

    from poolkit.integrations.sqlalchemy import AsyncPoolkitPool, PoolkitPool, PoolkitTimeoutError
except ImportError as _exc:  # pragma: no cover - the extra is missing
    _why = f"sqlalchemy is not installed (pip install 'poolkit[sqlalchemy]'): {_exc}"
    if in_ci():
        pytest.fail(f"{_why}; CI (CI=true) installs it", pytrace=False)
    pytest.skip(_why, allow_module_level=True)


class Base(orm.DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., sa.Engine]]:
    """Engines on a fresh SQLite file, with PoolkitPool; disposed afterwards."""
    engines: list[sa.Engine] = []

    def make(**kw: Any) -> sa.Engine:
        engine = sa.create_engine(
            f"sqlite:///{tmp_path / 'db.sqlite'}", poolclass=PoolkitPool, **kw
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def pool_of(engine: sa.Engine) -> PoolkitPool:
    pool = engine.pool
    assert isinstance(pool, PoolkitPool)
    return pool


# -- Core and ORM ------------------------------------------------------------------


def test_core_connection_and_orm_session_work_through_poolkit(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=2, max_overflow=1)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(Item), [{"id": 1, "name": "core"}])
    with orm.Session(engine) as session:
        session.add(Item(id=2, name="orm"))
        session.commit()
    with orm.Session(engine) as session:
        names = session.scalars(sa.select(Item.name).order_by(Item.id)).all()
    assert names == ["core", "orm"]
    stats = pool_of(engine).stats()
    assert stats.acquired >= 3
    assert stats.in_use == 0


def test_create_engine_maps_sqlalchemy_pool_arguments_onto_poolkit(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=4, max_overflow=2, pool_timeout=1.5, pool_use_lifo=False)
    pool = pool_of(engine)
    stats = pool.stats()
    assert stats.max_size == 6
    assert pool.size() == 4
    assert pool.timeout() == 1.5
    assert pool.checkedout() == 0
    assert pool.overflow() == -4  # QueuePool's count: open minus pool_size
    assert pool.status().startswith("PoolkitPool pool_size=4 max_overflow=2: 0 open")


def test_overflow_connections_close_on_return_and_pool_size_stay(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=2, max_overflow=2)
    conns = [engine.connect() for _ in range(4)]
    for conn in conns:
        conn.exec_driver_sql("SELECT 1")
    pool = pool_of(engine)
    assert pool.checkedout() == 4
    for conn in conns:
        conn.close()
    stats = pool.stats()
    assert (stats.idle, stats.closed_by_reason["max_idle"]) == (2, 2)


def test_poolkit_options_pass_through(make_engine: Callable[..., sa.Engine]) -> None:
    engine = make_engine(poolkit_options={"max_waiting": 3, "name": "orders-db"})
    assert "orders-db" in repr(pool_of(engine).connection_pool)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"pool_size": -1}, ValueError, "pool_size"),
        ({"max_overflow": -2}, ValueError, "max_overflow"),
        ({"pool_size": 0, "max_overflow": 0}, ValueError, "pool_size + max_overflow"),
        ({"pool_timeout": "30"}, TypeError, "pool_timeout"),
        ({"pool_recycle": 0}, ValueError, "pool_recycle"),
        ({"pool_pre_ping": 1}, TypeError, "pool_pre_ping"),
        ({"poolkit_options": [("leak_timeout", 1)]}, TypeError, "poolkit_options"),
        ({"poolkit_options": {"max_size": 3}}, ValueError, "pool_size + max_overflow"),
        ({"poolkit_options": {"min_size": 1}}, ValueError, "min_size"),
        ({"poolkit_options": {"on_acquire": print}}, ValueError, "checkout"),
        ({"poolkit_options": {"maxsize": 3}}, ValueError, "unknown option 'maxsize'"),
        ({"poolkit_options": {"max_idle_time": -1}}, ValueError, "max_idle_time"),
        (
            {"pool_recycle": 60, "poolkit_options": {"max_lifetime": 60}},
            ValueError,
            "pool_recycle and poolkit_options['max_lifetime']",
        ),
        (
            {"pool_use_lifo": True, "poolkit_options": {"order": "fifo"}},
            ValueError,
            "pool_use_lifo and poolkit_options['order']",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter(
    make_engine: Callable[..., sa.Engine], kwargs: dict[str, Any], error: type, names: str
) -> None:
    with pytest.raises(error, match=re.escape(names)):
        make_engine(**kwargs)


# -- limits and timeouts ------------------------------------------------------------


def test_pool_timeout_raises_sqlalchemys_timeout_error_which_is_also_poolkits(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0, pool_timeout=0.05)
    with engine.connect(), pytest.raises(sa_exc.TimeoutError) as caught:
        engine.connect()
    error: BaseException = caught.value
    assert isinstance(error, PoolkitTimeoutError)
    assert isinstance(error, PoolTimeout)
    assert "limit of size 1 overflow 0 reached" in str(error)
    assert pool_of(engine).stats().timeouts == 1
    with engine.connect() as conn:  # the pool serves again once the holder is gone
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_eight_threads_on_four_plus_two_lose_no_row(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=4, max_overflow=2, pool_timeout=30)
    Base.metadata.create_all(engine)
    threads, per_thread = 8, 25
    peak = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(t: int) -> None:
        nonlocal peak
        try:
            for i in range(per_thread):
                with orm.Session(engine) as session:
                    session.add(Item(id=t * 1000 + i, name=f"{t}-{i}"))
                    with lock:
                        peak = max(peak, pool_of(engine).checkedout())
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with engine.connect() as conn:
        ids = set(conn.execute(sa.select(Item.id)).scalars())
    assert {t * 1000 + i for t in range(threads) for i in range(per_thread)} == ids
    stats = pool_of(engine).stats()
    assert stats.in_use == 0
    assert stats.total <= 6
    assert peak <= 6


# -- lifetimes, dispose, invalidation ----------------------------------------------


def test_pool_recycle_retires_a_connection_older_than_it(
    make_engine: Callable[..., sa.Engine],
) -> None:
    clock = FakeClock()
    engine = make_engine(pool_size=1, pool_recycle=60, poolkit_options={"clock": clock})
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
    clock.now += 30
    with engine.connect() as conn:
        assert first is conn.connection.dbapi_connection  # younger than pool_recycle
    clock.now += 31
    with engine.connect() as conn:
        assert first is not conn.connection.dbapi_connection
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert pool_of(engine).stats().closed_by_reason["lifetime"] == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        first.execute("SELECT 1")  # type: ignore[union-attr]


def test_engine_dispose_closes_idle_connections_and_busy_ones_on_return(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=2)
    busy = engine.connect()
    with engine.connect() as conn:
        idle_dbapi = conn.connection.dbapi_connection
    busy_dbapi = busy.connection.dbapi_connection
    old = pool_of(engine)
    engine.dispose()
    assert engine.pool is not old  # recreated, as QueuePool is
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        idle_dbapi.execute("SELECT 1")  # type: ignore[union-attr]
    assert busy.exec_driver_sql("SELECT 1").scalar() == 1  # a checked-out one keeps working
    busy.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        busy_dbapi.execute("SELECT 1")  # type: ignore[union-attr]
    assert old.stats().closed_by_reason["drained"] == 2
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_recreate_keeps_the_arguments_and_the_event_listeners(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=3, max_overflow=1, pool_timeout=2.0, pool_pre_ping=True)
    seen: list[str] = []
    sa.event.listen(engine, "checkout", lambda *a: seen.append("checkout"))
    engine.dispose()
    pool = pool_of(engine)
    assert (pool.stats().max_size, pool.size(), pool.timeout()) == (4, 3, 2.0)
    with engine.connect():
        pass
    assert seen == ["checkout"]


def test_invalidate_makes_poolkit_discard_the_connection(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
        conn.invalidate()
    stats = pool_of(engine).stats()
    assert (stats.closed_by_reason["discarded"], stats.total) == (1, 0)
    with engine.connect() as conn:
        assert first is not conn.connection.dbapi_connection
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_soft_invalidation_replaces_the_connection_at_its_return(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
        conn.connection.invalidate(soft=True)
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1  # usable until returned
    with engine.connect() as conn:
        assert first is not conn.connection.dbapi_connection


def test_a_failed_connect_raises_at_checkout_and_frees_its_slot(tmp_path: Path) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}",
        poolclass=PoolkitPool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=30,
    )
    for _ in range(2):  # the slot is not held by the failed attempt
        with pytest.raises(sa_exc.OperationalError, match="unable to open"):
            engine.connect()
    assert pool_of(engine).stats().total == 0


# -- reset on return, events, diagnostics -------------------------------------------


def test_uncommitted_work_is_rolled_back_on_checkin_and_committed_work_survives(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    Base.metadata.create_all(engine)
    raw = engine.raw_connection()  # the pool's own proxy: no Connection to roll back
    cur = raw.cursor()
    cur.execute("INSERT INTO items (id, name) VALUES (1, 'kept')")
    raw.commit()
    cur.execute("INSERT INTO items (id, name) VALUES (2, 'dropped')")
    cur.close()
    raw.close()  # reset on return: rollback
    with engine.connect() as conn:
        assert list(conn.execute(sa.select(Item.id)).scalars()) == [1]


def test_sqlalchemy_pool_events_fire_in_order(make_engine: Callable[..., sa.Engine]) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    seen: list[str] = []
    for name in ("connect", "checkout", "checkin", "reset", "close", "invalidate"):
        sa.event.listen(engine, name, lambda *a, name=name: seen.append(name))
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    with engine.connect() as conn:
        conn.invalidate()
    assert seen == [
        "connect",
        "checkout",
        "reset",
        "checkin",
        "checkout",
        "invalidate",
        "close",
        "checkin",
    ]


def test_stats_and_holders_report_poolkits_diagnostics(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=2, poolkit_options={"leak_timeout": 60})
    pool = pool_of(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        holders = pool.holders()
        assert len(holders) == 1
        assert threading.current_thread().name == holders[0].thread
        assert holders[0].where is not None
        assert "test_sqlalchemy.py" in holders[0].where
        assert pool.stats().in_use == 1
    assert pool.holders() == []
    popped = pool.pop_stats()
    assert (popped.acquired, popped.created) == (1, 1)
    assert pool.stats().acquired == 0


def test_a_ping_error_that_is_no_disconnect_replaces_that_connection_only(
    make_engine: Callable[..., sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pool_size=2, pool_pre_ping=True)
    first, second = engine.connect(), engine.connect()
    first_dbapi, second_dbapi = (
        first.connection.dbapi_connection,
        second.connection.dbapi_connection,
    )
    second.close()
    first.close()  # LIFO: first is handed out next
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def ping(dbapi_connection: Any) -> bool:
        error = next(failures, None)
        if error is not None:
            raise error
        return True

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    with engine.connect() as conn:  # no error reaches the caller
        assert conn.connection.dbapi_connection is second_dbapi
    stats = pool_of(engine).stats()
    assert (stats.closed_by_reason["ping_failed"], stats.closed_by_reason["drained"]) == (1, 0)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        first_dbapi.execute("SELECT 1")  # type: ignore[union-attr]


def test_max_overflow_minus_one_and_pool_size_zero_mean_what_they_mean_in_sqlalchemy(
    make_engine: Callable[..., sa.Engine],
) -> None:
    from poolkit.integrations.sqlalchemy._options import UNLIMITED

    assert pool_of(make_engine(pool_size=3, max_overflow=-1)).stats().max_size == UNLIMITED
    engine = make_engine(pool_size=0, max_overflow=3)  # no cap on idle connections
    conns = [engine.connect() for _ in range(3)]
    for conn in conns:
        conn.close()
    stats = pool_of(engine).stats()
    assert (stats.max_size, stats.idle, stats.closed_by_reason["max_idle"]) == (3, 3, 0)


def test_detach_takes_the_connection_out_of_the_pool_and_frees_its_slot(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    conn = engine.connect()
    dbapi = conn.connection.dbapi_connection
    conn.detach()
    assert pool_of(engine).stats().total == 0
    with engine.connect() as other:  # the slot is free: no wait for the detached one
        assert other.connection.dbapi_connection is not dbapi
    conn.close()  # closes the detached connection itself
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        dbapi.execute("SELECT 1")  # type: ignore[union-attr]


def test_an_asyncio_dialect_refuses_the_thread_pool() -> None:
    """An asyncio dialect (create_async_engine's) refuses the thread pool: SQLAlchemy's check."""
    require("asyncpg", "bench")
    with pytest.raises(sa_exc.ArgumentError, match="cannot be used with asyncio engine"):
        sa.create_engine("postgresql+asyncpg://u@127.0.0.1/db", poolclass=PoolkitPool)


class _Cycle:
    """Holds a pool connection in a reference cycle: only the cyclic GC frees it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.me = self


def test_a_connection_dropped_without_close_goes_back_to_the_pool(
    make_engine: Callable[..., sa.Engine],
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    raw = engine.raw_connection()
    dbapi = raw.dbapi_connection
    del raw  # SQLAlchemy's cleanup resets it and checks it in, as with QueuePool
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is dbapi


def test_a_connection_collected_inside_the_pools_locked_section_does_not_deadlock(
    make_engine: Callable[..., sa.Engine],
) -> None:
    """The cyclic GC may run SQLAlchemy's cleanup while this thread holds poolkit's lock."""
    engine = make_engine(pool_size=1, max_overflow=0, pool_timeout=5)
    pool = pool_of(engine)
    _Cycle(engine.raw_connection())
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # As if the collection began inside the pool's locked section.
        with (
            pool.connection_pool._lock,
            pytest.warns(LeakWarning, match="garbage-collected without being released"),
        ):
            gc.collect()
        with engine.connect() as conn:  # the slot came back: no wait
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        if gc_was_enabled:
            gc.enable()
    assert pool.stats().closed_by_reason["dropped"] == 1


def test_a_sync_engine_refuses_the_asyncio_pool(tmp_path: Path) -> None:
    with pytest.raises(sa_exc.ArgumentError, match="cannot be used with non-asyncio engine"):
        sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", poolclass=AsyncPoolkitPool)


@pytest.mark.parametrize(
    ("use_lifo", "reused"), [(None, "second"), (True, "second"), (False, "first")]
)
def test_pool_use_lifo_picks_the_order_lifo_by_default(
    make_engine: Callable[..., sa.Engine], use_lifo: bool | None, reused: str
) -> None:
    kwargs = {} if use_lifo is None else {"pool_use_lifo": use_lifo}
    engine = make_engine(pool_size=2, **kwargs)
    first, second = engine.connect(), engine.connect()
    dbapi = {
        "first": first.connection.dbapi_connection,
        "second": second.connection.dbapi_connection,
    }
    first.close()
    second.close()
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is dbapi[reused]
