"""Demo part ``workers``: one crawl, three ways to fan it out over threads.

The demo starts a small HTTP server on loopback (``ThreadingHTTPServer``, port
0, each page a few KiB after a short simulated backend delay), then fetches the
same list of pages:

* thread-per-task: one ``threading.Thread`` per URL, all started at once;
* ``ThreadPoolExecutor``: every URL submitted up front (its queue is unbounded);
* ``WorkerPool`` with ``queue_size=``: the producer blocks when the queue is
  full, so at most ``workers + queue_size`` URLs are in memory at a time.

Each way runs in a child process of its own so its peak resident memory is
its own; the table and charts put throughput and memory side by side.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from poolkit._demo._measure import rss_bytes, run_child
from poolkit._demo._report import DemoContext, Section

__all__ = ["run"]

# Simulated backend latency per page: the crawl is I/O-bound, as real ones are,
# so threads overlap waiting (and the GIL is released while they wait).
PAGE_DELAY_S = 0.002
PAGE_BYTES = 4096
# Threads for both pools; the bounded pool's queue holds this many URLs more.
WORKERS = 16
QUEUE_SIZE = 64
WAYS = ("thread-per-task", "ThreadPoolExecutor", "WorkerPool (bounded)")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(PAGE_DELAY_S)
        body = b"x" * PAGE_BYTES
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the demo's output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Thread-per-task opens every connection at once: a deep accept backlog
    # keeps the kernel from refusing them (the default is 5).
    request_queue_size = 4096


def _fetch(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return len(conn.getresponse().read())
    finally:
        conn.close()


def crawl(way: str, port: int, pages: int) -> dict[str, float]:
    """Fetch ``pages`` pages one of the three ways; return rate and memory."""
    urls = (f"/page/{i}" for i in range(pages))
    fetched = [0]
    lock = threading.Lock()

    def fetch(path: str) -> None:
        size = _fetch(port, path)
        with lock:
            fetched[0] += size

    base = rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        # Current RSS, sampled: ru_maxrss would include the parent's peak,
        # which Linux carries across exec.
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    if way == "thread-per-task":
        threads = [threading.Thread(target=fetch, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif way == "ThreadPoolExecutor":
        with ThreadPoolExecutor(WORKERS) as tpe:
            for u in urls:
                tpe.submit(fetch, u)
    else:
        from poolkit import WorkerPool

        with WorkerPool(WORKERS, queue_size=QUEUE_SIZE) as wp:
            for u in urls:
                wp.go(fetch, u)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return {
        "pages_per_s": pages / elapsed,
        "peak_rss_growth_kib": max(0, peak[0] - base) / 1024,
        "bytes": float(fetched[0]),
    }


def run(ctx: DemoContext) -> Section:
    """Run the three crawls against one local server and compare them."""
    pages = 400 if ctx.quick else 4000
    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, name="demo-http", daemon=True)
    serving.start()
    results: dict[str, dict[str, float]] = {}
    try:
        with ctx.progress(f"crawling {pages} pages, 3 ways", len(WAYS)) as bar:
            for way in WAYS:
                results[way] = _in_child(way, port, pages)
                bar.advance()
    finally:
        server.shutdown()
        server.server_close()
    rows: list[list[object]] = []
    for way in WAYS:
        r = results[way]
        rows.append([way, f"{r['pages_per_s']:,.0f}", f"{r['peak_rss_growth_kib'] / 1024:.1f}"])
    rate_chart = ctx.bar_chart(
        "workers_throughput.png",
        title=f"Crawl of {pages} local pages: throughput",
        ylabel="pages/s",
        groups=list(WAYS),
        series={"pages/s": [results[w]["pages_per_s"] for w in WAYS]},
    )
    memory_chart = ctx.bar_chart(
        "workers_memory.png",
        title=f"Crawl of {pages} local pages: peak memory growth",
        ylabel="MiB",
        groups=list(WAYS),
        series={"peak RSS growth": [results[w]["peak_rss_growth_kib"] / 1024 for w in WAYS]},
    )
    ours, tpe, naive = (results[w] for w in reversed(WAYS))
    findings = [
        f"WorkerPool (bounded) crawled at {ours['pages_per_s']:,.0f} pages/s vs "
        f"{tpe['pages_per_s']:,.0f} for ThreadPoolExecutor and "
        f"{naive['pages_per_s']:,.0f} for a thread per page.",
        f"peak memory growth: {ours['peak_rss_growth_kib'] / 1024:.1f} MiB with a bounded "
        f"queue ({WORKERS} threads + {QUEUE_SIZE} queued URLs at most) vs "
        f"{tpe['peak_rss_growth_kib'] / 1024:.1f} MiB (every URL queued at once) and "
        f"{naive['peak_rss_growth_kib'] / 1024:.1f} MiB ({pages} threads).",
    ]
    return Section(
        title="Worker pools: a crawl three ways",
        intro=(
            f"A local HTTP server (each page {PAGE_BYTES} bytes after {PAGE_DELAY_S * 1000:.0f} "
            f"ms) is crawled for {pages} pages: with a thread per page, with "
            f"ThreadPoolExecutor({WORKERS}) and with WorkerPool({WORKERS}, "
            f"queue_size={QUEUE_SIZE}). Each way runs in its own process; peak memory is "
            "the growth of its resident set during the crawl."
        ),
        headers=["way", "pages/s", "peak RSS growth (MiB)"],
        rows=rows,
        findings=findings,
        charts=[
            (rate_chart, "Throughput of the three crawls"),
            (memory_chart, "Peak memory growth of the three crawls"),
        ],
    )


def _in_child(way: str, port: int, pages: int) -> dict[str, float]:
    args = (way, port, pages)
    return run_child("poolkit._demo.workers", args, f"crawl {way!r}", timeout=600)


if __name__ == "__main__":
    print(json.dumps(crawl(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
