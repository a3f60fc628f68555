"""Object and buffer pools, and the retention policies that keep them bounded."""

from __future__ import annotations

from poolkit.buffers.retention import (
    Calibrated,
    KeepAll,
    MaxCapacity,
    RetentionPolicy,
    Utilization,
    Verdict,
)

__all__ = [
    "Calibrated",
    "KeepAll",
    "MaxCapacity",
    "RetentionPolicy",
    "Utilization",
    "Verdict",
]
