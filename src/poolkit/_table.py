"""Plain-text tables for the CLI (demo and bench print the same way)."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows under headers, columns padded; numbers right-aligned.

    Args:
        headers: column titles.
        rows: one sequence per row, each as long as ``headers``.

    Returns:
        The table as a string, no trailing newline.

    Raises:
        ValueError: a row's length differs from the headers'.
    """
    cells = [[str(h) for h in headers]]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)!r} has {len(row)} cells, headers have {len(headers)}")
        cells.append([str(c) for c in row])
    numeric = [
        all(_looks_numeric(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


# A number, optionally with thousands separators and a unit or ratio suffix
# ("1,234.5 ns", "12.0 MiB", "3.20x", "45%", "1,000/s").
_NUMERIC = re.compile(r"^-?[\d,]+(\.\d+)?\s*(x|%|/s|[a-zA-Zµ]{1,3})?$")


def _looks_numeric(text: str) -> bool:
    return text in ("", "-") or _NUMERIC.match(text) is not None
