"""A dependency-free progress line for long CLI jobs (demo, bench).

On a terminal it redraws one line in place; elsewhere (CI logs, pipes) it prints
a line at each tenth of the work so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_BAR_WIDTH = 28


class Progress:
    """Progress of one job with a known number of steps.

    Args:
        label: what is being done, shown before the bar.
        total: number of steps; must be positive.
        stream: where to draw (standard error by default, so stdout stays data).
    """

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        if total <= 0:
            raise ValueError(f"total must be positive, got {total!r}")
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._last_tenth = -1
        self._started = time.perf_counter()

    def advance(self, steps: int = 1) -> None:
        """Record ``steps`` more steps done and redraw when useful."""
        self.done = min(self.total, self.done + steps)
        self._draw(final=False)

    def _draw(self, *, final: bool) -> None:
        fraction = self.done / self.total
        tenth = int(fraction * 10)
        if not self._tty and tenth == self._last_tenth:
            return
        self._last_tenth = tenth
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        elapsed = time.perf_counter() - self._started
        text = f"{self.label:<34} [{bar}] {fraction:6.1%} {elapsed:6.1f}s"
        if self._tty:
            self._stream.write("\r" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def __enter__(self) -> Progress:
        self._draw(final=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A block that raised leaves the bar where the work stopped.
        if exc_info[0] is None:
            self.done = self.total
        self._draw(final=True)
