"""The work and result message contract (version 1), shared with the web side.

Work (routing key `send`):
    {"v": 1, "email_id": 123, "from_email": "...", "reply_to": null | "...",
     "subject": "...", "text": "...", "html": null | "...",
     "deliveries": [{"id": 456, "to": "..."}, ...]}          # 1..1000 deliveries

Optional keys `tags`, `metadata`, `sandbox` and `attachments` are described in options.py.

A delivery whose address cannot be used (addresses.address_problem) does not make the message
invalid: it is set aside in `WorkMessage.rejected`, to be failed alone while the others are sent.
The subject loses any RFC 2047 encoded word that decodes to a line break (headers.py).

Result (routing key `result`):
    {"v": 1, "email_id": 123, "deliveries": [456, ...], "outcome": "sent" | "failed" | "retrying",
     "attempt": 2, "reason": "", "status_code": 202 | null, "at": "<ISO 8601 UTC>"}

Parsing never raises anything but `InvalidMessage`. Unknown keys are ignored so that a
newer publisher can add optional fields without a coordinated deploy; a different "v" is
rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emailsender.addresses import address_problem
from emailsender.headers import neutralise_encoded_words
from emailsender.options import NO_OPTIONS, Options, parse_options

VERSION = 1
MAX_DELIVERIES = 1000  # SendGrid's limit of personalizations per mail/send request
RESULT_OUTCOMES = ("sent", "failed", "retrying")


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
    """One recipient to send to: the web's Delivery id (the wire's `deliveries[].id`) and the address."""

    id: int
    to: str


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
            "deliveries": [{"id": d.id, "to": d.to} for d in self.deliveries]
            + [{"id": r.id, "to": r.to} for r in self.rejected],
            **self.options.to_dict(),
        }


@dataclass(frozen=True)
class ResultMessage:
    email_id: int
    deliveries: tuple[int, ...]
    outcome: str
    attempt: int
    reason: str
    status_code: int | None
    at: datetime
    # Which provider accepted the deliveries (optional: results without it stay valid v1).
    provider: str | None = None


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# The web side stores ids as 64-bit integers and attempts as 16-bit ones; a result outside
# those ranges would fail to apply on every redelivery, so it is refused as unreadable.
_MAX_ID = 2**63 - 1
_MAX_RESULT_ATTEMPT = 32767


def _is_id(value: Any) -> bool:
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
    return _dumps(message.to_dict())


def parse_work(body: bytes) -> WorkMessage:
    """Decode and validate a work message body. Raises `InvalidMessage` with a short reason."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, AttributeError) as exc:
        raise InvalidMessage(f"body is not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"body is a JSON {type(data).__name__}, expected an object")

    email_id = data.get("email_id") if _is_id(data.get("email_id")) else None
    raw_deliveries = data.get("deliveries")
    known_ids: tuple[int, ...] = ()
    if isinstance(raw_deliveries, list):
        known_ids = tuple(d["id"] for d in raw_deliveries if isinstance(d, dict) and _is_id(d.get("id")))

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
        if not isinstance(item, dict) or not _is_id(item.get("id")):
            raise invalid(f"deliveries[{index}].id must be a positive integer")
        if address_problem(item.get("to")) is None:
            deliveries.append(WorkRecipient(id=item["id"], to=item["to"]))
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
        from_email=data["from_email"],
        reply_to=reply_to,
        subject=neutralise_encoded_words(_single_line(subject)),
        text=text,
        html=html or None,
        deliveries=tuple(deliveries),
        rejected=tuple(rejected),
        options=options,
    )
    try:
        encode_work(message)
    except UnicodeEncodeError:
        # JSON's "\ud800" escape decodes to a lone surrogate, which no email can carry.
        raise invalid("strings must be valid Unicode (a lone surrogate)") from None
    return message


def build_result(
    *,
    email_id: int,
    delivery_ids: tuple[int, ...] | list[int],
    outcome: str,
    attempt: int,
    reason: str = "",
    status_code: int | None = None,
    at: datetime | None = None,
    provider: str | None = None,
) -> dict[str, Any]:
    """A result message as a dict; `outcome` is "sent", "failed" or "retrying"."""
    if outcome not in RESULT_OUTCOMES:
        raise ValueError(f"outcome must be one of {RESULT_OUTCOMES}, got {outcome!r}")
    return {
        "v": VERSION,
        "email_id": email_id,
        "deliveries": list(delivery_ids),
        "outcome": outcome,
        "attempt": attempt,
        "reason": reason,
        "status_code": status_code,
        "at": (at or datetime.now(UTC)).isoformat(),
    } | ({"provider": provider} if provider else {})


def encode_result(result: dict[str, Any]) -> bytes:
    """The UTF-8 JSON body of a result built by `build_result`."""
    return _dumps(result)


def parse_result(body: bytes) -> ResultMessage:
    """Decode and validate a result message (for the web side's results process)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, AttributeError) as exc:
        raise InvalidMessage(f"body is not UTF-8 JSON: {str(exc)[:120]}") from None
    return result_message(data)


def result_message(data: Any) -> ResultMessage:
    """Validate a decoded result (what `build_result` makes; the embedded worker passes it directly)."""
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidMessage("not a version 1 result object")
    deliveries = data.get("deliveries")
    status_code = data.get("status_code")
    if (
        not _is_id(data.get("email_id"))
        or not isinstance(deliveries, list)
        or not all(_is_id(d) for d in deliveries)
        or data.get("outcome") not in RESULT_OUTCOMES
        or not isinstance(data.get("attempt"), int)
        or not 0 <= data["attempt"] <= _MAX_RESULT_ATTEMPT
        or not isinstance(data.get("reason"), str)
        or not (status_code is None or (isinstance(status_code, int) and 100 <= status_code <= 599))
        or not isinstance(data.get("at"), str)
        or not (data.get("provider") is None or (isinstance(data["provider"], str) and len(data["provider"]) <= 20))
    ):
        raise InvalidMessage("result fields are missing, of the wrong type or out of range")
    try:
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
        at = at.astimezone(UTC)  # PostgreSQL refuses offsets beyond ±15:59 that Python parses
    except (ValueError, OverflowError):
        raise InvalidMessage("result 'at' is not an ISO 8601 timestamp with an offset") from None
    return ResultMessage(
        email_id=data["email_id"],
        deliveries=tuple(deliveries),
        outcome=data["outcome"],
        attempt=data["attempt"],
        reason=_storable_text(data["reason"]),
        status_code=status_code,
        at=at,
        provider=data.get("provider") or None,
    )


def _storable_text(text: str) -> str:
    """`text` as PostgreSQL can store it: no NUL, no lone surrogate (a reason is never refused
    for its characters, or the outcome it carries would be lost)."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")
