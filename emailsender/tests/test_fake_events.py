"""The fake SendGrid's Event Webhook: signed batches about what it accepted, over its HTTP control API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from emailsender.handler import build_payload
from emailsender.testing.fake_client import call, mail_send
from emailsender.testing.fake_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from emailsender.tests.support import work_message


class Receiver:
    """A webhook endpoint that records what it is sent and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def verified(public_key: str, headers: dict[str, str], body: bytes) -> bool:
    key = load_der_public_key(base64.b64decode(public_key))
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    signed = headers[TIMESTAMP_HEADER].encode() + body
    try:
        key.verify(base64.b64decode(headers[SIGNATURE_HEADER]), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def test_a_signed_batch_names_each_accepted_recipient_with_its_custom_args(fake, receiver):
    message = work_message(deliveries=2)
    assert mail_send(fake, build_payload(message))[0] == 202
    mail_send(fake, {"not": "valid"})  # a 400: not an accepted email, so no events about it
    first, second = (delivery.to for delivery in message.deliveries)
    status, _, public = call(f"{fake.url}/_fake/events/public-key")

    status, _, answer = call(
        f"{fake.url}/_fake/events",
        {"url": receiver.url, "events": {first: ["delivered", "open"]}, "default": ["bounce"]},
    )

    assert status == 200 and answer == {"status": 200, "answer": {}, "events": 3}
    [(headers, body)] = receiver.received
    assert verified(public["public_key"], headers, body)
    events = json.loads(body)
    assert [(e["email"], e["event"]) for e in events] == [(first, "delivered"), (first, "open"), (second, "bounce")]
    assert [e["delivery_id"] for e in events] == [str(message.deliveries[0].id)] * 2 + [str(message.deliveries[1].id)]
    assert {e["email_id"] for e in events} == {str(message.email_id)}
    assert len({e["sg_event_id"] for e in events}) == 3
    assert events[2]["type"] == "bounce" and events[2]["reason"]


def test_unsigned_and_tampered_batches_are_what_they_say(fake, receiver):
    mail_send(fake, build_payload(work_message()))

    call(f"{fake.url}/_fake/events", {"url": receiver.url, "default": ["delivered"], "signed": False})
    call(f"{fake.url}/_fake/events", {"url": receiver.url, "default": ["delivered"], "tamper": True})

    (unsigned_headers, _), (tampered_headers, tampered_body) = receiver.received
    assert SIGNATURE_HEADER not in unsigned_headers
    assert not verified(fake.events.public_key(), tampered_headers, tampered_body)


def test_email_ids_limit_the_batch_to_those_emails(fake, receiver):
    kept, other = work_message(), work_message()
    mail_send(fake, build_payload(kept)), mail_send(fake, build_payload(other))

    _, _, answer = call(
        f"{fake.url}/_fake/events", {"url": receiver.url, "default": ["processed"], "email_ids": [kept.email_id]}
    )

    assert answer["events"] == 1
    assert json.loads(receiver.received[0][1])[0]["email_id"] == str(kept.email_id)


@pytest.mark.parametrize(
    "options",
    [{"default": ["delivered"]}, {"url": "http://127.0.0.1:1/", "default": ["exploded"]}, ["not", "an", "object"]],
)
def test_bad_requests_get_400(fake, options):
    status, _, answer = call(f"{fake.url}/_fake/events", options)

    assert status == 400 and answer["error"]


def test_an_unreachable_webhook_is_reported_as_502(fake):
    mail_send(fake, build_payload(work_message()))

    status, _, answer = call(f"{fake.url}/_fake/events", {"url": "http://127.0.0.1:1/", "default": ["delivered"]})

    assert status == 502 and "failed" in answer["error"]
