"""Reading a SendGrid Event Webhook batch into events we can apply (no database access).

A batch is a JSON array of event objects. Our custom_args (delivery_id, email_id; set by
emailsender.handler) come back as top-level keys of each event. One malformed or foreign
event is counted and skipped, never a reason to refuse the batch: SendGrid would retry the
whole batch forever.
"""

import datetime
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Literal

from emailsystem.emails.models import DeliveryStatus, SuppressionReason

DETAIL_MAX_CHARS = 1000  # DeliveryEvent.detail
SG_EVENT_ID_MAX_CHARS = 100  # DeliveryEvent.sg_event_id

# SendGrid's event name -> the recipient status it means.
EVENT_STATUS = {
    "processed": DeliveryStatus.PROCESSED,
    "deferred": DeliveryStatus.DEFERRED,
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.BOUNCED,
    "dropped": DeliveryStatus.DROPPED,
    "open": DeliveryStatus.OPENED,
    "click": DeliveryStatus.CLICKED,
    "spamreport": DeliveryStatus.SPAM_REPORTED,
    "unsubscribe": DeliveryStatus.UNSUBSCRIBED,
    "group_unsubscribe": DeliveryStatus.UNSUBSCRIBED,
}


class BatchError(ValueError):
    """The body is not a JSON array of objects (answered 400)."""


@dataclass(frozen=True)
class ParsedEvent:
    sg_event_id: str
    event: str
    status: DeliveryStatus
    delivery_id: int
    email_id: int | None
    occurred_at: datetime.datetime
    detail: str
    suppress: SuppressionReason | None


@dataclass
class ParsedBatch:
    events: list[ParsedEvent] = field(default_factory=list)
    received: int = 0
    ignored: int = 0  # event kinds we do not track, or events missing what we need
    unknown: int = 0  # no delivery id of ours


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _moment(value: object) -> datetime.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _suppression(name: str, item: dict) -> SuppressionReason | None:
    """Hard bounces, spam reports and unsubscribes suppress the address; a `blocked` bounce is temporary."""
    if name == "bounce":
        return None if item.get("type") == "blocked" else SuppressionReason.BOUNCE
    if name == "spamreport":
        return SuppressionReason.SPAM_REPORT
    if name in ("unsubscribe", "group_unsubscribe"):
        return SuppressionReason.UNSUBSCRIBE
    return None


def link_without_secrets(url: str) -> str:
    """A clicked link as it is stored: scheme, host, port and path; no query, fragment or `user:password@`.

    Links in emails carry tokens in those parts (password resets, sign-in links, tracking ids),
    and the stored detail is shown to the sender and to admins. A link urllib cannot split
    (`http://[::1`) is stored as nothing.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _detail(name: str, item: dict) -> str:
    """The reason, SMTP response or clicked link (without its secrets), bounded; NUL removed
    (PostgreSQL text cannot hold it).

    These texts come from the receiving mail server or the email's own links, not from
    SendGrid: a NUL in one must not fail the whole batch (SendGrid would retry it forever).
    """
    text: object
    if name == "click":
        url = item.get("url")
        text = link_without_secrets(str(url)) if url else ""
    elif name == "bounce" and item.get("type") == "blocked":
        text = f"blocked: {item.get('reason', '')}"
    else:
        text = item.get("reason") or item.get("response")
    return str(text).replace("\x00", "")[:DETAIL_MAX_CHARS] if text else ""


def event_parse(item: object) -> ParsedEvent | Literal["ignored", "unknown"]:
    """One event, or why it is skipped: "ignored" or "unknown"."""
    if not isinstance(item, dict):
        return "ignored"
    name = item.get("event")
    status = EVENT_STATUS.get(name) if isinstance(name, str) else None
    sg_event_id = item.get("sg_event_id")
    occurred_at = _moment(item.get("timestamp"))
    if status is None or not isinstance(name, str) or not isinstance(sg_event_id, str) or not sg_event_id:
        return "ignored"
    if occurred_at is None:
        return "ignored"
    if len(sg_event_id) > SG_EVENT_ID_MAX_CHARS or "\x00" in sg_event_id:
        return "ignored"
    delivery_id = _int(item.get("delivery_id"))
    if delivery_id is None:
        return "unknown"  # sent by someone else on the same SendGrid account, or before delivery ids existed
    return ParsedEvent(
        sg_event_id=sg_event_id,
        event=name,
        status=status,
        delivery_id=delivery_id,
        email_id=_int(item.get("email_id")),
        occurred_at=occurred_at,
        detail=_detail(name, item),
        suppress=_suppression(name, item),
    )


def batch_parse(body: bytes) -> ParsedBatch:
    """Every event of a batch; raises BatchError when the body is not a JSON array."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError):
        raise BatchError("The body is not valid JSON.") from None
    if not isinstance(items, list):
        raise BatchError("Expected a JSON array of events.")
    batch = ParsedBatch(received=len(items))
    for item in items:
        parsed = event_parse(item)
        if parsed == "ignored":
            batch.ignored += 1
        elif parsed == "unknown":
            batch.unknown += 1
        else:
            batch.events.append(parsed)
    return batch
