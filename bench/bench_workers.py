"""``poolkit bench workers``: WorkerPool and AsyncWorkerPool against their peers.

Trivial tasks measure pure dispatch overhead: 200,000
per run (20,000 with ``--quick``), best of several runs, pools created and
warmed before the clock. Bench names are shared across subjects so ratios
line up:

* threads — ``go_wait`` (fire and forget, then a barrier), ``submit_result``
  (a Future per task, then every result), ``map``: WorkerPool vs
  ThreadPoolExecutor vs multiprocessing.pool.ThreadPool vs pebble.ThreadPool;
  ``go_wait`` also against the floor: four threads calling what they take
  from one ``queue.SimpleQueue``;
* asyncio — ``async_go_wait``: AsyncWorkerPool vs gather + Semaphore,
  TaskGroup + Semaphore, aiojobs, asyncio-pool and a hand-written
  asyncio.Queue worker set; ``async_go_wait_no_eager``: the same with eager
  start off, so every task takes the queue and a worker; ``async_map``:
  AsyncWorkerPool.map (results in order, taken as they come) vs gather +
  Semaphore (every result at the end) and asyncio-pool's ``map``;
* contexts — go+wait for both pools as a program runs it, the garbage
  collector on (every other row pauses it and runs in an empty context):
  no context variable set, one set before the pools are created, one set
  after; against the floor, asyncio.Queue workers and gather + Semaphore;
* memory — ``queue_1M_peak_rss``: peak RSS growth while 1,000,000 tasks
  (100,000 quick) go through a bounded WorkerPool, an unbounded one and
  ThreadPoolExecutor, each measured in its own child process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import os
import queue
import resource
import threading
from collections.abc import Callable, Coroutine
from multiprocessing.pool import ThreadPool as MpThreadPool
from typing import Any

from poolkit import AsyncWorkerPool, WorkerPool
from poolkit._bench import BenchContext, peer_installed

FAMILY = "workers"
THREADS = 4  # workers per thread pool: the anchors' measurements use 4
ASYNC_WORKERS = 8  # concurrency limit for every asyncio subject
# Resident memory is sampled every this many submissions (cheap: one small
# /proc read) to catch the peak while tasks are queued.
SAMPLE_EVERY = 10_000
# The submitters' contexts in _context_benches: one variable set, or none.
NO_VARIABLE = "no variable set"
BEFORE_THE_POOL = "a variable set before the pool"
AFTER_THE_POOL = "a variable set after the pool"
_REQUEST: contextvars.ContextVar[object] = contextvars.ContextVar("bench_request")


def noop() -> None:
    pass


def inc(x: int) -> int:
    return x + 1


async def ainc(x: int) -> int:
    return x + 1


async def anoop() -> None:
    pass


def run(ctx: BenchContext) -> None:
    """Every thread, asyncio and memory benchmark of the family."""
    n = 20_000 if ctx.quick else 200_000
    # Each in a context of known content, whatever ran before in this
    # process (``import psycopg``, in the connections family, sets the
    # decimal context; poolkit's go() depends on it, see _context_benches).
    contextvars.Context().run(_thread_benches, ctx, n)
    contextvars.Context().run(_async_benches, ctx, n)
    for variable_set in (NO_VARIABLE, BEFORE_THE_POOL, AFTER_THE_POOL):
        contextvars.Context().run(_context_benches, ctx, n, variable_set)
    tasks = 100_000 if ctx.quick else 1_000_000
    for subject in ("poolkit", "poolkit unbounded", "ThreadPoolExecutor"):
        ctx.run_in_child(
            "rss_child", {"POOLKIT_BENCH_SUBJECT": subject, "POOLKIT_TASKS": str(tasks)}
        )


# ------------------------------------------------------------------ threads


def _go_wait(pool: WorkerPool) -> Callable[[int], None]:
    """poolkit's go+wait loop: ``k`` trivial tasks, then wait for them."""

    def loop(k: int) -> None:
        go = pool.go
        for _ in range(k):
            go(noop)
        pool.wait()

    return loop


