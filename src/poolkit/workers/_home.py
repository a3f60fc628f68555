"""A pool's home context: the ``contextvars`` context it was created in.

A task must run in a copy of its submitter's context. Copying per task costs
a ``Context`` and a tuple that live in the queue until the task runs; with
many tasks queued, those tracked objects make the garbage collector walk the
queue again and again (a go+wait benchmark runs at 2-3× lower rate). Yet a
submitter's context is most often the very context the pool was created in:
a program sets its variables once at start-up (``import psycopg`` sets the
decimal context), then submits.

So a pool keeps a copy of its creator's context, its *home*. A ``go()``
without arguments whose context :meth:`HomeContext.holds` queues the bare
function, and the worker runs it in a copy of the home: an asyncio worker
reuses one while it still holds the home and replaces it once anything
changes it; a worker thread takes a fresh copy per task. The task sees
exactly what it would see in a copy of its submitter's context: the same
variables, bound to the same objects. A submitter in an empty context, when
the home is not, queues an :class:`InEmptyContext` wrapper instead.

The test is identity, variable by variable, never ``Context.__eq__``: that
compares values with ``==``, so a submitter holding an equal but distinct
list would have its tasks see the home's list, and a value whose ``==`` does
not return a bool (a NumPy array) would make it raise.
"""

from __future__ import annotations

import contextvars
import functools
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["HomeContext", "InEmptyContext", "run_in_new_context", "task_of"]

_UNSET: Any = object()
_new_context = contextvars.Context


def _nothing() -> None:
    """A dead weak reference's answer."""


class HomeContext:
    """A copy of the context a pool was created in (see the module docstring).

    ``holds(ctx)`` tells whether ``ctx`` binds exactly the home's variables
    to the same objects. It is built for the home's size: submitters call it
    per task, and a general loop over one variable costs three times what
    the one-variable test does.
    """

    __slots__ = ("_last_wrapper", "context", "holds", "size")

    def __init__(self) -> None:
        self.context = contextvars.copy_context()
        items = tuple(self.context.items())
        # Read by the submit fast paths: with an empty home, an empty
        # context is at home without a call to holds().
        self.size = len(items)
        self.holds: Callable[[contextvars.Context], bool] = _holds(items)
        self._last_wrapper: Callable[[], InEmptyContext | None] = _nothing

    def in_empty(self, fn: Callable[..., Any]) -> InEmptyContext:
        """The bare item for ``fn`` submitted from an empty context (home not empty).

        The last one made is reused for the same function while a task still
        holds it: weakly, so the pool keeps no finished task's function
        alive. Two submitters racing here cost at most a wrapper each.
        """
        wrapped = self._last_wrapper()
        if wrapped is None or wrapped.args[0] is not fn:
            wrapped = InEmptyContext(run_in_new_context, fn)
            self._last_wrapper = weakref.ref(wrapped)
        return wrapped

    def copy(self) -> contextvars.Context:
        """A fresh context holding the home's variables, for bare tasks to run in."""
        return self.context.copy()


def _holds(
    items: tuple[tuple[contextvars.ContextVar[Any], Any], ...],
) -> Callable[[contextvars.Context], bool]:
    """The identity test for a home holding ``items``."""
    size = len(items)
    if size == 0:

        def holds_nothing(ctx: contextvars.Context) -> bool:
            return not ctx

        return holds_nothing
    if size == 1:
        ((var, value),) = items

        def holds_one(ctx: contextvars.Context) -> bool:
            return len(ctx) == 1 and ctx.get(var, _UNSET) is value

        return holds_one

    def holds_all(ctx: contextvars.Context) -> bool:
        if len(ctx) != size:
            return False
        get = ctx.get
        return all(get(var, _UNSET) is value for var, value in items)

    return holds_all


class InEmptyContext(functools.partial[Any]):
    """A bare item whose function runs in a new empty context.

    ``go()`` queues ``InEmptyContext(run_in_new_context, fn)`` for a
    submitter whose context is empty when the pool's home is not: a thread
    (or a Task) of its own submitting to a pool created after start-up code
    set a variable. The bare function there would run in a copy of the
    home, and a tuple per task costs this case more than half its rate
    (each queued object is one more for the garbage collector to walk), so
    ``go()`` reuses the wrapper for the next task of the same function while
    one is queued or running.

    A WorkerPool worker calls it as a bare function (``item()``,
    ``item(state)``), or, its loop running in an empty context, calls the
    function inside directly. An AsyncWorkerPool worker awaits the function
    inside in an empty context of its own. :func:`task_of` gives the
    function.
    """

    __slots__ = ()


def run_in_new_context(fn: Callable[..., Any], /, *args: Any) -> Any:
    """``fn(*args)`` in a new empty context (see :class:`InEmptyContext`)."""
    return _new_context().run(fn, *args)


def task_of(item: Any) -> Any:
    """The user's function behind a bare item."""
    return item.args[0] if type(item) is InEmptyContext else item
