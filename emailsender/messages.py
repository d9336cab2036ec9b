"""The work and result message contract (version 1), shared with the web side.

Work (routing key `send`):
    {"v": 1, "email_id": 123, "from_email": "...", "reply_to": null | "...",
     "subject": "...", "text": "...", "html": null | "...",
     "deliveries": [{"id": 456, "to": "..."}, ...]}          # 1..1000 deliveries

Optional keys `tags`, `metadata`, `sandbox` and `attachments` are described in options.py. A
delivery may carry `"unsubscribe": "https://..."`, its one-click unsubscribe URL (unsubscribe.py);
absent, its message has no List-Unsubscribe headers.

A delivery whose address cannot be used (addresses.address_problem) does not make the message
invalid: it is set aside in `WorkMessage.rejected`, to be failed alone while the others are sent.
The subject loses any RFC 2047 encoded word that decodes to a line break (headers.py). Every
address is passed on with its domain in its ASCII spelling (addresses.ascii_address), so
SendGrid, SMTP and the .eml outbox all get the form DNS uses, whatever spelling was queued.

Result (routing key `result`; result_messages.py):
    {"v": 1, "email_id": 123, "deliveries": [456, ...], "outcome": "sent" | "failed" | "retrying",
     "attempt": 2, "reason": "", "status_code": 202 | null, "at": "<ISO 8601 UTC>"}

Parsing never raises anything but `InvalidMessage`. Unknown keys are ignored so that a
newer publisher can add optional fields without a coordinated deploy; a different "v" is
rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from emailsender.addresses import address_problem, ascii_address
from emailsender.headers import neutralise_encoded_words
from emailsender.options import NO_OPTIONS, Options, parse_options
from emailsender.unsubscribe import is_unsubscribe_url

VERSION = 1
MAX_DELIVERIES = 1000  # SendGrid's limit of personalizations per mail/send request


class InvalidMessage(ValueError):
    """A message that does not follow the contract.

    `email_id` and `delivery_ids` are filled in when they could still be read, so the
    sender can report the recipients as failed instead of leaving them queued forever.
    """

    def __init__(self, reason: str, *, email_id: int | None = None, delivery_ids: tuple[int, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.email_id = email_id
        self.delivery_ids = delivery_ids


@dataclass(frozen=True)
class WorkRecipient:
    """One recipient to send to: the web's Delivery id (the wire's `deliveries[].id`), the address
    and, when the email offers one, the recipient's one-click unsubscribe URL."""

    id: int
    to: str
    unsubscribe: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "to": self.to}
        if self.unsubscribe is not None:
            data["unsubscribe"] = self.unsubscribe
        return data


@dataclass(frozen=True)
class Rejected:
    """A delivery whose address cannot be sent to, and why."""

    id: int
    to: Any
    reason: str


@dataclass(frozen=True)
class WorkMessage:
    email_id: int
    from_email: str
    reply_to: str | None
    subject: str
    text: str
    html: str | None
    deliveries: tuple[WorkRecipient, ...]  # the ones to send
    rejected: tuple[Rejected, ...] = ()
    options: Options = NO_OPTIONS

    @property
    def delivery_ids(self) -> tuple[int, ...]:
        return tuple(d.id for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "email_id": self.email_id,
            "from_email": self.from_email,
            "reply_to": self.reply_to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "deliveries": [d.to_dict() for d in self.deliveries] + [{"id": r.id, "to": r.to} for r in self.rejected],
            **self.options.to_dict(),
        }


def message_body(data: dict[str, Any]) -> bytes:
    """A message's UTF-8 JSON body, compact."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# The web side stores ids as 64-bit integers; a message naming a larger one would fail to
# apply on every redelivery, so it is refused as unreadable.
_MAX_ID = 2**63 - 1


def is_id(value: Any) -> bool:
    """A positive integer the web side can store as an id (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID


def _valid_address(value: Any) -> bool:
    return address_problem(value) is None


def _reportable(value: Any) -> str | None:
    """What a rejected delivery keeps of its address: a string that can be encoded again (lone
    surrogates become U+FFFD, which no address may hold either), or None."""
    if not isinstance(value, str):
        return None
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)


