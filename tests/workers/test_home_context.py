"""A pool's home context: go() without arguments from the context a pool was
created in queues the bare function, and its task sees exactly what a copy of
the submitter's context holds (see poolkit.workers._home).

Each test starts from an empty context, sets the home's variables, creates the
pool, then submits: the state a program is in after ``import psycopg`` (which
sets the decimal context) or any start-up code that sets a variable.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, WorkerPool
from poolkit.workers._home import InEmptyContext, task_of
from tests.workers.conftest import PROMPT

HOME: contextvars.ContextVar[object] = contextvars.ContextVar("home")
OTHER: contextvars.ContextVar[str] = contextvars.ContextVar("other", default="unset")
UNSET = "no value"


class NoEquality:
    """A value whose ``==`` raises, as a NumPy array's truth value does."""

    def __eq__(self, other: object) -> bool:
        raise TypeError("NoEquality cannot be compared")

    __hash__ = object.__hash__


def in_empty_context(fn: Callable[[], None]) -> None:
    contextvars.Context().run(fn)


def run_async(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main()`` on a fresh loop, its Task starting from an empty context."""

    async def bounded() -> None:
        await asyncio.wait_for(main(), PROMPT)

    contextvars.Context().run(asyncio.run, bounded())


def observed() -> tuple[object, str]:
    return HOME.get(UNSET), OTHER.get()


# Tasks interleaved on one worker by both pools' tests: (task, whether it is
# submitted from an empty context rather than the home).
INTERLEAVED = (
    ("dirty", True),
    ("look", True),
    ("dirty", False),
    ("look", True),
    ("broken", True),
    ("look", False),
    ("look", True),
)


def interleaved_seen(box: object) -> list[tuple[str, tuple[object, str]]]:
    """What the tasks of INTERLEAVED record (``broken`` records nothing)."""
    return [
        ("dirty", (UNSET, "unset")),
        ("look", (UNSET, "unset")),
        ("dirty", (box, "unset")),
        ("look", (UNSET, "unset")),
        ("look", (box, "unset")),
        ("look", (UNSET, "unset")),
    ]


def as_queued(queued: list[Any]) -> list[tuple[bool, Any]]:
    """Each queued item as (wrapped in InEmptyContext, the task's function)."""
    return [(type(item) is InEmptyContext, task_of(item)) for item in queued]


def interleaved_as_queued(tasks: dict[str, Any]) -> list[tuple[bool, Any]]:
    """What INTERLEAVED's tasks must be queued as: bare items, no tuple and no
    context copy per task, wrapped exactly when submitted from an empty context."""
    return [(empty, tasks[name]) for name, empty in INTERLEAVED]


# ------------------------------------------------------------------ threads


def recording_put(pool: WorkerPool) -> list[object]:
    """What go() queues from now on: the bare function, or a full tuple."""
    queued: list[object] = []
    put = pool._put

    def record(item: object) -> None:
        queued.append(item)
        put(item)

    pool._put = record
    return queued


def test_thread_tasks_from_home_are_bare_and_see_the_home_objects() -> None:
    box: list[str] = []
    seen: list[tuple[object, str]] = []

    def look() -> None:
        seen.append(observed())

    def main() -> None:
        HOME.set(box)
        with WorkerPool(2) as wp:
            queued = recording_put(wp)
            for _ in range(50):
                wp.go(look)
            wp.wait()
        assert queued == [look] * 50  # the fast path: nothing but the function
        assert len(seen) == 50
        assert all(home is box and other == "unset" for home, other in seen)

    in_empty_context(main)


# How a submitter's context differs from the pool's home, and the home's value.
CHANGES = ["an equal object, not the same", "a value whose == raises", "one more variable"]


def home_value(change: str) -> object:
    return NoEquality() if change == "a value whose == raises" else []


def make_change(change: str) -> None:
    if change == "an equal object, not the same":
        HOME.set([])
    elif change == "a value whose == raises":
        HOME.set(NoEquality())
    else:
        OTHER.set("mine")


@pytest.mark.parametrize("change", CHANGES)
def test_thread_tasks_from_a_changed_context_see_the_submitters_objects(change: str) -> None:
    seen: list[tuple[object, str]] = []

    def look() -> None:
        seen.append(observed())

    def main() -> None:
        HOME.set(home_value(change))
        with WorkerPool(1) as wp:
            queued = recording_put(wp)
            make_change(change)
            mine = observed()
            wp.go(look)
            wp.wait()
        assert type(queued[0]) is tuple  # not the home: the task's own context copy
        assert len(seen) == 1
        assert seen[0][0] is mine[0]
        assert seen[0][1] == mine[1]

    in_empty_context(main)


def test_thread_tasks_from_an_empty_context_do_not_see_a_non_empty_home() -> None:
    seen: list[tuple[object, str]] = []

    def look() -> None:
        seen.append(observed())

    def main() -> None:
        HOME.set([])
        with WorkerPool(1) as wp:
            contextvars.Context().run(wp.go, look)
            wp.wait()
        assert seen == [(UNSET, "unset")]

    in_empty_context(main)


def test_thread_tasks_from_empty_contexts_and_from_home_keep_apart() -> None:
    """Submitters in empty contexts (threads of their own) and at home, their
    tasks interleaved on one worker: each sees its submitter's variables, not
    what the task before it set, and on_error gets the submitted function."""
    box: list[str] = []
    seen: list[tuple[str, tuple[object, str]]] = []
    errors: list[tuple[type[BaseException], object]] = []

    def dirty() -> None:
        seen.append(("dirty", observed()))
        HOME.set("set by a task")
        OTHER.set("dirty")

    def broken() -> None:
        OTHER.set("dirty, then failed")
        raise ValueError("task failed")

    def look() -> None:
        seen.append(("look", observed()))

    tasks = {"dirty": dirty, "look": look, "broken": broken}

    def main() -> None:
        HOME.set(box)
        with WorkerPool(1, on_error=lambda exc, fn: errors.append((type(exc), fn))) as wp:
            queued = recording_put(wp)
            from_empty = contextvars.Context().run
            for name, empty in INTERLEAVED:
                if empty:
                    from_empty(wp.go, tasks[name])
                else:
                    wp.go(tasks[name])
            wp.wait()
        assert seen == interleaved_seen(box)
        assert errors == [(ValueError, broken)]
        assert as_queued(queued) == interleaved_as_queued(tasks)

    in_empty_context(main)


def test_thread_pool_keeps_no_finished_function_alive() -> None:
    """The wrapper go() reuses for tasks from an empty context is held weakly."""

    class Task:
        def __call__(self) -> None:
            pass

    def main() -> None:
        HOME.set([])
        with WorkerPool(1) as wp:
            task = Task()
            alive = weakref.ref(task)
            for _ in range(3):
                contextvars.Context().run(wp.go, task)
            wp.wait()
            del task
            gc.collect()
            assert alive() is None

    in_empty_context(main)


def test_thread_bare_tasks_do_not_see_what_tasks_and_handlers_changed() -> None:
    """From a home holding a variable: a task, a failing task, an on_error
    handler and a done-callback change the variables; the bare task after each
    still sees exactly the home."""
    box: list[str] = []
    seen: list[tuple[object, str]] = []

    def dirty() -> None:
        HOME.set([])
        OTHER.set("dirty")

    def broken() -> None:
        HOME.set([])
        raise ValueError("task failed")

    def on_error(exc: BaseException, fn: object) -> None:
        HOME.set("set by on_error")
        OTHER.set("set by on_error")

    def look() -> None:
        seen.append(observed())

    def main() -> None:
        HOME.set(box)
        with WorkerPool(1, on_error=on_error) as wp:
            for task in (dirty, look, broken, look):
                wp.go(task)
            wp.wait()
            gate = threading.Event()
            fut = wp.submit(gate.wait, PROMPT)
            fut.add_done_callback(lambda _: OTHER.set("set by a done-callback"))
            wp.go(look)
            gate.set()
            wp.wait()
            stats = wp.stats()
        assert len(seen) == 3
        assert all(home is box and other == "unset" for home, other in seen)
        assert (stats.succeeded, stats.failed) == (5, 1)

    in_empty_context(main)


def test_thread_with_worker_bare_tasks_see_the_home() -> None:
    box: list[str] = []
    seen: list[tuple[object, str]] = []

    def look(state: object) -> None:
        assert state == "state"
        seen.append(observed())

    def main() -> None:
        HOME.set(box)
        with WorkerPool.with_worker(lambda: "state", 1) as wp:
            for _ in range(3):
                wp.go(look)  # type: ignore[call-arg]  # the worker object comes first
            wp.wait()
        assert all(home is box for home, _other in seen)
        assert len(seen) == 3

    in_empty_context(main)


# ------------------------------------------------------------------ asyncio


def test_async_tasks_from_home_are_bare_and_see_the_home_objects() -> None:
    box: list[str] = []
    seen: list[tuple[object, str]] = []

    async def look() -> None:
        seen.append(observed())
        await asyncio.sleep(0)
        seen.append(observed())

    async def main() -> None:
        HOME.set(box)
        async with AsyncWorkerPool(2) as ap:
            await ap.go(look)
            await ap.wait()
            queued: list[object] = []
            for _ in range(20):
                await ap.go(look)  # no await on the loop in between: still queued
                queued.append(ap._crew.queue[-1])
            await ap.wait()
        assert queued == [look] * 20  # the fast path: nothing but the function
        assert len(seen) == 42
        assert all(home is box and other == "unset" for home, other in seen)

    run_async(main)


@pytest.mark.parametrize("change", CHANGES)
def test_async_tasks_from_a_changed_context_see_the_submitters_objects(change: str) -> None:
    seen: list[tuple[object, str]] = []

    async def look() -> None:
        seen.append(observed())

    async def main() -> None:
        HOME.set(home_value(change))
        async with AsyncWorkerPool(1) as ap:
            await ap.go(look)
            await ap.wait()
            seen.clear()
            make_change(change)
            mine = observed()
            await ap.go(look)
            assert type(ap._crew.queue[-1]) is tuple  # the task's own context copy
            await ap.wait()
        assert len(seen) == 1
        assert seen[0][0] is mine[0]
        assert seen[0][1] == mine[1]

    run_async(main)


def test_async_tasks_from_an_empty_context_do_not_see_a_non_empty_home() -> None:
    seen: list[tuple[object, str]] = []

    async def look() -> None:
        seen.append(observed())

    async def main() -> None:
        HOME.set([])
        async with AsyncWorkerPool(1) as ap:
            queued: list[object] = []

            async def submit() -> None:
                await ap.go(look)
                queued.append(ap._crew.queue[-1])

            await asyncio.get_running_loop().create_task(submit(), context=contextvars.Context())
            await ap.wait()
        assert seen == [(UNSET, "unset")]
        assert type(queued[0]) is InEmptyContext  # no tuple, no context copy
        assert task_of(queued[0]) is look

    run_async(main)


def test_async_tasks_from_empty_contexts_and_from_home_keep_apart() -> None:
    """Submitting Tasks in empty contexts and at home, their tasks interleaved
    on one worker, some suspending: each sees its submitter's variables, not
    what the task before it set, and on_error gets the submitted function."""
    box: list[str] = []
    seen: list[tuple[str, tuple[object, str]]] = []
    errors: list[tuple[type[BaseException], object]] = []

    async def dirty() -> None:
        seen.append(("dirty", observed()))
        HOME.set("set by a task")
        await asyncio.sleep(0)
        OTHER.set("dirty")

    async def broken() -> None:
        OTHER.set("dirty, then failed")
        raise ValueError("task failed")

    async def look() -> None:
        seen.append(("look", observed()))

    tasks = {"dirty": dirty, "look": look, "broken": broken}

    async def main() -> None:
        HOME.set(box)
        async with AsyncWorkerPool(
            1, on_error=lambda exc, fn: errors.append((type(exc), fn))
        ) as ap:
            queued: list[object] = []

            async def submit(task: Callable[[], Awaitable[None]]) -> None:
                await ap.go(task)
                queued.append(ap._crew.queue[-1])

            loop = asyncio.get_running_loop()
            for name, empty in INTERLEAVED:
                await loop.create_task(
                    submit(tasks[name]), context=contextvars.Context() if empty else None
                )
            await ap.wait()
        assert seen == interleaved_seen(box)
        assert errors == [(ValueError, broken)]
        assert as_queued(queued) == interleaved_as_queued(tasks)

    run_async(main)


def test_async_pool_keeps_no_finished_function_alive() -> None:
    """The wrapper go() reuses for tasks from an empty context is held weakly."""

    class Task:
        async def __call__(self) -> None:
            await asyncio.sleep(0)

    async def main() -> None:
        HOME.set([])
        async with AsyncWorkerPool(1) as ap:
            task: Task | None = Task()
            alive = weakref.ref(task)

            async def submit() -> None:
                for _ in range(3):
                    await ap.go(task)  # type: ignore[arg-type]

            await asyncio.get_running_loop().create_task(submit(), context=contextvars.Context())
            await ap.wait()
            task = None
            gc.collect()
            assert alive() is None

    run_async(main)


def test_async_bare_tasks_do_not_see_what_tasks_and_handlers_changed() -> None:
    """From a home holding a variable: tasks (before and after suspending), a
    failing task, an initializer and an on_error handler change the
    variables; every bare task after them still sees exactly the home."""
    box: list[str] = []
    seen: list[tuple[object, str]] = []

    async def dirty() -> None:
        HOME.set([])

    async def dirty_after_suspending() -> None:
        await asyncio.sleep(0)
        OTHER.set("dirty later")

    async def broken() -> None:
        HOME.set([])
        raise ValueError("task failed")

    def init() -> None:
        OTHER.set("set by the initializer")

    def on_error(exc: BaseException, fn: object) -> None:
        HOME.set("set by on_error")

    async def look() -> None:
        seen.append(observed())

    async def main() -> None:
        HOME.set(box)
        async with AsyncWorkerPool(1, initializer=init, on_error=on_error) as ap:
            for task in (look, dirty, look, dirty_after_suspending, look, broken, look, look):
                await ap.go(task)
            await ap.wait()
            stats = ap.stats()
        assert len(seen) == 5
        assert all(home is box and other == "unset" for home, other in seen)
        assert (stats.succeeded, stats.failed) == (7, 1)

    run_async(main)


def test_async_tasks_from_a_sibling_task_in_the_same_context_are_bare() -> None:
    """A pool created in one Task and fed from another Task started from the
    same context: the other Task's context is a copy, still at home."""
    box: list[str] = []
    seen: list[tuple[object, str]] = []
    queued: list[object] = []

    async def look() -> None:
        seen.append(observed())

    async def main() -> None:
        HOME.set(box)
        async with AsyncWorkerPool(1) as ap:
            await ap.go(look)
            await ap.wait()

            async def feed() -> None:
                await ap.go(look)
                queued.append(ap._crew.queue[-1])

            await asyncio.get_running_loop().create_task(feed())
            await ap.wait()
        assert queued == [look]
        assert len(seen) == 2
        assert all(home is box and other == "unset" for home, other in seen)

    run_async(main)


# ------------------------------------------------------------------ stress


def test_thread_hammer_from_home_empty_and_other_contexts_loses_nothing() -> None:
    """Six threads submit at once, two from the home, two from empty contexts,
    two from contexts of their own; every task adds a child task, then
    dirties its context. Every task runs once and sees exactly its
    submitter's variables."""
    box: list[str] = []
    per_thread = 1500
    kinds = ("home", "empty", "own")
    seen: list[tuple[str, bool]] = []  # list.append is atomic
    wrong: list[tuple[str, tuple[object, str]]] = []

    def expected(kind: str) -> tuple[object, str]:
        return {"home": (box, "unset"), "empty": (UNSET, "unset"), "own": (UNSET, "own")}[kind]

    def main() -> None:
        HOME.set(box)
        with WorkerPool(4) as wp:

            def make_task(kind: str, child: bool) -> Callable[[], None]:
                def task() -> None:
                    values = observed()
                    want = expected(kind)
                    if values[0] is not want[0] or values[1] != want[1]:
                        wrong.append((kind, values))
                    seen.append((kind, child))
                    if not child:
                        wp.go(children[kind])  # from the task's context: the same kind
                    HOME.set([])  # then dirty whatever context this task runs in
                    OTHER.set("dirty")

                return task

            tasks = {kind: make_task(kind, False) for kind in kinds}
            children = {kind: make_task(kind, True) for kind in kinds}

            def submit(kind: str) -> None:
                if kind == "own":
                    OTHER.set("own")
                for _ in range(per_thread):
                    wp.go(tasks[kind])

            home = contextvars.copy_context()

            def submitter(kind: str) -> None:
                # A new thread's context is empty: the home's copy for "home".
                (home.copy() if kind == "home" else contextvars.Context()).run(submit, kind)

            threads = [
                threading.Thread(target=submitter, args=(kind,)) for kind in kinds for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(PROMPT)
            wp.wait()
            stats = wp.stats()
        assert wrong == []
        for kind in kinds:
            for child in (False, True):
                assert seen.count((kind, child)) == 2 * per_thread, (kind, child)
        assert stats.succeeded == len(seen) == 6 * 2 * per_thread
        assert stats.failed == 0

    in_empty_context(main)


def test_async_tasks_from_home_and_elsewhere_adding_tasks_lose_nothing() -> None:
    """Twenty submitting Tasks, from the home, empty contexts and contexts of
    their own, each task dirtying its context, suspending and adding a child:
    every task runs once and sees exactly its submitter's variables."""
    box: list[str] = []
    per_task = 300
    seen: list[tuple[str, bool]] = []
    wrong: list[tuple[str, tuple[object, str]]] = []

    def expected(kind: str) -> tuple[object, str]:
        # "own": a copy of the home with one more variable set.
        return {"home": (box, "unset"), "empty": (UNSET, "unset"), "own": (box, "own")}[kind]

    async def main() -> None:
        HOME.set(box)
        async with AsyncWorkerPool(8) as ap:

            def make_task(kind: str, child: bool) -> Callable[[], Awaitable[None]]:
                async def task() -> None:
                    values = observed()
                    want = expected(kind)
                    if values[0] is not want[0] or values[1] != want[1]:
                        wrong.append((kind, values))
                    if not child:
                        await ap.go(children[kind])  # from the task's context: the same kind
                    HOME.set([])  # then dirty it, before and after suspending
                    await asyncio.sleep(0)
                    OTHER.set("dirty")
                    seen.append((kind, child))

                return task

            kinds = ("home", "empty", "own")
            tasks = {kind: make_task(kind, False) for kind in kinds}
            children = {kind: make_task(kind, True) for kind in kinds}

            async def submit(kind: str) -> None:
                if kind == "own":
                    OTHER.set("own")
                for i in range(per_task):
                    await ap.go(tasks[kind])
                    if i % 50 == 0:
                        await asyncio.sleep(0)

            loop = asyncio.get_running_loop()
            submitters = [
                loop.create_task(
                    submit(kind),
                    context=contextvars.Context() if kind == "empty" else None,
                )
                for kind in kinds
                for _ in range(7 if kind == "home" else 6)
            ]
            await asyncio.gather(*submitters)
            await ap.wait()
            stats = ap.stats()
        assert wrong == []
        counts = {"home": 7, "empty": 6, "own": 6}
        for kind, submitters_of_kind in counts.items():
            for child in (False, True):
                assert seen.count((kind, child)) == submitters_of_kind * per_task, (kind, child)
        assert stats.succeeded == len(seen) == 2 * 19 * per_task
        assert stats.failed == 0

    run_async(main)
