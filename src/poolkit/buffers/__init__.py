"""Object and buffer pools, and the retention policies that keep them bounded."""

from __future__ import annotations

from poolkit.buffers._bpool import (
    BoundedBufferPool,
    BoundedPoolStats,
    BytesPool,
    SizedBufferPool,
)
from poolkit.buffers._buffer_pool import BufferPool, BufferPoolStats
from poolkit.buffers._bytebuffer import BufferExportedError, ByteBuffer
from poolkit.buffers._bytebuffer_pool import ByteBufferPool, ByteBufferPoolStats
from poolkit.buffers._object import ObjectPool, ObjectPoolStats
from poolkit.buffers.retention import (
    Calibrated,
    KeepAll,
    MaxCapacity,
    RetentionPolicy,
    Utilization,
    Verdict,
    accept_by_capacity,
)

__all__ = [
    "BoundedBufferPool",
    "BoundedPoolStats",
    "BufferExportedError",
    "BufferPool",
    "BufferPoolStats",
    "ByteBuffer",
    "ByteBufferPool",
    "ByteBufferPoolStats",
    "BytesPool",
    "Calibrated",
    "KeepAll",
    "MaxCapacity",
    "ObjectPool",
    "ObjectPoolStats",
    "RetentionPolicy",
    "SizedBufferPool",
    "Utilization",
    "Verdict",
    "accept_by_capacity",
]
