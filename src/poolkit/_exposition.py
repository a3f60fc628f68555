"""Reading Prometheus' text format: the samples of a ``/metrics`` page, and quantiles.

``poolkit top`` and the demo read a scrape with this small parser rather than
prometheus-client's, so that watching an endpoint needs nothing but the
standard library (the endpoint itself is served by prometheus-client, see
:mod:`poolkit.integrations.prometheus`). It reads what the text format 0.0.4
and OpenMetrics put on a sample line, ``name{label="value",...} value
[timestamp]``, with the escapes of label values (``\\\\``, ``\\"``, ``\\n``);
comment lines (``# HELP``, ``# TYPE``, ``# EOF``) are skipped. Anything else
is refused with the line's number, so a page that is not Prometheus text (an
HTML error page, a JSON API) is told apart from an empty one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = ["Sample", "parse", "quantile"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class Sample(NamedTuple):
    """One sample line: the metric name, its labels and value."""

    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text page, in order.

    Raises:
        ValueError: a line is not a sample nor a comment (the message names it).
    """
    samples = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            samples.append(_sample(line))
        except ValueError as exc:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise ValueError(f"line {number} is not Prometheus text ({exc}): {shown!r}") from None
    return samples


def _sample(line: str) -> Sample:
    name = _NAME.match(line)
    if name is None:
        raise ValueError("no metric name")
    rest = line[name.end() :]
    labels: dict[str, str] = {}
    if rest.startswith("{"):
        rest = rest[1:]
        while not rest.lstrip().startswith("}"):
            label = _LABEL.match(rest)
            if label is None:
                raise ValueError("bad label")
            value = re.sub(r"\\.", lambda m: _ESCAPES.get(m.group(), m.group()), label.group(2))
            labels[label.group(1)] = value
            rest = rest[label.end() :]
            if not label.group(3) and not rest.lstrip().startswith("}"):
                raise ValueError("labels not closed")
        rest = rest.lstrip()[1:]
    fields = rest.split()
    if not rest[:1].isspace() or not 1 <= len(fields) <= 2:
        raise ValueError("no value")
    return Sample(name.group(), labels, float(fields[0]))  # float() reads +Inf, NaN


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The ``q``-quantile (0..1) of a histogram from its cumulative ``(le, count)`` buckets.

    As PromQL's ``histogram_quantile``: linear inside the bucket holding the
    rank, the first bucket starting at 0; a rank in the ``+Inf`` bucket gives
    the highest finite bound. NaN when the histogram is empty.
    """
    ordered: Sequence[tuple[float, float]] = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    low_le, low_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return low_le
            if count == low_count:
                return le
            return low_le + (le - low_le) * (rank - low_count) / (count - low_count)
        low_le, low_count = le, count
    return low_le
