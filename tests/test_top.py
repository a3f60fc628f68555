"""``poolkit top URL`` against a real /metrics endpoint on loopback, and its text parser."""

from __future__ import annotations

import http.server
import io
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from poolkit import ConnectionPool, WorkerPool, _cli
from poolkit._exposition import Sample, parse, quantile
from poolkit._top import CLEAR, COLUMNS, DONE, HEADERS, WAITS, TopError, run_top
from poolkit.testing import FakeConnector
from tests.adapters.conftest import free_port
from tests.optional import require


@pytest.fixture
def endpoint() -> Iterator[Any]:
    """A private registry exporting every live pool, served on a free loopback port."""
    require("prometheus_client", "prometheus")
    from prometheus_client import CollectorRegistry

    from poolkit.integrations import prometheus

    with prometheus.serve(0, registry=CollectorRegistry()) as server:
        yield server


@pytest.fixture
def page() -> Iterator[Callable[[int, bytes], str]]:
    """A loopback HTTP server answering every GET with one status and body."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(status: int, body: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/metrics"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _tables(out: str) -> list[dict[str, dict[str, str]]]:
    """Each printed table as {pool: {column: cell}} (cells split on 2+ spaces)."""
    import re

    tables = []
    for block in out.strip().split("\n\n"):
        lines = block.splitlines()
        header_line, rule = lines[1], lines[2]
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
        assert [header_line[a:b].strip() for a, b in spans] == HEADERS
        tables.append(
            {
                line[: spans[0][1]].strip(): {
                    h: line[a : b if i < len(spans) - 1 else None].strip()
                    for i, (h, (a, b)) in enumerate(zip(HEADERS, spans, strict=True))
                }
                for line in lines[3:]
            }
        )
    return tables


def test_top_prints_a_row_per_pool_at_each_refresh(
    endpoint: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two refreshes, plain tables one after the other (stdout is not a terminal)."""
    pool = ConnectionPool(FakeConnector(), max_size=3, name="top-db")
    held = pool.acquire()
    with WorkerPool(2, timings=True, name="top-jobs") as workers:
        for _ in range(5):
            workers.submit(abs, -1).result(30)
        assert _cli.main(["top", endpoint.url, "--count", "2", "--interval", "0.01"]) == 0
    pool.release(held)
    pool.close()
    out = capsys.readouterr().out
    assert CLEAR not in out
    first, second = _tables(out)
    db, jobs = first["top-db"], first["top-jobs"]
    assert (db["kind"], db["in use"], db["idle"], db["max"]) == ("connections", "1", "0", "3")
    assert (db["waiting"], db["timeouts"]) == ("0", "0")
    assert db["p99 wait"].endswith(("µs", "ms", " s"))  # one acquisition, since the start
    assert (jobs["kind"], jobs["max"], jobs["queued"], jobs["done/s"]) == ("workers", "2", "0", "-")
    assert second["top-jobs"]["done/s"] == "0.0"  # nothing completed between the refreshes
    assert second["top-db"]["p99 wait"] == "-"  # no acquisition in the interval


def test_on_a_terminal_each_refresh_redraws_the_screen(endpoint: Any) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    pool = WorkerPool(1, name="top-tty")
    run_top(endpoint.url, interval=1, count=3, out=out, sleep=lambda s: None)
    pool.close()
    frames = out.getvalue().split(CLEAR)
    assert frames[0] == ""
    assert len(frames) == 4
    assert all("top-tty" in frame for frame in frames[1:])


