"""Which queue to poll first: goworker's priority and weighted orders.

* Priority (strict) order, ``["high", "low"]`` or ``"high,low"``: every poll
  tries ``high`` first and takes ``low`` only when ``high`` is empty, then
  starts from ``high`` again after each job (Resque's ``reserve``).
* Weighted, ``"high=2,low=1"`` or ``{"high": 2, "low": 1}``: the weights
  expand to ``[high, high, low]`` and each poll walks a random permutation
  of that list (first occurrence wins), so ``high`` comes first two polls in
  three and a busy ``high`` cannot starve ``low`` (goworker's ``queues.go``).

Pure functions over a ``random.Random`` the caller owns, so tests seed it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["QueueOrder", "parse_queues"]

# Characters Resque reads as a glob over <ns>:queues; goworker refuses them
# too. Listing the queues keeps the worker id and its priorities explicit.
_GLOB = frozenset("*?{}[]")


@dataclass(frozen=True)
class QueueOrder:
    """The queues a worker serves and how it orders them on each poll.

    Attributes:
        names: the distinct queue names, in the order given.
        weights: each name's weight (all 1 in strict order).
        strict: poll in the given order (no weight was given).
    """

    names: tuple[str, ...]
    weights: tuple[int, ...]
    strict: bool

    def order(self, rng: random.Random) -> list[str]:
        """The queues to try, in order, for one poll."""
        if self.strict:
            return list(self.names)
        expanded = [n for n, w in zip(self.names, self.weights, strict=True) for _ in range(w)]
        rng.shuffle(expanded)
        return list(dict.fromkeys(expanded))


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"queues must hold queue names (str), got {type(name).__name__} {name!r}")
    name = name.strip()
    if not name:
        raise ValueError("queues must not hold an empty queue name")
    bad = sorted(set(name) & (_GLOB | {",", ":", "="}))
    if bad:
        raise ValueError(
            f"queue name {name!r} contains {''.join(bad)!r}: list the queues by name "
            "(globs such as '*' are not supported; weights go as 'name=2')"
        )
    return name


def _check_weight(name: str, weight: object) -> int:
    if isinstance(weight, str):
        if not weight.strip().isdigit():
            raise ValueError(f"queues: weight of {name!r} must be an int >= 1, got {weight!r}")
        weight = int(weight)
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError(
            f"queues: weight of {name!r} must be an int >= 1, got {type(weight).__name__}"
        )
    if weight < 1:
        raise ValueError(f"queues: weight of {name!r} must be an int >= 1, got {weight}")
    return weight


def parse_queues(queues: object) -> QueueOrder:
    """Parse a queue spec: ``"high,low"``, ``"high=2,low=1"``, a list, or a mapping.

    A list may mix plain names and ``name=weight`` entries. Giving any weight
    switches to weighted order, as in goworker (missing weights are 1).

    Raises:
        TypeError: not a str, sequence of str or mapping of str to int.
        ValueError: no queue, an empty or repeated name, a glob, a bad weight.
    """
    entries: list[tuple[str, object]] = []
    strict = True
    if isinstance(queues, Mapping):
        strict = False
        entries = [(_check_name(k), v) for k, v in queues.items()]
    elif isinstance(queues, str | Sequence) and not isinstance(queues, bytes):
        items = queues.split(",") if isinstance(queues, str) else list(queues)
        for item in items:
            if isinstance(item, str) and "=" in item:
                name, _, weight = item.partition("=")
                entries.append((_check_name(name), weight))
                strict = False
            else:
                entries.append((_check_name(item), 1))
    else:
        raise TypeError(
            "queues must be a str ('high,low' or 'high=2,low=1'), a list of names or a "
            f"mapping of name to weight, got {type(queues).__name__}"
        )
    if not entries:
        raise ValueError("queues must name at least one queue")
    names = [name for name, _ in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"queues names {repeated} more than once; give each queue once")
    weights = tuple(_check_weight(name, weight) for name, weight in entries)
    return QueueOrder(tuple(names), weights, strict)