def _single_line(value: str) -> str:
    # A template can leave a trailing newline in a rendered subject; a header cannot carry it.
    return " ".join(value.splitlines()).strip()


def encode_work(message: WorkMessage) -> bytes:
    """The UTF-8 JSON body of a work message."""
    return message_body(message.to_dict())


def parse_work(body: bytes) -> WorkMessage:
    """Decode and validate a work message body. Raises `InvalidMessage` with a short reason."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, AttributeError) as exc:
        raise InvalidMessage(f"body is not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"body is a JSON {type(data).__name__}, expected an object")

    email_id = data.get("email_id") if is_id(data.get("email_id")) else None
    raw_deliveries = data.get("deliveries")
    known_ids: tuple[int, ...] = ()
    if isinstance(raw_deliveries, list):
        known_ids = tuple(d["id"] for d in raw_deliveries if isinstance(d, dict) and is_id(d.get("id")))

    def invalid(reason: str) -> InvalidMessage:
        return InvalidMessage(reason, email_id=email_id, delivery_ids=known_ids if email_id else ())

    if data.get("v") != VERSION:
        raise invalid(f"unsupported version v={data.get('v')!r}")
    if email_id is None:
        raise invalid("email_id must be a positive integer")
    if not _valid_address(data.get("from_email")):
        raise invalid("from_email must be an email address")
    reply_to = data.get("reply_to")
    if reply_to is not None and not _valid_address(reply_to):
        raise invalid("reply_to must be null or an email address")
    subject = data.get("subject")
    if not isinstance(subject, str) or not _single_line(subject):
        raise invalid("subject must be a non-empty string")
    text = data.get("text")
    html = data.get("html")
    if not isinstance(text, str):
        raise invalid("text must be a string")
    if html is not None and not isinstance(html, str):
        raise invalid("html must be null or a string")
    if not text and not html:
        raise invalid("text and html are both empty")
    if not isinstance(raw_deliveries, list) or not 1 <= len(raw_deliveries) <= MAX_DELIVERIES:
        raise invalid(f"deliveries must be a list of 1..{MAX_DELIVERIES} items")

    deliveries: list[WorkRecipient] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(raw_deliveries):
        if not isinstance(item, dict) or not is_id(item.get("id")):
            raise invalid(f"deliveries[{index}].id must be a positive integer")
        unsubscribe = item.get("unsubscribe")
        if unsubscribe is not None and not is_unsubscribe_url(unsubscribe):
            raise invalid(f"deliveries[{index}].unsubscribe must be an http(s) URL a header can carry")
        if address_problem(item.get("to")) is None:
            deliveries.append(WorkRecipient(id=item["id"], to=ascii_address(item["to"]), unsubscribe=unsubscribe))
        else:
            to = _reportable(item.get("to"))
            rejected.append(Rejected(id=item["id"], to=to, reason=f"unusable address: {address_problem(to)}"))
    if len({d.id for d in deliveries} | {r.id for r in rejected}) != len(raw_deliveries):
        raise invalid("deliveries contain a repeated id")
    try:
        options = parse_options(data)
    except ValueError as exc:
        raise invalid(str(exc)) from None

    message = WorkMessage(
        email_id=email_id,
        from_email=ascii_address(data["from_email"]),
        reply_to=None if reply_to is None else ascii_address(reply_to),
        subject=neutralise_encoded_words(_single_line(subject)),
        text=text,
        html=html or None,
        deliveries=tuple(deliveries),
        rejected=tuple(rejected),
        options=options,
    )
    # Every string the message carries, encoded: attachments' content is bytes (checked base64
    # ASCII when decoded), so it is left out rather than base64-encoded again (about 6 ms and
    # 4 MB more per message with 1 MiB attached).
    strings_only = replace(options, attachments=tuple(replace(a, content=b"") for a in options.attachments))
    try:
        encode_work(replace(message, options=strings_only))
    except UnicodeEncodeError:
        # JSON's "\ud800" escape decodes to a lone surrogate, which no email can carry.
        raise invalid("strings must be valid Unicode (a lone surrogate)") from None
    return message
