"""scripts/gen_sync.py's directives: what a ``# locked`` statement becomes in the sync twin."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_sync.py"


@pytest.fixture(scope="module")
def gen_sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sync", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_sync"] = module
    spec.loader.exec_module(module)
    return module


SOURCE = """\
class Pool:
    async def acquire(self):
        now = self._clock()
        if core.idle:  # locked
            entry = core.take()
        else:
            entry = None
        entry = core.checkout(now)  # locked
        await self._after(entry)
"""


def test_a_locked_block_runs_whole_under_the_lock(gen_sync: ModuleType) -> None:
    """The lock is taken inline, with no call between taking it and the try."""
    lines = gen_sync.apply_directives(SOURCE)
    take = [
        "        while True:",
        "            try:",
        "                del self._lock.token[0]",
        "                break",
        "            except IndexError:",
        "                self._lock.wait_turn()",
    ]
    assert lines[2:25] == [
        "        now = self._clock()",
        *take,
        "        try:",
        "            if core.idle:",
        "                entry = core.take()",
        "            else:",
        "                entry = None",
        "        finally:",
        "            self._lock.token.append(True)",
        *take,
        "        try:",
        "            entry = core.checkout(now)",
        "        finally:",
    ]


def test_a_locked_statement_that_awaits_is_refused(gen_sync: ModuleType) -> None:
    source = SOURCE.replace("entry = core.take()", "entry = await core.take()")
    with pytest.raises(SystemExit, match="line 4: a '# locked' statement may not await"):
        gen_sync.apply_directives(source)
    simple = SOURCE.replace("core.checkout(now)  # locked", "await core.checkout(now)  # locked")
    with pytest.raises(SystemExit, match="line 8: a '# locked' statement may not await"):
        gen_sync.apply_directives(simple)
