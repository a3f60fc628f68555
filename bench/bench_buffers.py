"""``poolkit bench buffers``: object, size-class and byte-buffer pools against their peers."""

from __future__ import annotations

from poolkit._bench import BenchContext

FAMILY = "buffers"


def run(ctx: BenchContext) -> None:
    """ObjectPool, BufferPool and ByteBufferPool, each beside its peers."""
    for part in ("buffers_object.py", "buffers_sized.py", "buffers_bytebuffer.py"):
        ctx.include(part)
