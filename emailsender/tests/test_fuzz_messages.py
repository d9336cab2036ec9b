"""Property tests: whatever arrives from the queue ends as a dead letter with a reason.

Any bytes as the body and any values in the headers, run through the same functions the
consumer runs (attempt_from_headers, handle, routing.plan): nothing raises, an unreadable
message is POISON and is planned as exactly one dead letter carrying its reason, and never
as a retry (no loop). The last test does the same through a real RabbitMQ.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pika import data as amqp_data

from emailsender import routing, topology
from emailsender.addresses import address_problem
from emailsender.clients import Response
from emailsender.handler import REASON_MAX_CHARS, error_text, handle
from emailsender.messages import InvalidMessage, WorkMessage, encode_work, parse_work
from emailsender.outcomes import OutcomeKind
from emailsender.result_messages import ResultMessage, build_result, encode_result, parse_result
from emailsender.settings import Settings
from emailsender.testing.polling import wait_for
from emailsender.tests.support import work_message

SETTINGS = Settings(max_attempts=5, retry_base_seconds=2, retry_max_seconds=600)
# Bounded and repeatable: the same examples every run, a second or two in all.
FUZZ = settings(max_examples=300, derandomize=True, database=None, deadline=None)
FUZZ_SLOW = settings(
    max_examples=100, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class RecordingClient:
    """SendGrid accepting everything; records what it was asked to send."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []

    def send(self, payload: dict) -> Response:
        json.dumps(payload).encode("utf-8")  # what the real client does with it
        self.payloads.append(payload)
        return Response(202, {}, b"")


