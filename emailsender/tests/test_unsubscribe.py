"""One-click unsubscribe headers (RFC 8058): from the work message's per-delivery URL to each
recipient's SendGrid personalization, .eml file and SMTP message, and nobody else's."""

from __future__ import annotations

import email
import email.policy
import json
import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest

from emailsender.clients import EmlFolderClient, SendGridClient
from emailsender.handler import build_payload, handle
from emailsender.messages import InvalidMessage, WorkRecipient, encode_work, parse_work
from emailsender.outcomes import OutcomeKind
from emailsender.providers.smtp import SmtpClient
from emailsender.settings import Settings
from emailsender.testing.smtp_sink import SmtpSink
from emailsender.tests.support import work_message
from emailsender.unsubscribe import URL_MAX_LENGTH, is_unsubscribe_url

SETTINGS = Settings(max_attempts=5, retry_base_seconds=2, retry_max_seconds=600)
# As the web side builds them: <PUBLIC_BASE_URL>/u/<user>.<recipient>.<delivery>:<signature>
URL_A = "https://mail.example.com/u/7.31.101:Yx0Kc2lnbmF0dXJlLW9mLWZvcnR5LXRocmVlLWNoYXJzLWxvbmc"
URL_B = "https://mail.example.com/u/7.32.102:Zx0Kc2lnbmF0dXJlLW9mLWZvcnR5LXRocmVlLWNoYXJzLWxvbmc"


def message_with_links():
    """Three recipients: two with their own link, one without (an email that offers none to them)."""
    message = work_message(deliveries=3, html="<p>News</p>")
    first, second, third = message.deliveries
    return replace(message, deliveries=(replace(first, unsubscribe=URL_A), replace(second, unsubscribe=URL_B), third))


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with SmtpSink() as server:
            yield server


def test_the_url_travels_per_delivery_and_is_left_out_when_there_is_none():
    message = message_with_links()

    wire = json.loads(encode_work(message))

    assert [item.get("unsubscribe") for item in wire["deliveries"]] == [URL_A, URL_B, None]
    assert "unsubscribe" not in wire["deliveries"][2]
    assert parse_work(encode_work(message)) == message


@pytest.mark.parametrize(
    "value",
    [
        "mailto:unsubscribe@example.com",
        "https://mail.example.com/u/a b",
        "https://mail.example.com/u/a>,<https://evil.example/",
        "https://mail.example.com/u/a\r\nBcc: x@example.com",
        'https://mail.example.com/u/"a"',
        "https://mail.example.com/u/é",
        "https://mail.example.com/u/" + "a" * URL_MAX_LENGTH,
        "",
        42,
        ["https://mail.example.com/u/a"],
    ],
)
def test_a_url_a_header_cannot_carry_as_it_is_makes_the_message_invalid(value):
    wire = work_message(deliveries=1).to_dict()
    wire["deliveries"][0]["unsubscribe"] = value

    with pytest.raises(InvalidMessage) as raised:
        parse_work(json.dumps(wire).encode())

    assert raised.value.reason == "deliveries[0].unsubscribe must be an http(s) URL a header can carry"
    assert raised.value.delivery_ids == (wire["deliveries"][0]["id"],)  # reported failed, not left queued
    assert not is_unsubscribe_url(value)


def test_each_personalization_carries_its_own_recipients_headers_only():
    payload = build_payload(message_with_links())

    assert [p.get("headers") for p in payload["personalizations"]] == [
        {"List-Unsubscribe": f"<{URL_A}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        {"List-Unsubscribe": f"<{URL_B}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        None,
    ]
    assert "headers" not in payload  # never the request's top level, which every recipient would get


def test_the_fake_sendgrid_accepts_the_headers_and_refuses_what_sendgrid_refuses(fake):
    client = SendGridClient("SG.key", fake.url, timeout=2)
    payload = build_payload(message_with_links())

    assert client.send(payload).status_code == 202
    assert fake.requests[0].body["personalizations"][0]["headers"]["List-Unsubscribe"] == f"<{URL_A}>"
    payload["personalizations"][0]["headers"] = {"List-Unsubscribe": ["<https://a.example/>"]}
    assert b'"field": "personalizations.0.headers"' in client.send(payload).body
    payload["personalizations"][0]["headers"] = {"Subject": "changed"}
    assert b'"field": "personalizations.0.headers"' in client.send(payload).body


def test_each_eml_file_carries_its_recipients_headers_on_lines_of_their_own(tmp_path):
    message = message_with_links()

    assert EmlFolderClient(tmp_path).send(build_payload(message)).status_code == 202

    written = {}
    for path in tmp_path.glob("*.eml"):
        raw = path.read_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        written[parsed["To"]] = (raw, parsed)
    first, second, third = (written[d.to] for d in message.deliveries)
    assert f"\nList-Unsubscribe: <{URL_A}>\n".encode() in first[0]
    assert b"\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in first[0]
    assert second[1]["List-Unsubscribe"] == f"<{URL_B}>"
    assert third[1]["List-Unsubscribe"] is None and third[1]["List-Unsubscribe-Post"] is None


def test_each_smtp_message_carries_its_recipients_headers(sink):
    message = message_with_links()

    outcome = handle(encode_work(message), 0, SmtpClient(sink.url(), timeout=5), SETTINGS)

    assert outcome.kind is OutcomeKind.SENT
    assert sink.wait_until(lambda s: len(s.received) == 3)
    received = {r.recipients[0]: r.message for r in sink.received}
    links = [received[d.to]["List-Unsubscribe"] for d in message.deliveries]
    assert links == [f"<{URL_A}>", f"<{URL_B}>", None]
    assert received[message.deliveries[0].to]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_rejected_address_keeps_the_others_links():
    wire = message_with_links().to_dict()
    wire["deliveries"][1]["to"] = "not an address"

    message = parse_work(json.dumps(wire).encode())

    assert [d.unsubscribe for d in message.deliveries] == [URL_A, None]
    assert [r.id for r in message.rejected] == [wire["deliveries"][1]["id"]]
    assert isinstance(message.deliveries[0], WorkRecipient)
