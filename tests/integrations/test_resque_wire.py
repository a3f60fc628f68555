"""Resque's wire format and goworker's queue orders, as pure data (no Redis)."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from poolkit.integrations.resque import parse_queues
from poolkit.integrations.resque._wire import (
    PayloadError,
    decode_job,
    encode_job,
    failure_record,
    parse_worker_id,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
# Resque::Failure::Redis#save's keys, in its order.
FAILURE_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


def test_encode_job_is_ruby_json_generate_output() -> None:
    """Class first, compact separators, UTF-8 unescaped, nil as null."""
    assert encode_job("Archive", (35, "tar", None, "é")) == (
        '{"class":"Archive","args":[35,"tar",null,"é"]}'
    )


def test_decode_job_keeps_extra_keys_and_reads_missing_args_as_empty() -> None:
    job = decode_job(b'{"class":"A","id":"x"}')
    assert (job.class_name, job.args, job.payload) == ("A", [], {"class": "A", "id": "x"})


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"nope", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"args":[]}', "no class name"),
        (b'{"class":"A","args":{"a":1}}', "JSON array"),
    ],
)
def test_decode_job_refuses_what_is_not_a_resque_job(raw: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        decode_job(raw)


def test_failure_record_has_resques_keys_in_resques_order() -> None:
    record = failure_record(
        payload={"class": "A", "args": []},
        exception="ValueError",
        error="bad",
        backtrace=["line"],
        worker="h:1-0:q",
        queue="q",
        when=WHEN,
    )
    assert record == (
        '{"failed_at":"2024/01/02 03:04:05 UTC","payload":{"class":"A","args":[]},'
        '"exception":"ValueError","error":"bad","backtrace":["line"],"worker":"h:1-0:q",'
        '"queue":"q"}'
    )
    assert list(json.loads(record)) == FAILURE_KEYS


@pytest.mark.parametrize(
    ("worker_id", "parsed"),
    [
        ("host:123:q1,q2", ("host", 123, "q1,q2")),  # Ruby Resque
        ("host:123-4:q", ("host", 123, "q")),  # goworker, poolkit slots
        ("host:123-poller:q", ("host", 123, "q")),  # goworker's poller
        ("host:abc:q", ("host", None, "q")),  # not a pid: never judged by pid
    ],
)
def test_worker_ids_parse_as_resques_worker_find(
    worker_id: str, parsed: tuple[str, int | None, str]
) -> None:
    assert parse_worker_id(worker_id) == parsed


def test_strict_order_is_the_given_order_every_poll() -> None:
    order = parse_queues("high, low")
    assert order.strict
    assert [order.order(random.Random(i)) for i in range(3)] == [["high", "low"]] * 3


def test_weighted_order_puts_a_queue_first_in_proportion_to_its_weight() -> None:
    """goworker: high=2,low=1 expands to [high, high, low]; high leads 2 polls in 3."""
    order = parse_queues({"high": 2, "low": 1})
    rng = random.Random(7)
    firsts = Counter(order.order(rng)[0] for _ in range(3000))
    assert set(order.order(rng)) == {"high", "low"}
    assert 0.6 < firsts["high"] / 3000 < 0.73


def test_a_list_may_mix_names_and_weights() -> None:
    order = parse_queues(["a=3", "b"])
    assert (order.names, order.weights, order.strict) == (("a", "b"), (3, 1), False)
