"""Bad input is refused at the call, naming the parameter (no silent coercion,
no late failure in the error log); and submit/go pass every keyword to ``fn``
(the Executor contract)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import pytest

from poolkit import AsyncWorkerPool, WorkerPool
from poolkit.workers import FuncPool, MultiPool
from tests.workers.async_helpers import run
from tests.workers.conftest import PROMPT

NOT_CALLABLE: Any = 42


def thread_entry_points(wp: WorkerPool) -> dict[str, Callable[[], object]]:
    return {
        "go": lambda: wp.go(NOT_CALLABLE),
        "submit": lambda: wp.submit(NOT_CALLABLE),
        "try_submit": lambda: wp.try_submit(NOT_CALLABLE),
        "submit_wait": lambda: wp.submit_wait(NOT_CALLABLE),
        "submit_before": lambda: wp.submit_before(5.0, NOT_CALLABLE),
        "map": lambda: wp.map(NOT_CALLABLE, [1]),
        "group.submit": lambda: wp.group().submit(NOT_CALLABLE),
        "group.go": lambda: wp.group().go(NOT_CALLABLE),
    }


THREAD_ENTRIES = [
    "go",
    "submit",
    "try_submit",
    "submit_wait",
    "submit_before",
    "map",
    "group.submit",
    "group.go",
]


@pytest.mark.parametrize("entry", THREAD_ENTRIES)
def test_thread_pool_refuses_a_non_callable_at_the_call(entry: str) -> None:
    errors: list[BaseException] = []
    with WorkerPool(2, on_error=lambda exc, task: errors.append(exc)) as wp:
        with pytest.raises(TypeError, match=r"^fn must be callable, got int 42"):
            thread_entry_points(wp)[entry]()
        wp.wait(PROMPT)
        assert wp.stats().submitted == 0
    assert errors == []


def test_multipool_and_funcpool_refuse_a_non_callable() -> None:
    with MultiPool(2, 1) as mp:
        with pytest.raises(TypeError, match=r"^fn must be callable"):
            mp.go(NOT_CALLABLE)
        with pytest.raises(TypeError, match=r"^fn must be callable"):
            mp.submit(NOT_CALLABLE)
        assert mp.stats().submitted == 0
    with pytest.raises(TypeError, match=r"^fn must be callable"):
        FuncPool(NOT_CALLABLE)


async def _entry(ap: AsyncWorkerPool, name: str) -> object:
    if name == "go":
        await ap.go(NOT_CALLABLE)
        return None
    if name == "go_nowait":
        ap.go_nowait(NOT_CALLABLE)
        return None
    if name == "submit":
        return await ap.submit(NOT_CALLABLE)
    if name == "submit_nowait":
        return ap.submit_nowait(NOT_CALLABLE)
    if name == "try_submit":
        return ap.try_submit(NOT_CALLABLE)
    if name == "submit_wait":
        return await ap.submit_wait(NOT_CALLABLE)
    if name == "submit_before":
        return await ap.submit_before(5.0, NOT_CALLABLE)
    if name == "map":
        return ap.map(NOT_CALLABLE, [1])
    if name == "group.submit":
        return await ap.group().submit(NOT_CALLABLE)
    assert name == "group.go"
    await ap.group().go(NOT_CALLABLE)
    return None


ASYNC_ENTRIES = [
    "go",
    "go_nowait",
    "submit",
    "submit_nowait",
    "try_submit",
    "submit_wait",
    "submit_before",
    "map",
    "group.submit",
    "group.go",
]


@pytest.mark.parametrize("entry", ASYNC_ENTRIES)
@pytest.mark.parametrize("eager", [True, False])
def test_async_pool_refuses_a_non_callable_at_the_call(entry: str, eager: bool) -> None:
    async def main() -> None:
        errors: list[BaseException] = []
        async with AsyncWorkerPool(2, eager=eager, on_error=lambda e, t: errors.append(e)) as ap:
            with pytest.raises(TypeError, match=r"^fn must be callable, got int 42"):
                await _entry(ap, entry)
            await ap.wait(PROMPT)
            assert ap.stats().submitted == 0
        assert errors == []

    run(main())


def plain(x: int) -> int:
    return x


@pytest.mark.parametrize("eager", [True, False])
def test_async_pool_names_a_plain_function_that_returned_no_coroutine(eager: bool) -> None:
    """A plain function cannot be told from one returning a coroutine before it
    runs; when it returns something else the task fails with a TypeError that
    says so, not with ``'int' object has no attribute 'send'``."""

    async def main() -> None:
        errors: list[BaseException] = []
        async with AsyncWorkerPool(2, eager=eager, on_error=lambda e, t: errors.append(e)) as ap:
            fut: asyncio.Future[Any] = await ap.submit(plain, 3)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"must be a coroutine function.*returned int"):
                await fut
            await ap.go(plain, 4)  # type: ignore[arg-type]
            await ap.wait(PROMPT)
        assert len(errors) == 1
        assert isinstance(errors[0], TypeError)
        assert "returned int" in str(errors[0])

    run(main())


def test_async_pool_names_a_bare_plain_function_that_returned_no_coroutine() -> None:
    """The same for a go() without arguments from an empty context, which the
    worker awaits right in its loop (the bare function, no tuple)."""

    def five() -> int:
        return 5

    async def main() -> None:
        errors: list[BaseException] = []
        async with AsyncWorkerPool(2, on_error=lambda e, t: errors.append(e)) as ap:
            await ap.go(five)  # type: ignore[arg-type]
            await ap.wait(PROMPT)
        assert len(errors) == 1
        assert isinstance(errors[0], TypeError)
        assert "returned int" in str(errors[0])

    contextvars.Context().run(run, main())  # an empty context: the bare path


def test_an_attribute_error_named_send_from_the_task_is_not_rewritten() -> None:
    async def task() -> None:
        await asyncio.sleep(0)
        object().send  # type: ignore[attr-defined]  # noqa: B018

    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            with pytest.raises(AttributeError):
                await (await ap.submit(task))

    run(main())


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda wp: wp.stop(wait="yes"), "wait"),
        (lambda wp: wp.stop(cancel_pending=1), "cancel_pending"),
        (lambda wp: wp.shutdown(cancel_futures="no"), "cancel_futures"),
        (lambda wp: wp.shutdown(wait=0), "wait"),
        (lambda wp: wp.map(abs, [1], ordered="no"), "ordered"),
        (lambda wp: wp.map(abs, [1], progress=1), "progress"),
        (lambda wp: wp.group(cancel_on_error=1), "cancel_on_error"),
    ],
)
def test_thread_pool_flags_are_not_coerced(call: Callable[[Any], object], param: str) -> None:
    with WorkerPool(1) as wp:
        with pytest.raises(TypeError, match=rf"^{param} must be"):
            call(wp)
        assert not wp.closed


@pytest.mark.parametrize(
    ("options", "param"),
    [({"nonblocking": 1}, "nonblocking"), ({"eager": "yes"}, "eager")],
)
def test_constructor_flags_are_not_coerced(options: dict[str, Any], param: str) -> None:
    with pytest.raises(TypeError, match=rf"^{param} must be"):
        AsyncWorkerPool(1, **options)
    if param == "nonblocking":
        with pytest.raises(TypeError, match=rf"^{param} must be"):
            WorkerPool(1, **options)


def test_multipool_stop_flags_are_checked_before_stopping_anything() -> None:
    with MultiPool(2, 1) as mp:
        with pytest.raises(TypeError, match=r"^wait must be"):
            mp.stop(wait="no")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^cancel_futures must be"):
            mp.shutdown(cancel_futures=1)  # type: ignore[arg-type]
        assert not any(p.closed for p in mp.pools)


def test_async_flags_are_not_coerced() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(1) as ap:
            with pytest.raises(TypeError, match=r"^ordered must be"):
                ap.map(abs, [1], ordered="no")  # type: ignore[call-overload]
            with pytest.raises(TypeError, match=r"^wait must be"):
                await ap.stop(wait="no")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"^cancel_pending must be"):
                await ap.stop(cancel_pending=1)  # type: ignore[arg-type]
            assert not ap.closed

    run(main())


def keywords(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def akeywords(**kwargs: Any) -> dict[str, Any]:
    return kwargs


# Names a pool could be tempted to take for itself.
KEYWORDS = {"timeout": 3, "deadline": 4, "fn": 5, "callback": 6, "name": 7}


def test_thread_pools_pass_every_keyword_to_fn() -> None:
    with WorkerPool(2) as wp:
        assert wp.submit(keywords, **KEYWORDS).result(PROMPT) == KEYWORDS
        assert wp.try_submit(keywords, **KEYWORDS).result(PROMPT) == KEYWORDS  # type: ignore[union-attr]
        assert wp.submit_wait(keywords, **KEYWORDS) == KEYWORDS
        assert wp.submit_before(PROMPT, keywords, **KEYWORDS).result(PROMPT) == KEYWORDS
        got: list[dict[str, Any]] = []
        wp.go(lambda **kw: got.append(keywords(**kw)), **KEYWORDS)
        wp.wait(PROMPT)
        assert got == [KEYWORDS]
        g = wp.group()
        g.submit(keywords, **KEYWORDS)
        assert g.wait(PROMPT) == [KEYWORDS]
    with MultiPool(2, 1) as mp:
        assert mp.submit(keywords, **KEYWORDS).result(PROMPT) == KEYWORDS


def test_async_pool_passes_every_keyword_to_fn() -> None:
    async def main() -> None:
        async with AsyncWorkerPool(2) as ap:
            assert await (await ap.submit(akeywords, **KEYWORDS)) == KEYWORDS
            assert await ap.submit_nowait(akeywords, **KEYWORDS) == KEYWORDS
            assert await ap.submit_wait(akeywords, **KEYWORDS) == KEYWORDS
            assert await (await ap.submit_before(PROMPT, akeywords, **KEYWORDS)) == KEYWORDS
            g = ap.group()
            await g.submit(akeywords, **KEYWORDS)
            assert await g.wait(PROMPT) == [KEYWORDS]

    run(main())