def test_once_prints_one_table_and_a_url_without_scheme_is_http(
    endpoint: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = WorkerPool(1, name="top-once")
    url = endpoint.url.removeprefix("http://")
    assert _cli.main(["top", url, "--once"]) == 0
    pool.close()
    [table] = _tables(capsys.readouterr().out)
    assert table["top-once"]["in use"] == "0"


def test_an_unreachable_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    assert _cli.main(["top", url, "--once"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"poolkit top: cannot reach {url}: ")
    assert "refused" in err.lower()


def test_a_page_that_is_not_prometheus_text_is_a_clear_error(
    page: Callable[[int, bytes], str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = page(200, b"<html><body>Welcome</body></html>\n")
    assert _cli.main(["top", url, "--once"]) == 1
    err = capsys.readouterr().err
    assert f"poolkit top: {url} did not answer Prometheus text: line 1" in err


def test_an_http_error_is_named(
    page: Callable[[int, bytes], str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = page(404, b"not here")
    assert _cli.main(["top", url, "--once"]) == 1
    assert f"poolkit top: {url} answered HTTP 404" in capsys.readouterr().err


def test_a_scrape_failing_after_the_first_is_shown_and_top_goes_on() -> None:
    require("prometheus_client", "prometheus")
    from prometheus_client import CollectorRegistry

    from poolkit.integrations import prometheus

    server = prometheus.serve(0, registry=CollectorRegistry())
    out = io.StringIO()
    run_top(server.url, interval=1, count=2, out=out, sleep=lambda s: server.close())
    first, second = out.getvalue().strip().split("\n\n")
    assert "pool" in first
    assert f"scrape failed: cannot reach {server.url}" in second


def test_an_empty_endpoint_says_no_pools(page: Callable[[int, bytes], str]) -> None:
    url = page(200, b"# HELP up whether\n# TYPE up gauge\nup 1\n")
    out = io.StringIO()
    run_top(url, interval=1, count=1, out=out)
    assert f"no poolkit pools at {url}" in out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["top", "u", "--interval", "0"],
        ["top", "u", "--count", "0"],
        ["top", "u", "--count", "x"],
        ["top", "u", "--once", "--count", "2"],
    ],
)
def test_top_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli.main(argv)
    assert exc.value.code == 2
    assert "poolkit top: error:" in capsys.readouterr().err


def test_top_reads_metrics_the_exporter_has() -> None:
    """Every metric top shows is one the Prometheus exporter's table defines."""
    from poolkit.integrations._metrics import METRICS

    names = {spec.name for spec in METRICS}
    used = {n.removesuffix("_total") for cols in COLUMNS.values() for n in cols}
    assert used | {*WAITS, DONE.removesuffix("_total")} <= names


# The parser, on its own and against prometheus-client's.


def test_parse_reads_labels_escapes_special_values_and_timestamps() -> None:
    text = (
        "# HELP x a help line\n"
        "# TYPE x gauge\n"
        'x{pool="a\\"b\\\\c\\nd",le="+Inf"} 3 1700000000000\n'
        "y 1.5e3\n"
        'z{pool="p",} NaN\n'
        "w{} -Inf\n"
        "# EOF\n"
    )
    samples = parse(text)
    assert samples[0] == Sample("x", {"pool": 'a"b\\c\nd', "le": "+Inf"}, 3.0)
    assert samples[1] == Sample("y", {}, 1500.0)
    assert samples[2].labels == {"pool": "p"}
    assert math.isnan(samples[2].value)
    assert samples[3] == Sample("w", {}, -math.inf)


@pytest.mark.parametrize(
    "line",
    ["<html>", "x", "x{pool=p} 1", 'x{pool="p" 1', "x 1 2 3", "x one", 'x{pool="p"}1'],
)
def test_parse_refuses_what_is_not_a_sample(line: str) -> None:
    with pytest.raises(ValueError, match="line 2 is not Prometheus text"):
        parse("ok 1\n" + line + "\n")


def test_parse_reads_a_real_scrape_as_prometheus_client_does(endpoint: Any) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    pool = ConnectionPool(FakeConnector(), name='top "quoted"\\name')
    with pool.connection():
        pass
    with urllib.request.urlopen(endpoint.url, timeout=30) as response:
        text = response.read().decode()
    pool.close()
    theirs = sorted(
        (s.name, sorted(s.labels.items()), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    )
    ours = sorted((s.name, sorted(s.labels.items()), s.value) for s in parse(text))
    assert ours == theirs
    assert any(labels == [("pool", 'top "quoted"\\name')] for _, labels, _ in ours)


def test_quantile_interpolates_inside_its_bucket_as_histogram_quantile() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == 0.1
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.99, [(1.0, 0.0), (math.inf, 10.0)]) == 1.0  # above the last bound
    assert math.isnan(quantile(0.99, [(1.0, 0.0), (math.inf, 0.0)]))


def test_top_error_is_what_run_top_raises_on_the_first_scrape() -> None:
    url = f"127.0.0.1:{free_port()}"
    slept: list[float] = []
    with pytest.raises(TopError, match="cannot reach http://"):
        run_top(url, interval=1, count=3, out=io.StringIO(), sleep=slept.append)
    assert slept == []  # the first scrape fails at once, not after a refresh


def test_poolkit_top_runs_as_a_command_for_a_couple_of_refreshes(endpoint: Any) -> None:
    """`python -m poolkit top URL --count 2`: two plain tables on a pipe, then exit 0."""
    import subprocess
    import sys

    pool = WorkerPool(1, name="top-command")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "poolkit",
            "top",
            endpoint.url,
            "--count",
            "2",
            "--interval",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    pool.close()
    assert done.returncode == 0, done.stderr
    tables = _tables(done.stdout)
    assert len(tables) == 2
    assert all(table["top-command"]["max"] == "1" for table in tables)
