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

# Each module and the public names it defines, imported on first use; the
# retention policies (every other name of __all__) come from poolkit.buffers.retention.
_EXPORTS = {
    "poolkit.buffers._bpool": (
        "BoundedBufferPool",
        "BoundedPoolStats",
        "BytesPool",
        "SizedBufferPool",
    ),
    "poolkit.buffers._buffer_pool": ("BufferPool", "BufferPoolStats"),
    "poolkit.buffers._bytebuffer": ("BufferExportedError", "ByteBuffer"),
    "poolkit.buffers._bytebuffer_pool": ("ByteBufferPool", "ByteBufferPoolStats"),
    "poolkit.buffers._object": ("ObjectPool", "ObjectPoolStats"),
}

_lazy.install(__name__, _EXPORTS, rest="poolkit.buffers.retention")
