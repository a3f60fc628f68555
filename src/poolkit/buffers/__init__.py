"""Object and buffer pools, and the retention policies that keep them bounded.

Names load on first use: each pool imports only its own module.
"""

from __future__ import annotations

from poolkit import _lazy

TYPE_CHECKING = False  # see poolkit/__init__.py: typing is not imported at run time
if TYPE_CHECKING:
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

_EXPORTS = {
    "BoundedBufferPool": "poolkit.buffers._bpool",
    "BoundedPoolStats": "poolkit.buffers._bpool",
    "BytesPool": "poolkit.buffers._bpool",
    "SizedBufferPool": "poolkit.buffers._bpool",
    "BufferPool": "poolkit.buffers._buffer_pool",
    "BufferPoolStats": "poolkit.buffers._buffer_pool",
    "BufferExportedError": "poolkit.buffers._bytebuffer",
    "ByteBuffer": "poolkit.buffers._bytebuffer",
    "ByteBufferPool": "poolkit.buffers._bytebuffer_pool",
    "ByteBufferPoolStats": "poolkit.buffers._bytebuffer_pool",
    "ObjectPool": "poolkit.buffers._object",
    "ObjectPoolStats": "poolkit.buffers._object",
    "Calibrated": "poolkit.buffers.retention",
    "KeepAll": "poolkit.buffers.retention",
    "MaxCapacity": "poolkit.buffers.retention",
    "RetentionPolicy": "poolkit.buffers.retention",
    "Utilization": "poolkit.buffers.retention",
    "Verdict": "poolkit.buffers.retention",
    "accept_by_capacity": "poolkit.buffers.retention",
}


__dir__ = _lazy.listing(__name__, __all__)
if not TYPE_CHECKING:  # so that type checkers flag a misspelt name
    __getattr__ = _lazy.loader(__name__, _EXPORTS)
