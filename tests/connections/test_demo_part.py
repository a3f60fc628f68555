"""The connections demo part runs end to end in quick mode."""

from __future__ import annotations

import io
from pathlib import Path

from poolkit._demo import connections
from poolkit._demo._report import DemoContext
from tests.optional import require


def test_demo_part_compares_throughput_and_catches_the_leak(tmp_path: Path) -> None:
    require("matplotlib", "cli")  # the part draws its chart
    section = connections.run(DemoContext(out_dir=tmp_path, quick=True, stream=io.StringIO()))
    assert next(row[5] for row in section.rows if row[0] == "poolkit ConnectionPool") == 1
    assert "handle_request_that_forgets_to_release" in section.findings[1]
    assert "31 s on a fake clock" in section.findings[1]  # the run did not wait 31 s
    assert "longest holders" in section.findings[2]
    assert "in handle_request_that_forgets_to_release" in section.findings[2]
    assert (tmp_path / "connections_throughput.png").exists()
