"""The ``workers`` demo part: registered, and its crawl works each way."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from poolkit._demo import workers
from poolkit._demo._report import PARTS


@pytest.fixture
def server_port() -> Iterator[int]:
    server = workers._Server(("127.0.0.1", 0), workers._Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_workers_part_is_registered() -> None:
    assert PARTS["workers"] == "poolkit._demo.workers"


@pytest.mark.parametrize("way", workers.WAYS)
def test_each_way_fetches_every_page(way: str, server_port: int) -> None:
    """Every way fetches every page in full and reports a rate and a memory figure."""
    result = workers.crawl(way, server_port, 20)
    assert result["bytes"] == 20 * workers.PAGE_BYTES
    assert result["pages_per_s"] > 0
    assert result["peak_rss_growth_kib"] >= 0
