"""ByteBufferPool vs io.BytesIO: building responses of mixed sizes.

Each "response" is written in several chunks (a header, then body pieces of
0.5-4 KiB) and then consumed once. The size mix is deterministic and skewed
like typical HTTP/RPC payloads: half are small (200 B - 1 KiB), a few reach
64 KiB. Subjects:

* ``poolkit``: ``ByteBufferPool`` get, write the chunks, ``getvalue()``, put
  (bench ``bytebuffer_mixed_getvalue``); and the same consuming a zero-copy
  ``view()`` (bench ``bytebuffer_mixed_view``).
* ``io.BytesIO``: a new ``BytesIO`` per response, ``getvalue()`` (or
  ``getbuffer()`` for the view bench).
* ``io.BytesIO reused``: one ``BytesIO``, ``seek(0)``/``truncate(0)`` between
  responses (single-threaded only: it is not a pool).
* ``bytes.join``: ``b"".join(chunks)``, the floor when all chunks are at hand.

A second pair of benches builds 1 MiB responses (16 chunks of 64 KiB), where
reuse saves the allocator and page-fault work instead of losing to
per-call overhead: ``bytebuffer_1mib`` on the default heap, and
``bytebuffer_1mib_mmap`` in a child process with
``MALLOC_MMAP_THRESHOLD_=131072`` (every large block is mmap'd, the regime
of a long-running server after heap trimming).
"""

from __future__ import annotations

import io
import os
import random

from poolkit import ByteBufferPool
from poolkit._bench import BenchContext

FAMILY = "buffers"

# (share, smallest, largest) of response sizes in bytes.
SIZE_MIX = ((0.50, 200, 1024), (0.30, 1024, 8192), (0.15, 8192, 32768), (0.05, 32768, 65536))
HEADER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
RESPONSES = 512


def _pick_size(rng: random.Random) -> int:
    """A response size drawn from :data:`SIZE_MIX`."""
    pick = rng.random()
    for share, low, high in SIZE_MIX:
        if pick < share:
            return rng.randint(low, high)
        pick -= share
    _, low, high = SIZE_MIX[-1]
    return rng.randint(low, high)


def make_responses(count: int = RESPONSES, seed: int = 7) -> list[list[bytes]]:
    """Deterministic responses, each a list of chunks (distinct bytes objects)."""
    rng = random.Random(seed)
    blob = rng.randbytes(65536 + 4096)
    out: list[list[bytes]] = []
    for _ in range(count):
        size = _pick_size(rng)
        chunks = [HEADER]
        left = size - len(HEADER)
        while left > 0:
            piece = min(left, rng.randint(512, 4096))
            start = rng.randint(0, 4096)
            chunks.append(blob[start : start + piece])
            left -= piece
        out.append(chunks)
    return out


def run(ctx: BenchContext) -> None:
    """Time building each response with every subject; record ns per response."""
    responses = make_responses()
    number = 2000 if ctx.quick else 20000
    count = len(responses)

    pool = ByteBufferPool()
    get, put = pool.get, pool.put

    def pool_getvalue(n: int) -> None:
        for i in range(n):
            buf = get()
            write = buf.write
            for chunk in responses[i % count]:
                write(chunk)
            len(buf.getvalue())
            put(buf)

    def pool_view(n: int) -> None:
        for i in range(n):
            buf = get()
            write = buf.write
            for chunk in responses[i % count]:
                write(chunk)
            with buf.view() as view:
                len(view)
            put(buf)

    def bytesio_getvalue(n: int) -> None:
        for i in range(n):
            f = io.BytesIO()
            write = f.write
            for chunk in responses[i % count]:
                write(chunk)
            len(f.getvalue())

    def bytesio_view(n: int) -> None:
        for i in range(n):
            f = io.BytesIO()
            write = f.write
            for chunk in responses[i % count]:
                write(chunk)
            with f.getbuffer() as view:
                len(view)

    reused = io.BytesIO()

    def bytesio_reused_getvalue(n: int) -> None:
        f = reused
        write, seek, truncate = f.write, f.seek, f.truncate
        for i in range(n):
            seek(0)
            truncate(0)
            for chunk in responses[i % count]:
                write(chunk)
            len(f.getvalue())

    def bytesio_reused_view(n: int) -> None:
        f = reused
        write, seek, truncate = f.write, f.seek, f.truncate
        for i in range(n):
            seek(0)
            truncate(0)
            for chunk in responses[i % count]:
                write(chunk)
            with f.getbuffer() as view:
                len(view)

    def join(n: int) -> None:
        for i in range(n):
            len(b"".join(responses[i % count]))

    subjects = {
        "ByteBufferPool response, mixed 200 B-64 KiB (getvalue)": (
            ("poolkit", pool_getvalue),
            ("io.BytesIO", bytesio_getvalue),
            ("io.BytesIO reused", bytesio_reused_getvalue),
            ("bytes.join", join),
        ),
        "ByteBufferPool response, mixed 200 B-64 KiB (view)": (
            ("poolkit", pool_view),
            ("io.BytesIO", bytesio_view),
            ("io.BytesIO reused", bytesio_reused_view),
        ),
    }
    for bench, entries in subjects.items():
        for subject, loop in entries:
            ctx.record(bench, subject, "ns_per_op", ctx.time_ns_per_op(loop, number))
    run_big(ctx)
    ctx.run_in_child("run_big", {"MALLOC_MMAP_THRESHOLD_": "131072"})


BIG_CHUNK = 64 * 1024
BIG_CHUNKS = 16  # 1 MiB per response


def run_big(ctx: BenchContext) -> None:
    """1 MiB responses: ByteBufferPool vs a new (or a truncated) io.BytesIO."""
    chunks = [bytes([i]) * BIG_CHUNK for i in range(BIG_CHUNKS)]
    number = 200 if ctx.quick else 2000
    bench = (
        "ByteBufferPool response, 1 MiB [mmap regime]"
        if os.environ.get("MALLOC_MMAP_THRESHOLD_")
        else "ByteBufferPool response, 1 MiB"
    )
    pool = ByteBufferPool()
    get, put = pool.get, pool.put

    def pooled(n: int) -> None:
        for _ in range(n):
            buf = get()
            write = buf.write
            for chunk in chunks:
                write(chunk)
            with buf.view() as view:
                len(view)
            put(buf)

    def fresh(n: int) -> None:
        for _ in range(n):
            f = io.BytesIO()
            write = f.write
            for chunk in chunks:
                write(chunk)
            with f.getbuffer() as view:
                len(view)

    reused = io.BytesIO()

    def reuse(n: int) -> None:
        f = reused
        write, seek, truncate = f.write, f.seek, f.truncate
        for _ in range(n):
            seek(0)
            truncate(0)
            for chunk in chunks:
                write(chunk)
            with f.getbuffer() as view:
                len(view)

    ctx.record(bench, "poolkit", "ns_per_op", ctx.time_ns_per_op(pooled, number))
    ctx.record(bench, "io.BytesIO", "ns_per_op", ctx.time_ns_per_op(fresh, number))
    ctx.record(bench, "io.BytesIO reused", "ns_per_op", ctx.time_ns_per_op(reuse, number))
