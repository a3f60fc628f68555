"""The docs stay true: every anchor row names a test that exists, every example runs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.optional import require

ROOT = Path(__file__).resolve().parents[1]
DOC_PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# A fenced Python example is run unless its first line says it must not be
# (it needs a server the suite does not start, say).
NO_RUN = "# doc: no-run"
# An example that needs an optional package names it on its first line
# ("# doc: needs cloudpickle"): skipped without it, failed in CI (tests/optional.py).
NEEDS = "# doc: needs "
# The poolkit extra that installs each package an example may need.
EXTRA_OF = {
    "cloudpickle": "cloudpickle",
    "pymemcache": "memcache",
    "psycopg": "postgres",
    "sqlalchemy": "sqlalchemy",
}
EXTRA_OF |= {"prometheus_client": "prometheus", "opentelemetry.sdk": "dev"}
_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_NODE_ID = re.compile(r"`?(tests/[\w/]+\.py)::([\w:]+)(?:\[[^\]]*\])?`?")


def _mapping_rows(page: Path) -> list[list[str]]:
    """Rows of the page's mapping tables (every table of anchors.md)."""
    rows: list[list[str]] = []
    whole_page = page.name == "anchors.md"
    in_mapping = whole_page
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            in_mapping = whole_page or "anchor" in line.lower()
            continue
        if in_mapping and line.startswith("|") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0].lower() != "anchor":
                rows.append(cells)
    return rows


def _defined_names(path: Path) -> set[str]:
    """Test functions and classes defined in a test module, with Class::method paths."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return names


def test_anchors_page_exists_and_has_rows() -> None:
    rows = _mapping_rows(ROOT / "docs" / "anchors.md")
    assert len(rows) >= 20, "docs/anchors.md must map every anchor's API, row by row"


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.name)
def test_every_anchor_row_names_an_existing_test(page: Path) -> None:
    """Each mapping row ends with a pytest node id, and that test exists."""
    missing: list[str] = []
    for cells in _mapping_rows(page):
        match = _NODE_ID.search(cells[-1])
        if match is None:
            missing.append(f"row without a test node id: {cells}")
            continue
        test_file, name = ROOT / match.group(1), match.group(2)
        if not test_file.is_file() or name not in _defined_names(test_file):
            missing.append(f"{match.group(0)} (row {cells[:2]})")
    assert missing == []


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in DOC_PAGES:
        for index, match in enumerate(_FENCE.finditer(page.read_text(encoding="utf-8"))):
            code = match.group(1)
            if not code.lstrip().startswith(NO_RUN):
                found.append((f"{page.name}#{index}", code))
    return found


@pytest.mark.parametrize(("where", "code"), _examples(), ids=[w for w, _ in _examples()])
def test_doc_example_runs(where: str, code: str, tmp_path: Path) -> None:
    """Every Python example in the README and docs/ runs as written, with no deprecated name."""
    first_line = code.lstrip().split("\n", 1)[0]
    if first_line.startswith(NEEDS):
        for module in first_line.removeprefix(NEEDS).split():
            require(module, EXTRA_OF[module])
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stderr}"


# Every anchor DESIGN.md names for the families that exist; each must have rows.
REQUIRED_ANCHORS = [
    "sync.Pool",
    "fmt",
    "encoding/json",
    "net/http",
    "bucketpool",
    "bytebufferpool",
    "bpool",
    "NewBufferPool",
    "NewBytePool",
    "NewSizedBufferPool",
    "fatih/pool",
    "database/sql",
    "net/http Transport",
    "gomemcache",
    "psycopg_pool",
    "SQLAlchemy",
    "urllib3",
    "pymemcache",
    "gammazero/workerpool",
    "ivpusic/grpool",
    "dpaks/goworkers",
    "panjf2000/ants",
    "Jeffail/tunny",
    "go-playground/pool",
    "Sherifabdlnaby/gpool",
    "alitto/pond",
    "concurrent.futures",
    "ProcessPoolExecutor",
    "multiprocessing.Pool",
    "pebble",
    "loky",
    "benmanns/goworker",
    "Dask distributed",
]


@pytest.mark.parametrize("anchor", REQUIRED_ANCHORS)
def test_anchors_page_covers_every_named_anchor(anchor: str) -> None:
    rows = _mapping_rows(ROOT / "docs" / "anchors.md")
    assert any(anchor in " ".join(cells[:2]) for cells in rows), f"no row maps {anchor}"


def test_stats_page_lists_every_exported_metric_as_the_exporters_name_it() -> None:
    """docs/stats.md's table of names is the exporters' table, row for row."""
    from poolkit.integrations._metrics import CLOSED, METRICS

    text = (ROOT / "docs" / "stats.md").read_text(encoding="utf-8")
    table = text.split("| field | families | kind | Prometheus | OpenTelemetry |")[1]
    rows = [
        [c.strip().strip("`") for c in line.strip("|").split("|")]
        for line in table.strip().splitlines()[1:]
        if line.startswith("|")
    ]
    documented = [(r[0], r[2], r[3].split("`")[0], r[4]) for r in rows]
    expected = [
        (s.field, s.kind, s.name + ("_total" if s.kind == "counter" else ""), s.otel_name)
        for s in (*METRICS, CLOSED)
    ]
    assert documented == expected
