"""Signed SendGrid Event Webhook batches from the fake SendGrid, about the emails it accepted.

    fake.events.public_key()                       # base64 DER, as SendGrid shows its key
    status, answer = fake.events.post(url, {"a@example.com": ["delivered", "open"]}, default=["processed"])

Over HTTP (another process, or `make run-stack`):
    GET  /_fake/events/public-key   -> {"public_key": "<base64 DER>"}
    POST /_fake/events {"url": "http://127.0.0.1:8000/api/v1/webhooks/sendgrid/",
                        "events": {"a@example.com": ["delivered", "open"]},   # kinds per recipient
                        "default": ["processed", "delivered"],                 # everyone else (default: none)
                        "email_ids": [12],                                     # only these emails (default: all)
                        "signed": true, "tamper": false, "timestamp": null}
         -> {"status": <the webhook's answer status>, "answer": ..., "events": <how many were posted>}

TEST-ONLY KEY PAIR: generated in memory when the fake first needs it and never stored, so it
cannot be mistaken for, or leak as, a real key. Point SENDGRID_WEBHOOK_PUBLIC_KEY at
`public_key()` of the running fake.

Kinds: processed, deferred, delivered, bounce (hard), blocked (a bounce of type "blocked"),
dropped, open, click, spamreport, unsubscribe, group_unsubscribe. Each event carries the
personalization's custom_args at the top level, as SendGrid's do.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from emailsender.testing.fake_sendgrid import FakeSendGrid

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
POST_TIMEOUT_SECONDS = 30

# What each kind adds to the event, in SendGrid's own field names and wording.
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "processed": {"event": "processed"},
    "deferred": {"event": "deferred", "response": "451 4.7.1 Please try again later", "attempt": "1"},
    "delivered": {"event": "delivered", "response": "250 2.0.0 OK", "ip": "203.0.113.5"},
    "bounce": {
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
    },
    "blocked": {"event": "bounce", "type": "blocked", "status": "4.7.0", "reason": "421 4.7.0 Try again later"},
    "dropped": {"event": "dropped", "reason": "Bounced Address"},
    "open": {"event": "open", "useragent": "Mozilla/5.0", "ip": "198.51.100.7"},
    "click": {"event": "click", "url": "https://example.com/welcome", "useragent": "Mozilla/5.0"},
    "spamreport": {"event": "spamreport"},
    "unsubscribe": {"event": "unsubscribe"},
    "group_unsubscribe": {"event": "group_unsubscribe", "asm_group_id": 1},
}


class EventsError(ValueError):
    """A request to emit events that cannot be honoured (answered 400 over HTTP)."""


class EventEmitter:
    """Builds, signs and posts event batches for the recipients a FakeSendGrid accepted."""

    def __init__(self, fake: FakeSendGrid) -> None:
        self._fake = fake
        self._lock = threading.Lock()
        self._private_key: ec.EllipticCurvePrivateKey | None = None

    def _key(self) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            if self._private_key is None:
                self._private_key = ec.generate_private_key(ec.SECP256R1())
            return self._private_key

    def public_key(self) -> str:
        """The test key's public half as base64 DER SubjectPublicKeyInfo (SendGrid's format)."""
        der = (
            self._key()
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two signature headers SendGrid sends with `body`."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key().sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}

    def build(
        self,
        kinds: dict[str, list[str]] | None = None,
        *,
        default: list[str] | None = None,
        email_ids: list[int] | None = None,
    ) -> list[dict[str, Any]]:
        """One event per kind for every recipient of every accepted request, in order.

        `kinds` maps an address to its kinds; other recipients get `default` (none when
        omitted). `email_ids` limits the batch to those emails.
        """
        kinds = {address.lower(): list(names) for address, names in (kinds or {}).items()}
        for names in [*kinds.values(), default or []]:
            unknown = sorted(set(names) - KIND_FIELDS.keys())
            if unknown:
                raise EventsError(f"unknown event kinds {unknown}; known: {sorted(KIND_FIELDS)}")
        now = int(time.time())
        events = []
        for address, custom_args in self._accepted_recipients(email_ids):
            for offset, kind in enumerate(kinds.get(address.lower(), default or [])):
                events.append(_event(kind, address, custom_args, timestamp=now - 60 + offset))
        return events

    def post(
        self,
        url: str,
        kinds: dict[str, list[str]] | None = None,
        *,
        default: list[str] | None = None,
        email_ids: list[int] | None = None,
        signed: bool = True,
        tamper: bool = False,
        timestamp: int | None = None,
    ) -> tuple[int, Any, int]:
        """Post a batch to `url` as SendGrid would: (answer status, answer body, events posted).

        `signed=False` leaves the signature headers out; `tamper=True` signs the batch, then
        changes the body; `timestamp` signs with that Unix time (a stale one, say).
        """
        events = self.build(kinds, default=default, email_ids=email_ids)
        body = json.dumps(events).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "SendGrid Event API"}
        if signed:
            headers.update(self.sign(body, timestamp))
        if tamper:
            body = body.replace(b'"event": "', b'"event": "x', 1) if events else b"[{}]"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (test tool)
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        return status, answer, len(events)

    def _accepted_recipients(self, email_ids: list[int] | None) -> list[tuple[str, dict[str, str]]]:
        """(address, custom_args) of every personalization the fake answered 202 to."""
        found = []
        for record in self._fake.requests:
            if record.status != 202:
                continue
            if not isinstance(record.body, dict):
                raise EventsError("the fake does not record bodies (--no-bodies); it cannot name the recipients")
            if email_ids is not None and not set(record.email_ids) & set(email_ids):
                continue
            for item in record.body.get("personalizations", []):
                args = item.get("custom_args") or {}
                for to in item.get("to", []):
                    found.append((str(to.get("email", "")), dict(args)))
        return found


def _event(kind: str, address: str, custom_args: dict[str, str], *, timestamp: int) -> dict[str, Any]:
    return {
        "email": address,
        "timestamp": timestamp,
        "smtp-id": f"<{secrets.token_hex(8)}@fake.sendgrid.local>",
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{secrets.token_urlsafe(16)}.filter0001.1.0",
        "category": [],
        **custom_args,  # SendGrid puts custom_args at the top level of each event
        **KIND_FIELDS[kind],
    }


def handle_events_get(emitter: EventEmitter, path: str) -> tuple[int, Any]:
    """GET /_fake/events/public-key."""
    if path == "/_fake/events/public-key":
        return 200, {"public_key": emitter.public_key()}
    return 404, {"errors": [{"message": "not found", "field": None}]}


def handle_events_post(emitter: EventEmitter, path: str, raw: bytes) -> tuple[int, Any]:
    """POST /_fake/events: build, sign and post a batch; answers with the webhook's answer."""
    if path != "/_fake/events":
        return 404, {"errors": [{"message": "not found", "field": None}]}
    try:
        options = json.loads(raw or b"{}")
        if not isinstance(options, dict) or not isinstance(options.get("url"), str):
            raise EventsError('expected {"url": ..., "events": {address: [kinds]}, ...}')
        status, answer, count = emitter.post(
            options["url"],
            options.get("events"),
            default=options.get("default"),
            email_ids=options.get("email_ids"),
            signed=bool(options.get("signed", True)),
            tamper=bool(options.get("tamper", False)),
            timestamp=options.get("timestamp"),
        )
    except (ValueError, TypeError, AttributeError) as error:  # EventsError and malformed options
        return 400, {"error": str(error)}
    except OSError as error:  # the webhook could not be reached
        return 502, {"error": f"posting to the webhook failed: {error}"}
    return 200, {"status": status, "answer": answer, "events": count}