# Values a field table can carry, as pika decodes them, plus what a careless publisher sends.
header_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.just(UTC)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
header_tables = st.dictionaries(
    st.sampled_from([topology.ATTEMPT_HEADER, topology.DEATH_REASON_HEADER, "x-death"]) | st.text(max_size=10),
    header_values,
    max_size=4,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@st.composite
def near_valid_bodies(draw: Any) -> bytes:
    """A valid work message with some fields replaced by arbitrary JSON, or removed."""
    message = work_message(deliveries=draw(st.integers(min_value=1, max_value=3))).to_dict()
    for key in draw(st.lists(st.sampled_from(sorted(message)), max_size=3, unique=True)):
        if draw(st.booleans()):
            message[key] = draw(json_values)
        else:
            del message[key]
    if draw(st.booleans()):
        message["deliveries"] = draw(
            st.lists(st.dictionaries(st.sampled_from(["id", "to", "unsubscribe"]), json_values), max_size=3)
        )
    return json.dumps(message).encode()


bodies = st.binary(max_size=300) | near_valid_bodies() | st.builds(lambda v: json.dumps(v).encode(), json_values)


def assert_dead_lettered_once_with_reason(outcome: Any, body: bytes, headers: dict[str, Any]) -> None:
    publishes = routing.plan(outcome, body=body, headers=headers, message_id="m-1", settings=SETTINGS)
    dead = [p for p in publishes if p.purpose == "dead"]
    assert len(dead) == 1 and not [p for p in publishes if p.purpose == "retry"]
    assert dead[0].routing_key == topology.DEAD_KEY and dead[0].body == body
    reason = dead[0].headers[topology.DEATH_REASON_HEADER]
    assert reason == outcome.reason and reason.startswith("invalid message: ")
    # The broker must be able to take these headers, or the publish (and the sender) fails.
    amqp_data.encode_table([], dead[0].headers)


@FUZZ
@given(body=bodies)
def test_parse_work_returns_a_message_or_raises_invalid_message(body):
    try:
        message = parse_work(body)
    except InvalidMessage as exc:
        assert exc.reason
        return
    assert isinstance(message, WorkMessage)
    assert parse_work(encode_work(message)) == message  # what it accepts, it can pass on


@st.composite
def near_valid_results(draw: Any) -> bytes:
    """A valid result message (what the results process reads) with some fields spoiled."""
    result = build_result(email_id=1, delivery_ids=[2, 3], outcome="sent", attempt=1, status_code=202)
    for key in draw(st.lists(st.sampled_from(sorted(result)), max_size=3, unique=True)):
        result[key] = draw(json_values)
    return encode_result(result)


@FUZZ
@given(body=st.binary(max_size=200) | near_valid_results())
def test_parse_result_returns_a_storable_result_or_raises_invalid_message(body):
    # The results process applies what parses to PostgreSQL; a value it cannot store would fail
    # the batch, and the batch again on every redelivery, so parsing must rule it out.
    try:
        result = parse_result(body)
    except InvalidMessage as exc:
        assert exc.reason
        return
    assert isinstance(result, ResultMessage)
    assert all(0 < value < 2**63 for value in (result.email_id, *result.deliveries))
    assert 0 <= result.attempt <= 32767
    assert result.status_code is None or 100 <= result.status_code <= 599
    assert result.at.utcoffset() == timedelta(0)
    assert "\x00" not in result.reason
    result.reason.encode("utf-8")


@FUZZ
@given(headers=header_tables)
def test_any_attempt_header_reads_as_a_publishable_count(headers):
    attempt = routing.attempt_from_headers(headers)

    assert 0 <= attempt <= routing.ATTEMPT_MAX
    amqp_data.encode_table([], {topology.ATTEMPT_HEADER: attempt + 1})


@FUZZ_SLOW
@given(body=bodies, headers=header_tables)
def test_any_message_is_sent_or_dead_lettered_with_a_reason_never_retried_for_its_content(body, headers):
    # The headers as the broker delivers them: only what a field table can carry survives.
    try:
        amqp_data.encode_table([], headers)
    except Exception:  # not something a broker could deliver; nothing to test
        headers = {}
    client = RecordingClient()
    attempt = routing.attempt_from_headers(headers)

    outcome = handle(body, attempt, client, SETTINGS, rng=random.Random(1), clock=time.time)

    if outcome.kind is OutcomeKind.POISON:
        assert client.payloads == []
        assert_dead_lettered_once_with_reason(outcome, body, headers)
        return
    publishes = routing.plan(outcome, body=body, headers=headers, message_id="m-1", settings=SETTINGS)
    for publish in publishes:
        amqp_data.encode_table([], publish.headers)
    failed = {delivery for p in publishes if p.purpose == "result" for delivery in json.loads(p.body)["deliveries"]}
    assert {rejected.id for rejected in outcome.rejected} <= failed
    if outcome.kind is OutcomeKind.FAILED:  # no address could be used: nothing sent, each fails alone
        assert client.payloads == [] and outcome.rejected and not outcome.delivery_ids
        assert [p.purpose for p in publishes].count("dead") == 1
    else:
        assert outcome.kind is OutcomeKind.SENT and len(client.payloads) == 1
        sent_to = [p["to"][0]["email"] for p in client.payloads[0]["personalizations"]]
        assert all(address_problem(address) is None for address in sent_to)


@FUZZ
@given(body=st.binary(max_size=600) | st.text(max_size=600).map(str.encode))
def test_a_sendgrid_error_body_becomes_a_short_printable_reason(body):
    # The reason travels in a header and is stored per recipient: a proxy's page with NUL or
    # control characters in it must not make the result unstorable.
    reason = error_text(body)

    assert len(reason) <= REASON_MAX_CHARS
    assert reason.isprintable()


# -- regressions found by the properties above ---------------------------------------------------


@pytest.mark.parametrize("value", [float("inf"), Decimal("Infinity"), 2**63 - 1, "9" * 40, 1e300])
def test_an_absurd_attempt_header_neither_raises_nor_overflows_the_dead_letter(value):
    headers = {topology.ATTEMPT_HEADER: value}
    attempt = routing.attempt_from_headers(headers)

    outcome = handle(b"not json", attempt, RecordingClient(), SETTINGS)

    assert outcome.kind is OutcomeKind.POISON
    assert_dead_lettered_once_with_reason(outcome, b"not json", headers)


@pytest.mark.parametrize(
    "changes",
    [{"attempt": 2**40}, {"attempt": -1}, {"email_id": 2**64}, {"deliveries": [2**63]}, {"status_code": 10**6}],
)
def test_a_result_postgresql_could_not_store_is_unreadable(changes):
    result = build_result(email_id=1, delivery_ids=[2], outcome="sent", attempt=1, status_code=202)

    with pytest.raises(InvalidMessage, match="out of range"):
        parse_result(encode_result({**result, **changes}))


def test_a_results_time_and_reason_are_made_storable():
    result = build_result(email_id=1, delivery_ids=[2], outcome="failed", attempt=1, reason="bad\x00 \ud800 gateway")
    result["at"] = "2026-11-22T10:00:00-23:00"

    parsed = parse_result(json.dumps(result).encode())

    assert parsed.at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert parsed.reason == "bad ? gateway"


def test_a_lone_surrogate_is_an_invalid_message_not_a_send():
    body = json.dumps({**work_message().to_dict(), "subject": "Hi \ud800"}).encode()

    with pytest.raises(InvalidMessage, match="lone surrogate") as caught:
        parse_work(body)

    assert caught.value.email_id is not None  # its recipients are reported failed, not left queued


def test_a_lone_surrogate_in_an_attachments_filename_is_an_invalid_message():
    attachment = {"filename": "a\ud800.pdf", "type": "application/pdf", "disposition": "attachment", "content": "aGk="}
    body = json.dumps({**work_message().to_dict(), "attachments": [attachment]}).encode()

    with pytest.raises(InvalidMessage, match="lone surrogate"):
        parse_work(body)


# -- the same through RabbitMQ --------------------------------------------------------------------

GARBAGE = [
    (b"", {}),
    (b"\x00\xff\xfe garbage", {topology.ATTEMPT_HEADER: "many"}),
    (b"[1, 2, 3]", {topology.ATTEMPT_HEADER: 2**63 - 1}),
    (b'{"v": 1, "email_id": 5, "deliveries": "everyone"}', {"x-death": [], topology.ATTEMPT_HEADER: "9" * 40}),
    (b"[" * 5000, {topology.DEATH_REASON_HEADER: b"\xff", "when": datetime(2026, 1, 1, tzinfo=UTC)}),
    (json.dumps({**work_message().to_dict(), "subject": "\ud800"}).encode(), {topology.ATTEMPT_HEADER: -3}),
]


@pytest.mark.rabbitmq
def test_garbage_from_the_queue_is_dead_lettered_with_a_reason_and_the_sender_carries_on(broker, fake, start_sender):
    settings = broker.settings(fake)
    published = []
    for body, headers in GARBAGE:
        properties = topology.work_properties(f"garbage-{len(published)}")
        properties.headers = headers
        broker.channel.basic_publish(
            exchange=topology.exchange_name(broker.prefix),
            routing_key=topology.WORK_KEY,
            body=body,
            properties=properties,
            mandatory=True,
        )
        published.append(properties.message_id)
    running = start_sender(settings)

    dead: list = []

    def all_dead_lettered() -> bool:
        dead.extend(broker.take(topology.dead_queue(broker.prefix)))
        return len(dead) >= len(GARBAGE)

    wait_for(all_dead_lettered, timeout=15)

    reasons = {properties.message_id: properties.headers[topology.DEATH_REASON_HEADER] for properties, _ in dead}
    assert sorted(reasons) == sorted(published)
    assert all(reason.startswith("invalid message: ") for reason in reasons.values())
    wait_for(lambda: running.sender.stats["poison"] == len(GARBAGE))  # counted once acked, just after
    # Still consuming: a good message afterwards is sent, and nothing came back for another try.
    good = work_message()
    broker.publish(good)
    results = broker.collect_results(lambda r: any(x["outcome"] == "sent" for x in r))
    assert [r["email_id"] for r in results if r["outcome"] == "sent"] == [good.email_id]
    assert [r.email_ids for r in fake.requests] == [[good.email_id]]
    assert broker.depth(topology.work_queue(broker.prefix)) == 0
    assert running.thread.is_alive()