def _async_go_wait(pool: AsyncWorkerPool) -> Callable[[int], Coroutine[Any, Any, None]]:
    """AsyncWorkerPool's go+wait: ``k`` trivial coroutines, then wait for them."""

    async def body(k: int) -> None:
        go = pool.go
        for _ in range(k):
            await go(anoop)
        await pool.wait()

    return body


def _thread_benches(ctx: BenchContext, n: int) -> None:
    wp = WorkerPool(THREADS)
    tpe = cf.ThreadPoolExecutor(THREADS)
    mp = MpThreadPool(THREADS)
    pebble_pool = _pebble()
    floor = _SimpleQueueWorkers(THREADS)
    try:
        wp_go = _go_wait(wp)

        def tpe_go(k: int) -> None:
            submit = tpe.submit
            cf.wait([submit(noop) for _ in range(k)])

        def mp_go(k: int) -> None:
            apply = mp.apply_async
            for r in [apply(noop) for _ in range(k)]:
                r.wait()

        _record_all(
            ctx,
            "WorkerPool go+wait, trivial tasks",
            n,
            wp_go,
            tpe_go,
            mp_go,
            _pebble_go(pebble_pool),
            floor=floor.go_wait,
        )

        def wp_submit(k: int) -> None:
            submit = wp.submit
            for f in [submit(noop) for _ in range(k)]:
                f.result()

        def tpe_submit(k: int) -> None:
            submit = tpe.submit
            for f in [submit(noop) for _ in range(k)]:
                f.result()

        def mp_submit(k: int) -> None:
            apply = mp.apply_async
            for r in [apply(noop) for _ in range(k)]:
                r.get()

        _record_all(
            ctx,
            "WorkerPool submit+result, trivial tasks",
            n,
            wp_submit,
            tpe_submit,
            mp_submit,
            _pebble_submit(pebble_pool),
        )

        def wp_map(k: int) -> None:
            for _ in wp.map(inc, range(k)):
                pass

        def tpe_map(k: int) -> None:
            for _ in tpe.map(inc, range(k)):
                pass

        def mp_map(k: int) -> None:
            for _ in mp.imap(inc, range(k)):
                pass

        _record_all(
            ctx,
            "WorkerPool map, trivial tasks",
            n,
            wp_map,
            tpe_map,
            mp_map,
            _pebble_map(pebble_pool),
        )

        def wp_map_chunked(k: int) -> None:
            for _ in wp.map(inc, range(k), chunksize=256):
                pass

        def mp_map_chunked(k: int) -> None:
            for _ in mp.imap(inc, range(k), chunksize=256):
                pass

        _record_all(
            ctx, "WorkerPool map chunksize=256", n, wp_map_chunked, None, mp_map_chunked, None
        )
    finally:
        floor.stop()
        wp.stop()
        tpe.shutdown()
        mp.terminate()
        mp.join()
        if pebble_pool is not None:
            pebble_pool.stop()
            pebble_pool.join()


def _record_all(
    ctx: BenchContext,
    bench: str,
    n: int,
    ours: Callable[[int], None],
    tpe: Callable[[int], None] | None,
    mp: Callable[[int], None] | None,
    pebble: Callable[[int], None] | None,
    floor: Callable[[int], None] | None = None,
) -> None:
    subjects = {
        "poolkit": ours,
        "ThreadPoolExecutor": tpe,
        "multiprocessing ThreadPool": mp,
        "pebble ThreadPool": pebble,
        "SimpleQueue workers (floor)": floor,
    }
    for subject, loop in subjects.items():
        if loop is not None:
            ctx.record(bench, subject, "ops_per_s", 1e9 / ctx.time_ns_per_op(loop, n))


