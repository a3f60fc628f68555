"""Which servers of a sharded client are out of rotation: pymemcache ``HashClient``'s rules.

Sans-io and single-purpose: the client reports each operation's outcome on a
server and asks which servers are live; this module keeps the counts on the
client's clock and decides. The client holds its lock around every call.

- A server that fails (a socket error, a hang-up) is not tried again for
  ``retry_timeout`` seconds: operations on its keys fail fast meanwhile.
- After ``retry_attempts`` further failures in a row it is *ejected* for
  ``dead_timeout`` seconds: the client's ring no longer holds it, so its keys
  go to the live servers (as cache misses at first).
- Once ``dead_timeout`` has passed it is back in the ring on probation: one
  more failure ejects it again at once; one success clears its record.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Ejections"]


@dataclass
class _Record:
    failures: int
    retry_at: float
    dead_until: float | None = None


class Ejections:
    """The failure records of the servers that failed lately.

    Args:
        retry_attempts: failures tolerated after the first before ejection (>= 0).
        retry_timeout: seconds a failed server is not tried (>= 0).
        dead_timeout: seconds an ejected server stays out of the ring (> 0).
    """

    def __init__(self, retry_attempts: int, retry_timeout: float, dead_timeout: float) -> None:
        self.retry_attempts = retry_attempts
        self.retry_timeout = retry_timeout
        self.dead_timeout = dead_timeout
        self.records: dict[str, _Record] = {}
        # The earliest time an ejected server comes back (inf: none ejected).
        self.next_revival = float("inf")
        self.ejected_total = 0

    def failed(self, server: str, now: float) -> bool:
        """``server`` failed an operation; True when that ejects it (the ring must change)."""
        record = self.records.get(server)
        if record is None:
            record = self.records[server] = _Record(failures=0, retry_at=now)
        record.failures += 1
        record.retry_at = now + self.retry_timeout
        if record.dead_until is None and record.failures > self.retry_attempts:
            record.dead_until = now + self.dead_timeout
            self.next_revival = min(self.next_revival, record.dead_until)
            self.ejected_total += 1
            return True
        return False

    def succeeded(self, server: str) -> None:
        """An operation on ``server`` worked: forget its failures."""
        record = self.records.get(server)
        if record is not None and record.dead_until is None:
            del self.records[server]

    def blocked_until(self, server: str, now: float) -> float | None:
        """When ``server`` may be tried again, if it failed too recently (else ``None``)."""
        record = self.records.get(server)
        if record is None or record.dead_until is not None or now >= record.retry_at:
            return None
        return record.retry_at

    def revive(self, now: float) -> list[str]:
        """The ejected servers whose ``dead_timeout`` is over: back in the ring, on probation."""
        back: list[str] = []
        upcoming = float("inf")
        for server, record in self.records.items():
            if record.dead_until is None:
                continue
            if now >= record.dead_until:
                record.dead_until = None
                # One more failure ejects it again; the next try is allowed now.
                record.failures = self.retry_attempts
                record.retry_at = now
                back.append(server)
            else:
                upcoming = min(upcoming, record.dead_until)
        self.next_revival = upcoming
        return back

    def ejected(self) -> list[str]:
        """The servers out of the ring now."""
        return [s for s, r in self.records.items() if r.dead_until is not None]
