"""routing.plan(): what each outcome publishes before the ack. No broker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emailsender import topology
from emailsender.outcomes import Outcome, OutcomeKind
from emailsender.routing import attempt_from_headers, plan, request_id_from_headers
from emailsender.settings import Settings

SETTINGS = Settings(queue_prefix="p", retry_base_seconds=0.2, retry_max_seconds=5, max_attempts=4)
BODY = b'{"v": 1}'
INCOMING = {
    "x-attempt": 1,
    "x-death": [{"count": 1}],
    "x-first-death-queue": "p.retry.200",
    "x-first-death-reason": "expired",
    "x-first-death-exchange": "",
    "trace": "kept",
}


def outcome(kind: OutcomeKind, **changes: Any) -> Outcome:
    values: dict[str, Any] = {
        "attempt": 2,
        "email_id": 10,
        "delivery_ids": (11, 12),
        "reason": "why",
        "status_code": 500,
    }
    values.update(changes)
    return Outcome(kind, **values)


def run(o: Outcome):
    return plan(o, body=BODY, headers=INCOMING, message_id="m-1", settings=SETTINGS)


def test_sent_publishes_only_the_result():
    [result] = run(outcome(OutcomeKind.SENT, attempt=1, reason="", status_code=202))
    assert (result.purpose, result.exchange, result.routing_key) == ("result", "p", "result")
    assert result.correlation_id == "m-1"
    data = json.loads(result.body)
    assert (data["outcome"], data["attempt"], data["deliveries"], data["status_code"]) == ("sent", 1, [11, 12], 202)


def test_retry_goes_to_the_tier_that_holds_the_delay_then_reports_retrying():
    copy, result = run(outcome(OutcomeKind.RETRY, delay_seconds=0.7))
    assert copy.exchange == ""  # the default exchange: routed by queue name
    assert copy.routing_key == topology.retry_queue("p", 800)
    assert copy.expiration_ms == 700
    assert copy.body == BODY
    assert copy.message_id == "m-1"
    assert copy.headers == {"x-attempt": 2, "trace": "kept"}  # broker x-death headers dropped
    assert json.loads(result.body)["outcome"] == "retrying"


def test_a_delay_longer_than_every_tier_uses_the_longest():
    copy, _ = run(outcome(OutcomeKind.RETRY, delay_seconds=600))
    assert copy.routing_key == topology.retry_queue("p", 60_000)
    assert copy.expiration_ms == 60_000


def test_rate_limited_keeps_the_attempt_and_publishes_no_result():
    [copy] = run(outcome(OutcomeKind.RATE_LIMITED, attempt=1, delay_seconds=4.5, status_code=429))
    assert copy.routing_key == topology.retry_queue("p", 10_000)
    assert copy.expiration_ms == 4500
    assert copy.headers["x-attempt"] == 1


def test_failed_dead_letters_then_reports_failed():
    dead, result = run(outcome(OutcomeKind.FAILED, attempt=4, reason="SendGrid 400: bad"))
    assert (dead.exchange, dead.routing_key, dead.body) == ("p", "dead", BODY)
    assert dead.headers == {"x-attempt": 4, "x-death-reason": "SendGrid 400: bad", "trace": "kept"}
    data = json.loads(result.body)
    assert (data["outcome"], data["attempt"], data["reason"]) == ("failed", 4, "SendGrid 400: bad")


def test_poison_dead_letters_and_reports_only_when_ids_are_known():
    [dead] = run(outcome(OutcomeKind.POISON, email_id=None, delivery_ids=(), status_code=None))
    assert dead.routing_key == "dead"
    dead, result = run(outcome(OutcomeKind.POISON, status_code=None))
    assert json.loads(result.body)["outcome"] == "failed"


@pytest.mark.parametrize(
    ("headers", "attempt"),
    [
        (None, 0),
        ({}, 0),
        ({"x-attempt": 3}, 3),
        ({"x-attempt": b"2"}, 2),
        ({"x-attempt": "x"}, 0),
        ({"x-attempt": -4}, 0),
    ],
)
def test_attempt_header(headers, attempt):
    assert attempt_from_headers(headers) == attempt


def test_retry_tier_picks_the_smallest_tier_that_holds_the_delay():
    tiers = (200, 800, 1000)
    assert [topology.retry_tier(ms, tiers) for ms in (1, 200, 201, 900, 5000)] == [200, 200, 800, 1000, 1000]


@pytest.mark.parametrize("kind", [OutcomeKind.SENT, OutcomeKind.RETRY, OutcomeKind.FAILED])
def test_the_request_id_header_reaches_the_result_and_every_copy(kind):
    headers = {**INCOMING, topology.REQUEST_ID_HEADER: b"req-7"}
    publishes = plan(outcome(kind), body=BODY, headers=headers, message_id="m-1", settings=SETTINGS)
    assert publishes and all(p.headers.get(topology.REQUEST_ID_HEADER) in (b"req-7", "req-7") for p in publishes), (
        publishes
    )


def test_a_malformed_request_id_header_is_not_carried_into_the_result():
    headers = {**INCOMING, topology.REQUEST_ID_HEADER: "has spaces and\nnewlines"}
    [result] = plan(outcome(OutcomeKind.SENT), body=BODY, headers=headers, message_id="m-1", settings=SETTINGS)
    assert topology.REQUEST_ID_HEADER not in result.headers


@pytest.mark.parametrize("value", ["req-7\n", "req-7\r\n", "", "x" * 129, "a b"])
def test_a_request_id_with_a_trailing_newline_or_other_junk_is_not_valid(value):
    assert not topology.valid_request_id(value)
    assert request_id_from_headers({topology.REQUEST_ID_HEADER: value}) is None