class _SimpleQueueWorkers:
    """The floor: the least a Python thread pool can do for go+wait.

    ``workers`` threads take callables from one ``queue.SimpleQueue`` and call
    them; no admission, no counters, no error handling. ``go_wait`` ends with
    one barrier item per worker: a worker takes its barrier item only after
    finishing its previous task, and every task was queued before the barriers.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.queue: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        get = self.queue.get
        while (fn := get()) is not None:
            fn()

    def go_wait(self, k: int) -> None:
        put = self.queue.put
        for _ in range(k):
            put(noop)
        barrier = threading.Barrier(self.workers + 1)
        for _ in range(self.workers):
            put(barrier.wait)
        barrier.wait()

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()


def _pebble() -> Any:
    if not peer_installed("pebble", "pebble"):
        return None
    import pebble

    return pebble.ThreadPool(max_workers=THREADS)


def _pebble_go(pool: Any) -> Callable[[int], None] | None:
    if pool is None:
        return None

    def loop(k: int) -> None:
        schedule = pool.schedule
        cf.wait([schedule(noop) for _ in range(k)])

    return loop


def _pebble_submit(pool: Any) -> Callable[[int], None] | None:
    if pool is None:
        return None

    def loop(k: int) -> None:
        schedule = pool.schedule
        for f in [schedule(noop) for _ in range(k)]:
            f.result()

    return loop


def _pebble_map(pool: Any) -> Callable[[int], None] | None:
    if pool is None:
        return None

    def loop(k: int) -> None:
        for _ in pool.map(inc, range(k)).result():
            pass

    return loop


# ------------------------------------------------------------- contexts


def _context_benches(ctx: BenchContext, n: int, variable_set: str) -> None:
    """go+wait as a program runs it: the collector on, a context variable set.

    The other rows run in an empty context with the collector paused. A real
    program's context is rarely empty (``import psycopg`` sets the decimal
    context, a web framework a request variable), and its collector runs.
    poolkit queues a ``go()`` without arguments as the bare function when
    the submitter's context is the pool's home (the context it was created
    in), wrapped when it is empty and the home is not (see InEmptyContext);
    else as a tuple with a copy of the context, which the collector then
    walks while it is queued. No variable: the baseline. Before the pool:
    the submitters are at home; a row per pool also submits from an empty
    context (a thread, or a Task, of its own). After: they are not at home.
    The peers do not carry context variables to their tasks, so the state
    does not change their cost.
    """
    if variable_set == BEFORE_THE_POOL:
        _REQUEST.set(object())
    wp = WorkerPool(THREADS)
    floor = _SimpleQueueWorkers(THREADS)
    loop = asyncio.new_event_loop()
    ap = AsyncWorkerPool(ASYNC_WORKERS)
    if variable_set == AFTER_THE_POOL:
        _REQUEST.set(object())

    def record(bench: str, subject: str, loop_fn: Callable[[int], None]) -> None:
        ns = ctx.time_ns_per_op(loop_fn, n, collector=True)
        ctx.record(f"{bench}, collector on, {variable_set}", subject, "ops_per_s", 1e9 / ns)

    try:
        wp_go = _go_wait(wp)
        ap_go = _async_go_wait(ap)

        thread_subjects = (("poolkit", wp_go), ("SimpleQueue workers (floor)", floor.go_wait))
        for subject, loop_fn in thread_subjects:
            record("WorkerPool go+wait", subject, loop_fn)
        if variable_set == BEFORE_THE_POOL:
            # A thread of its own, as a server's request threads: an empty
            # context, not the pool's home.
            for subject, loop_fn in thread_subjects:

                def in_empty(k: int, loop_fn: Callable[[int], None] = loop_fn) -> None:
                    contextvars.Context().run(loop_fn, k)

                record("WorkerPool go+wait from an empty context", subject, in_empty)
        async_subjects = (
            ("poolkit", ap_go),
            ("asyncio.Queue workers", queue_workers),
            ("gather+Semaphore", gather_sem),
        )
        for subject, body in async_subjects:

            def on_loop(k: int, body: Callable[[int], Coroutine[Any, Any, None]] = body) -> None:
                loop.run_until_complete(body(k))

            record("AsyncWorkerPool go+wait (default)", subject, on_loop)
        if variable_set == BEFORE_THE_POOL:
            for subject, body in async_subjects:

                def on_loop_empty(
                    k: int, body: Callable[[int], Coroutine[Any, Any, None]] = body
                ) -> None:
                    loop.run_until_complete(
                        loop.create_task(body(k), context=contextvars.Context())
                    )

                record(
                    "AsyncWorkerPool go+wait (default) from an empty context",
                    subject,
                    on_loop_empty,
                )
        loop.run_until_complete(ap.stop())
    finally:
        wp.stop()
        floor.stop()
        loop.close()


# ------------------------------------------------------------------ asyncio


def _async_benches(ctx: BenchContext, n: int) -> None:
    loop = asyncio.new_event_loop()
    # Eager start is opt-in (its first step runs as the caller's task); the
    # "eager start off" row is the default pool.
    ap = AsyncWorkerPool(ASYNC_WORKERS, eager=True)
    queued = AsyncWorkerPool(ASYNC_WORKERS)

    def on_loop(body: Callable[[int], Coroutine[Any, Any, None]]) -> Callable[[int], None]:
        return lambda k: loop.run_until_complete(body(k))

    ours = _async_go_wait(ap)
    ours_queued = _async_go_wait(queued)

    async def taskgroup_sem(k: int) -> None:
        sem = asyncio.Semaphore(ASYNC_WORKERS)

        async def limited() -> None:
            async with sem:
                await anoop()

        async with asyncio.TaskGroup() as tg:
            for _ in range(k):
                tg.create_task(limited())

    subjects: dict[str, Callable[[int], Coroutine[Any, Any, None]] | None] = {
        "poolkit": ours,
        "gather+Semaphore": gather_sem,
        "TaskGroup+Semaphore": taskgroup_sem,
        "aiojobs": _aiojobs(),
        "asyncio-pool": _asyncio_pool(),
        "asyncio.Queue workers": queue_workers,
    }
    try:
        for subject, body in subjects.items():
            if body is not None:
                ns = ctx.time_ns_per_op(on_loop(body), n)
                ctx.record(
                    "AsyncWorkerPool go+wait, trivial coroutines (eager=True)",
                    subject,
                    "ops_per_s",
                    1e9 / ns,
                )
        # The same workload with every task going through the worker queue
        # (eager=False): what a task that always suspends pays for dispatch.
        default_subjects = (
            ("poolkit", ours_queued),
            ("asyncio.Queue workers", queue_workers),
            ("gather+Semaphore", gather_sem),
        )
        for subject, body in default_subjects:
            ns = ctx.time_ns_per_op(on_loop(body), n)
            ctx.record(
                "AsyncWorkerPool go+wait, eager start off (default)", subject, "ops_per_s", 1e9 / ns
            )
        _async_map_benches(ctx, n, queued, on_loop)
        loop.run_until_complete(ap.stop())
        loop.run_until_complete(queued.stop())
    finally:
        loop.close()


async def gather_sem(k: int) -> None:
    """gather + Semaphore: a Task per task, ``ASYNC_WORKERS`` at a time."""
    sem = asyncio.Semaphore(ASYNC_WORKERS)

    async def limited() -> None:
        async with sem:
            await anoop()

    await asyncio.gather(*(limited() for _ in range(k)))


async def queue_workers(k: int) -> None:
    """A hand-written set of ``ASYNC_WORKERS`` Tasks fed by one asyncio.Queue."""
    q: asyncio.Queue[Callable[[], Coroutine[Any, Any, None]]] = asyncio.Queue()

    async def worker() -> None:
        while True:
            fn = await q.get()
            await fn()
            q.task_done()

    workers = [asyncio.ensure_future(worker()) for _ in range(ASYNC_WORKERS)]
    for _ in range(k):
        q.put_nowait(anoop)
    await q.join()
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


def _async_map_benches(
    ctx: BenchContext,
    n: int,
    pool: AsyncWorkerPool,
    on_loop: Callable[[Callable[[int], Coroutine[Any, Any, None]]], Callable[[int], None]],
) -> None:
    """``map`` of a trivial coroutine over ``range(k)``, every result taken in order."""

    async def ours(k: int) -> None:
        async for _ in pool.map(ainc, range(k)):
            pass

    async def gather_sem(k: int) -> None:
        sem = asyncio.Semaphore(ASYNC_WORKERS)

        async def limited(x: int) -> int:
            async with sem:
                return await ainc(x)

        for _ in await asyncio.gather(*(limited(x) for x in range(k))):
            pass

    subjects = {
        "poolkit": ours,
        "gather+Semaphore": gather_sem,
        "asyncio-pool": _asyncio_pool_map(),
    }
    for subject, body in subjects.items():
        if body is not None:
            ns = ctx.time_ns_per_op(on_loop(body), n)
            ctx.record("AsyncWorkerPool map, trivial coroutines", subject, "ops_per_s", 1e9 / ns)


def _aiojobs() -> Callable[[int], Coroutine[Any, Any, None]] | None:
    if not peer_installed("aiojobs", "aiojobs"):
        return None
    import aiojobs

    async def body(k: int) -> None:
        scheduler = aiojobs.Scheduler(limit=ASYNC_WORKERS, pending_limit=0)
        for _ in range(k):
            await scheduler.spawn(anoop())
        await scheduler.wait_and_close()

    return body


def _asyncio_pool_map() -> Callable[[int], Coroutine[Any, Any, None]] | None:
    if not peer_installed("asyncio-pool", "asyncio_pool"):
        return None
    from asyncio_pool import AioPool

    async def body(k: int) -> None:
        pool = AioPool(size=ASYNC_WORKERS)
        for _ in await pool.map(ainc, range(k)):
            pass

    return body


def _asyncio_pool() -> Callable[[int], Coroutine[Any, Any, None]] | None:
    if not peer_installed("asyncio-pool", "asyncio_pool"):
        return None
    from asyncio_pool import AioPool

    async def body(k: int) -> None:
        pool = AioPool(size=ASYNC_WORKERS)
        for _ in range(k):
            await pool.spawn_n(anoop())
        await pool.join()

    return body


# ------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc).

    Not ``ru_maxrss``: Linux keeps that high-water mark across ``exec``, so a
    child started by a large benchmark process would inherit its parent's peak.
    """
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def rss_child(ctx: BenchContext) -> None:
    """Peak RSS growth while many tasks pass through one subject (child process)."""
    subject = os.environ["POOLKIT_BENCH_SUBJECT"]
    tasks = int(os.environ["POOLKIT_TASKS"])
    gate = threading.Event()
    base = _rss_bytes()
    peak = base
    if subject == "ThreadPoolExecutor":
        tpe = cf.ThreadPoolExecutor(THREADS)
        for _ in range(THREADS):
            tpe.submit(gate.wait)
        for i in range(tasks):
            tpe.submit(noop)  # nothing bounds the queue: every task waits in memory
            if i % SAMPLE_EVERY == 0:
                peak = max(peak, _rss_bytes())
        peak = max(peak, _rss_bytes())
        gate.set()
        tpe.shutdown()
    else:
        bounded = subject == "poolkit"
        wp = WorkerPool(THREADS, queue_size=1024 if bounded else None)
        if not bounded:
            wp.pause()  # the worst case of an unbounded queue: nothing drains it
        for i in range(tasks):
            wp.go(noop)
            if i % SAMPLE_EVERY == 0:
                peak = max(peak, _rss_bytes())
        peak = max(peak, _rss_bytes())
        wp.resume()
        wp.stop()
    ctx.record("WorkerPool 1M tasks queued, peak RSS", subject, "bytes", max(0, peak - base))
