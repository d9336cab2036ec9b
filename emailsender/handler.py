"""Turn one work message into one SendGrid call and classify the answer. No broker here.

`handle()` is a plain function: the consumer runs it on a worker thread and maps the returned
`Outcome` to publishes and an ack; the web process runs it directly in embedded mode.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypedDict

from emailsender.clients import Client, Response, TransportError
from emailsender.messages import InvalidMessage, Rejected, WorkMessage, build_result, parse_work
from emailsender.options import payload_add_options
from emailsender.settings import Settings

# A 429 waits at least this long: SendGrid's reset header has one-second resolution.
RATE_LIMIT_MIN_SECONDS = 1.0
# ... and at most this long, so a bogus reset header cannot park a message for hours.
RATE_LIMIT_MAX_SECONDS = 60.0
# Wait used when a 429 carries neither X-RateLimit-Reset nor Retry-After.
RATE_LIMIT_DEFAULT_SECONDS = 5.0
# Reasons are stored per recipient; SendGrid error lists can be long.
REASON_MAX_CHARS = 500


class OutcomeKind(StrEnum):
    SENT = "sent"  # 2xx: publish a "sent" result, ack
    RETRY = "retry"  # 5xx / timeout / connection error with attempts left: delay queue, ack
    RATE_LIMITED = "rate_limited"  # 429: delay queue with the same attempt count, ack
    FAILED = "failed"  # other 4xx, or out of attempts: dead letter, "failed" result, ack
    POISON = "poison"  # not a valid work message: dead letter (and "failed" result if ids known), ack


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    # Attempts made including this one (unchanged for RATE_LIMITED and POISON, which used none).
    attempt: int
    reason: str = ""
    status_code: int | None = None
    delay_seconds: float = 0.0  # RETRY and RATE_LIMITED: how long to wait before the next try
    message: WorkMessage | None = field(default=None, repr=False)  # None only for POISON
    email_id: int | None = None
    delivery_ids: tuple[int, ...] = ()
    # Deliveries not attempted because their address cannot be used: each fails on its own,
    # whatever happens to the others.
    rejected: tuple[Rejected, ...] = ()
    # The provider that answered (providers.ProviderChain), recorded with each "sent" recipient.
    provider: str = ""


class _MessageIds(TypedDict):
    """The Outcome fields that name the message, its deliveries and its rejected recipients."""

    message: WorkMessage
    email_id: int
    delivery_ids: tuple[int, ...]
    rejected: tuple[Rejected, ...]


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
    ids back in SendGrid's event webhook.
    """
    payload: dict[str, Any] = {
        "personalizations": [
            {
                "to": [{"email": delivery.to}],
                "custom_args": {"delivery_id": str(delivery.id), "email_id": str(message.email_id)},
            }
            for delivery in message.deliveries
        ],
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


def backoff_seconds(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Delay after failed attempt number `attempt` (1-based): base * 4**(attempt-1), capped, jittered.

    The jitter keeps the upper half of the nominal delay ([nominal/2, nominal]) so that the
    messages failed by one SendGrid incident do not all come back in the same second, while
    the delay never exceeds its retry tier's TTL.
    """
    nominal = settings.backoff_seconds(attempt)
    return (rng or random).uniform(nominal / 2, nominal)


def _header_seconds(response: Response, now: float) -> float | None:
    reset = response.header("x-ratelimit-reset")
    if reset is not None:
        try:
            return float(reset) - now
        except ValueError:
            pass
    retry_after = response.header("retry-after")
    if retry_after is not None:
        try:
            return float(retry_after)
        except ValueError:
            try:
                return parsedate_to_datetime(retry_after).timestamp() - now
            except (TypeError, ValueError):
                pass
    return None


def rate_limit_wait(response: Response, now: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait after a 429, from X-RateLimit-Reset (epoch seconds) or Retry-After.

    Clamped to [RATE_LIMIT_MIN_SECONDS, RATE_LIMIT_MAX_SECONDS]; up to 10% (at most 1 s) of
    jitter is added so that every replica does not hit SendGrid in the same instant the
    window resets.
    """
    raw = _header_seconds(response, time.time() if now is None else now)
    wait = RATE_LIMIT_DEFAULT_SECONDS if raw is None or raw != raw else raw  # raw != raw: NaN
    wait = min(max(wait, RATE_LIMIT_MIN_SECONDS), RATE_LIMIT_MAX_SECONDS)
    return wait + (rng or random).uniform(0, min(1.0, wait * 0.1))


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


_RESULT_OUTCOMES = {
    OutcomeKind.SENT: "sent",
    OutcomeKind.RETRY: "retrying",
    OutcomeKind.FAILED: "failed",
    OutcomeKind.POISON: "failed",
}


def results_for(outcome: Outcome) -> list[dict[str, Any]]:
    """Every result message that records `outcome`: `result_for`'s, then a "failed" one per
    reason for the deliveries rejected for their address (no attempt was made for those)."""
    results = [result] if (result := result_for(outcome)) is not None else []
    if outcome.email_id is None:
        return results
    by_reason: dict[str, list[int]] = {}
    for rejected in outcome.rejected:
        by_reason.setdefault(rejected.reason, []).append(rejected.id)
    now = datetime.now(UTC)
    for offset, (reason, delivery_ids) in enumerate(by_reason.items()):
        # The email's history keeps one row per (moment, attempt): each group has its own moment.
        at = now + timedelta(microseconds=offset)
        results.append(
            build_result(
                email_id=outcome.email_id, delivery_ids=delivery_ids, outcome="failed", attempt=0, reason=reason, at=at
            )
        )
    return results


def result_for(outcome: Outcome) -> dict[str, Any] | None:
    """The result message (see messages.build_result) that records `outcome`, or None when there
    is nothing to record: a 429 changes nothing for the recipients, and a poison message whose
    ids could not be read names no recipient."""
    result_outcome = _RESULT_OUTCOMES.get(outcome.kind)
    if result_outcome is None or outcome.email_id is None or not outcome.delivery_ids:
        return None
    return build_result(
        email_id=outcome.email_id,
        delivery_ids=outcome.delivery_ids,
        outcome=result_outcome,
        attempt=outcome.attempt,
        reason=outcome.reason,
        status_code=outcome.status_code,
        provider=outcome.provider if outcome.kind is OutcomeKind.SENT else None,
    )
