"""Turn one work message into one SendGrid call and classify the answer. No broker here.

`handle()` is a plain function: the consumer runs it on a worker thread and maps the returned
`Outcome` (outcomes.py) to publishes and an ack; the web process runs it directly in embedded
mode. How long a retry or a 429 waits is delays.py's.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypedDict

from emailsender.clients import Client, Response, TransportError
from emailsender.delays import backoff_seconds, rate_limit_wait
from emailsender.messages import InvalidMessage, Rejected, WorkMessage, WorkRecipient, parse_work
from emailsender.options import payload_add_options
from emailsender.outcomes import Outcome, OutcomeKind
from emailsender.settings import Settings
from emailsender.unsubscribe import unsubscribe_headers


class _MessageIds(TypedDict):
    """The Outcome fields that name the message, its deliveries and its rejected recipients."""

    message: WorkMessage
    email_id: int
    delivery_ids: tuple[int, ...]
    rejected: tuple[Rejected, ...]


# Reasons are stored per recipient; SendGrid error lists can be long.
REASON_MAX_CHARS = 500

# How reasons name each provider.
_PROVIDER_LABELS = {"sendgrid": "SendGrid", "smtp": "SMTP", "eml": "outbox"}


def _refused(response: Response, message: WorkMessage) -> tuple[WorkMessage, tuple[Rejected, ...]]:
    """The message narrowed to the deliveries the provider accepted, and the ones it refused for good."""
    refused = tuple(
        Rejected(id=d.id, to=d.to, reason=response.refused[d.id])
        for d in message.deliveries
        if d.id in response.refused
    )
    kept = tuple(d for d in message.deliveries if d.id not in response.refused)
    return replace(message, deliveries=kept), refused


def build_payload(message: WorkMessage) -> dict[str, Any]:
    """One SendGrid v3 mail/send request with one personalization per delivery.

    Separate personalizations keep recipients from seeing each other; custom_args carry our
    ids back in SendGrid's event webhook; a recipient's one-click unsubscribe headers are its
    personalization's `headers`, since each recipient's link is their own.
    """
    payload: dict[str, Any] = {
        "personalizations": [_personalization(message, delivery) for delivery in message.deliveries],
        "from": {"email": message.from_email},
        "subject": message.subject,
        "content": [],
    }
    # SendGrid requires text/plain before text/html when both are present.
    if message.text:
        payload["content"].append({"type": "text/plain", "value": message.text})
    if message.html:
        payload["content"].append({"type": "text/html", "value": message.html})
    if message.reply_to:
        payload["reply_to"] = {"email": message.reply_to}
    payload_add_options(payload, message.options)
    return payload


def _personalization(message: WorkMessage, delivery: WorkRecipient) -> dict[str, Any]:
    personalization: dict[str, Any] = {
        "to": [{"email": delivery.to}],
        "custom_args": {"delivery_id": str(delivery.id), "email_id": str(message.email_id)},
    }
    if delivery.unsubscribe:
        personalization["headers"] = unsubscribe_headers(delivery.unsubscribe)
    return personalization


def error_text(body: bytes) -> str:
    """A short human reason from a SendGrid error body ({"errors": [{"message", "field"}]})."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        parts = []
        for error in data["errors"]:
            if isinstance(error, dict):
                message = str(error.get("message") or "").strip()
                if error.get("field"):
                    message = f"{message} ({error['field']})"
                parts.append(message)
        text = "; ".join(p for p in parts if p) or text
    # One line of printable text: a proxy's error page may carry control characters or NUL.
    text = " ".join("".join(char if char.isprintable() else " " for char in text).split())
    return text[: REASON_MAX_CHARS - 3] + "..." if len(text) > REASON_MAX_CHARS else text


def _http_reason(response: Response) -> str:
    detail = error_text(response.body)
    label = _PROVIDER_LABELS.get(response.provider, "SendGrid")
    return f"{label} {response.status_code}: {detail}" if detail else f"{label} {response.status_code}"


