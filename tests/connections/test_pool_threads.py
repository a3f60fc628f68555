"""ConnectionPool with real threads: its cleaner and connect threads come and go.

The tests both twins share are in ``test_async_pool.py`` (and the
``test_pool.py`` generated from it).
"""

from __future__ import annotations

import gc
import threading
import weakref

from poolkit import ConnectionPool
from poolkit.testing import FakeConnector


def test_close_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    pool = ConnectionPool(
        FakeConnector(), min_size=2, max_lifetime=100, max_idle_time=10, timeout=5.0
    )
    with pool.connection():
        pass
    pool.close()
    assert set() == {t for t in threading.enumerate() if t not in before and t.is_alive()}


def test_pool_dropped_without_close_is_collected_and_its_cleaner_ends() -> None:
    pool = ConnectionPool(FakeConnector(), max_lifetime=100, timeout=5.0)
    with pool.connection():
        pass
    cleaner = pool._runner.cleaner
    assert cleaner is not None
    ref = weakref.ref(pool)
    del pool
    # The creator thread or a cleaner pass may hold the pool for a moment.
    for _ in range(1000):
        gc.collect()
        if ref() is None:
            break
        threading.Event().wait(0.005)
    assert ref() is None
    cleaner.join(30)
    assert not cleaner.is_alive()


def test_one_cleaner_thread_per_pool_even_when_threads_race_to_start_it() -> None:
    """Flushes run in callers, connect threads and the cleaner at once; only the
    first may start the cleaner (a pool with three cleaners was seen before)."""
    pool = ConnectionPool(FakeConnector(), max_size=4, max_idle_time=60.0, name="solo")
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for _ in range(50):
            with pool.connection():
                pass

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cleaners = [t for t in threading.enumerate() if t.name == "poolkit-cleaner-solo"]
    assert len(cleaners) == 1
    pool.close()
    assert not [t for t in threading.enumerate() if t.name.endswith("-solo")]
