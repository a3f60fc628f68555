"""The sqlite demo part runs end to end in quick mode."""

from __future__ import annotations

import io
from pathlib import Path

from poolkit._demo import sqlite
from poolkit._demo._report import PARTS, DemoContext
from tests.optional import require


def test_sqlite_demo_part_compares_a_connection_per_query_with_the_pool(tmp_path: Path) -> None:
    require("matplotlib", "cli")  # the part draws its chart
    section = sqlite.run(DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO()))
    opened = {(row[0], row[1]): row[5] for row in section.rows}
    assert opened[("new connection per query", 1)] == 400
    assert opened[("poolkit sqlite_pool", 1)] == 1
    assert 1 <= int(str(opened[("poolkit sqlite_pool", sqlite.THREADS)])) <= sqlite.THREADS
    assert (tmp_path / "sqlite_throughput.png").exists()
    assert len(section.findings) == 2
    assert PARTS["sqlite"] == "poolkit._demo.sqlite"