def classify(
    response: Response | TransportError,
    message: WorkMessage,
    attempt: int,
    settings: Settings,
    rng: random.Random | None = None,
    now: float | None = None,
) -> Outcome:
    """Map SendGrid's answer (or the lack of one) for attempt `attempt + 1` to an Outcome."""
    made = attempt + 1
    ids: _MessageIds = {
        "message": message,
        "email_id": message.email_id,
        "delivery_ids": message.delivery_ids,
        "rejected": message.rejected,
    }

    if isinstance(response, TransportError):
        reason, status = (
            f"{_PROVIDER_LABELS.get(response.provider, 'SendGrid')} {response.kind}: {response.detail}",
            None,
        )
    elif 200 <= response.status_code < 300:
        if response.refused:
            message, refused = _refused(response, message)
            ids.update(
                {"message": message, "delivery_ids": message.delivery_ids, "rejected": (*message.rejected, *refused)}
            )
        return Outcome(
            OutcomeKind.SENT if message.deliveries else OutcomeKind.FAILED,
            attempt=made,
            status_code=response.status_code,
            reason="" if message.deliveries else "every recipient was refused",
            provider=response.provider,
            **ids,
        )
    elif response.status_code == 429:
        wait = rate_limit_wait(response, now=now, rng=rng)
        reason = f"SendGrid 429: rate limited for {wait:.1f}s"
        return Outcome(
            OutcomeKind.RATE_LIMITED, attempt=attempt, reason=reason, status_code=429, delay_seconds=wait, **ids
        )
    elif response.status_code >= 500:
        reason, status = _http_reason(response), response.status_code
    else:
        reason = _http_reason(response)
        return Outcome(OutcomeKind.FAILED, attempt=made, reason=reason, status_code=response.status_code, **ids)

    if made < settings.max_attempts:
        delay = backoff_seconds(made, settings, rng)
        return Outcome(OutcomeKind.RETRY, attempt=made, reason=reason, status_code=status, delay_seconds=delay, **ids)
    reason = f"{reason} (gave up after {made} attempts)"
    return Outcome(OutcomeKind.FAILED, attempt=made, reason=reason, status_code=status, **ids)


def handle(
    body: bytes,
    attempt: int,
    client: Client,
    settings: Settings,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Send one work message and say what should happen to it. Never raises for bad input.

    `attempt` is the message's x-attempt header: the attempts already made that ended in a
    retryable failure. Unexpected errors from `client` (bugs, not HTTP failures) propagate;
    the consumer treats them as retryable.
    """
    try:
        message = parse_work(body)
    except InvalidMessage as exc:
        return Outcome(
            OutcomeKind.POISON,
            attempt=attempt,
            reason=f"invalid message: {exc.reason}",
            email_id=exc.email_id,
            delivery_ids=exc.delivery_ids,
        )
    if not message.deliveries:
        return Outcome(
            OutcomeKind.FAILED,
            attempt=attempt,
            reason="no recipient has an address that can be used",
            message=message,
            email_id=message.email_id,
            rejected=message.rejected,
        )
    if attempt:  # the first attempt reported the rejected deliveries; a retry carries them again
        message = replace(message, rejected=())
    try:
        response: Response | TransportError = client.send(build_payload(message))
    except TransportError as exc:
        response = exc
    return classify(response, message, attempt, settings, rng=rng, now=clock())


def unexpected_error(body: bytes, attempt: int, settings: Settings, error: BaseException) -> Outcome:
    """The outcome for a bug in the client (not an HTTP failure): retried like a 5xx, so it is
    neither lost nor spun on, and dead-lettered with the error once the attempts run out."""
    try:
        message: WorkMessage | None = parse_work(body)
    except InvalidMessage:
        message = None
    made = attempt + 1
    reason = f"internal error: {type(error).__name__}: {error}"[:REASON_MAX_CHARS]
    ids: dict[str, Any] = {}
    if message is not None:
        ids = {
            "message": message,
            "email_id": message.email_id,
            "delivery_ids": message.delivery_ids,
            "rejected": message.rejected,
        }
    if made < settings.max_attempts:
        return Outcome(
            OutcomeKind.RETRY, attempt=made, reason=reason, delay_seconds=backoff_seconds(made, settings), **ids
        )
    return Outcome(OutcomeKind.FAILED, attempt=made, reason=reason, **ids)
