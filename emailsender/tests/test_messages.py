"""The work and result message contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from emailsender.messages import MAX_DELIVERIES, InvalidMessage, Rejected, WorkRecipient, encode_work, parse_work
from emailsender.result_messages import build_result, encode_result, parse_result
from emailsender.tests.support import work_message

X = {"id": 1, "to": "x@example.com"}


def body(**changes) -> bytes:
    return json.dumps({**work_message(deliveries=2).to_dict(), **changes}).encode()


def test_round_trip():
    message = work_message(deliveries=3, reply_to="r@example.com", html="<b>hi</b>", subject="Olá ✓")
    assert parse_work(encode_work(message)) == message
    assert "Olá ✓".encode() in encode_work(message)


def test_documented_example_parses():
    example = {
        "v": 1,
        "email_id": 123,
        "from_email": "alice@example.com",
        "reply_to": None,
        "subject": "rendered subject",
        "text": "rendered plain body",
        "html": None,
        "deliveries": [{"id": 456, "to": "carol@example.com"}],
    }
    message = parse_work(json.dumps(example).encode())
    assert (message.email_id, message.delivery_ids, message.html) == (123, (456,), None)


def test_unknown_keys_are_ignored_and_subject_newlines_flattened():
    message = parse_work(body(priority="high", subject="Hello\r\n there\n"))
    assert message.subject == "Hello  there"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"v": 2}, "unsupported version v=2"),
        ({"email_id": 0}, "email_id must be a positive integer"),
        ({"email_id": "12"}, "email_id must be a positive integer"),
        ({"from_email": "no-at-sign"}, "from_email must be an email address"),
        ({"from_email": "a b@example.com"}, "from_email must be an email address"),
        ({"reply_to": ""}, "reply_to must be null or an email address"),
        ({"subject": " \n"}, "subject must be a non-empty string"),
        ({"text": None}, "text must be a string"),
        ({"html": 5}, "html must be null or a string"),
        ({"text": "", "html": ""}, "text and html are both empty"),
        ({"deliveries": []}, f"deliveries must be a list of 1..{MAX_DELIVERIES} items"),
        (
            {"deliveries": [{"id": n + 1, "to": "x@example.com"} for n in range(MAX_DELIVERIES + 1)]},
            "deliveries must be a list of 1..1000 items",
        ),
        (
            {"deliveries": [{"id": 1, "to": "x@example.com"}, {"id": 1, "to": "y@example.com"}]},
            "deliveries contain a repeated id",
        ),
        (
            {"deliveries": [{"id": 1, "to": "x@example.com"}, {"id": -1, "to": "y@example.com"}]},
            "deliveries[1].id must be a positive integer",
        ),
        ({"from_email": '"a b"@example.com'}, "from_email must be an email address"),
    ],
)
def test_invalid_messages_name_the_problem(changes, reason):
    with pytest.raises(InvalidMessage) as raised:
        parse_work(body(**changes))
    assert raised.value.reason == reason


def test_a_delivery_whose_address_cannot_be_used_is_set_aside_with_its_reason_not_the_message():
    message = parse_work(
        body(
            deliveries=[
                {"id": 5, "to": '"a\\ b"@example.com'},
                {"id": 6, "to": "x@example.com"},
                {"id": 7, "to": "x\n@example.com"},
                {"id": 8, "to": 42},
            ]
        )
    )

    assert message.deliveries == (WorkRecipient(id=6, to="x@example.com"),)
    assert message.rejected == (
        Rejected(id=5, to='"a\\ b"@example.com', reason="unusable address: Enter a valid email address."),
        Rejected(
            id=7,
            to="x\n@example.com",
            reason="unusable address: Email addresses must not contain line breaks or NUL characters.",
        ),
        Rejected(id=8, to=None, reason="unusable address: Enter a valid email address."),
    )
    assert parse_work(encode_work(message)) == message


def test_a_subject_loses_encoded_words_that_decode_to_line_breaks():
    subject = "=?utf-8?q?Hi=0D=0ABcc=3A_evil=40attacker=2Etest=0D=0AX-Injected=3A_yes?= =?utf-8?q?caf=C3=A9?="

    message = parse_work(body(subject=subject))

    assert message.subject == "Hi  Bcc: evil@attacker.test  X-Injected: yes =?utf-8?q?caf=C3=A9?="


def test_invalid_message_keeps_the_ids_it_could_read():
    with pytest.raises(InvalidMessage) as raised:
        parse_work(body(email_id=77, subject=5, deliveries=[{"id": 5, "to": "bad"}, {"id": 6, "to": "x@example.com"}]))
    assert (raised.value.email_id, raised.value.delivery_ids) == (77, (5, 6))
    with pytest.raises(InvalidMessage) as raised:
        parse_work(body(email_id=None))
    assert (raised.value.email_id, raised.value.delivery_ids) == (None, ())


@pytest.mark.parametrize("raw", [b"", b"\xff", b"[1]", b'"x"', b"{", b"[" * 100_000])
def test_garbage_is_invalid(raw):
    with pytest.raises(InvalidMessage):
        parse_work(raw)


def test_result_round_trip():
    at = datetime(2026, 11, 22, 15, 33, tzinfo=UTC)
    result = build_result(email_id=1, delivery_ids=(2, 3), outcome="sent", attempt=1, status_code=202, at=at)
    assert result == {
        "v": 1,
        "email_id": 1,
        "deliveries": [2, 3],
        "outcome": "sent",
        "attempt": 1,
        "reason": "",
        "status_code": 202,
        "at": "2026-11-22T15:33:00+00:00",
    }
    parsed = parse_result(encode_result(result))
    assert (parsed.email_id, parsed.deliveries, parsed.outcome, parsed.at) == (1, (2, 3), "sent", at)


def test_bad_results_are_rejected():
    with pytest.raises(ValueError):
        build_result(email_id=1, delivery_ids=[1], outcome="delivered", attempt=1)
    good = build_result(email_id=1, delivery_ids=[1], outcome="failed", attempt=1, reason="x")
    for changes in ({"outcome": "maybe"}, {"deliveries": ["1"]}, {"at": "yesterday"}, {"v": 2}):
        with pytest.raises(InvalidMessage):
            parse_result(json.dumps({**good, **changes}).encode())
