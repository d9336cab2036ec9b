"""What the webhooks process does with queued messages: load them, attempt each, record the
attempts in bulk and decide what follows.

The database work is batched (one read of the messages, one of their endpoints, one
transaction for the attempts of a batch) so that pool threads only make HTTP calls: an attempt
recorded one at a time cost 3-5 statements and a commit, which capped one process far below the
1,000 events a second it delivers in batches (docs/outbound-webhooks.md).
"""

import datetime
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from emailsystem.core.plain_sql import rows_insert
from emailsystem.outbound.delivery import AttemptResult, attempt_post
from emailsystem.outbound.models import MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_secrets
from emailsystem.outbound.signing import SecretUnreadable
from emailsystem.outbound.sql import messages_read

logger = logging.getLogger(__name__)

# An endpoint whose attempts have all failed for this long is disabled.
DISABLE_AFTER = datetime.timedelta(days=3)


@dataclass(frozen=True)
class MessageToSend:
    pk: int
    endpoint_id: int
    webhook_id: str
    body: str
    state: str


@dataclass(frozen=True)
class EndpointToCall:
    """What an attempt needs of an endpoint; `secrets` empty when they cannot be read (`problem` says why)."""

    pk: int
    user_id: int
    url: str
    secrets: list[str]
    enabled: bool
    failing_since: datetime.datetime | None
    problem: str = ""


@dataclass(frozen=True)
class Attempted:
    """One attempt made: what to record, and the retry it schedules (None: no retry follows)."""

    message: MessageToSend
    endpoint: EndpointToCall
    attempt: int
    result: AttemptResult
    retry_after_seconds: int | None


def retry_delay(attempt: int) -> int | None:
    """Seconds before the attempt after `attempt` (1-based), or None when it was the last."""
    schedule = settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE
    return schedule[attempt - 1] if attempt <= len(schedule) else None


def messages_load(ids: Iterable[int]) -> dict[int, MessageToSend]:
    rows = messages_read(ids=sorted(set(ids)), fields=("id", "endpoint", "webhook_id", "body", "state"))
    return {row[0]: MessageToSend(*row) for row in rows}


def endpoints_load(ids: Iterable[int]) -> dict[int, EndpointToCall]:
    """The endpoints that exist among `ids`, with their secrets decrypted."""
    loaded = {}
    for endpoint in WebhookEndpoint.objects.filter(pk__in=set(ids)):
        try:
            secrets, problem = endpoint_secrets(endpoint), ""
        except SecretUnreadable as error:
            secrets, problem = [], str(error)
        loaded[endpoint.pk] = EndpointToCall(
            endpoint.pk, endpoint.user_id, endpoint.url, secrets, endpoint.enabled, endpoint.failing_since, problem
        )
    return loaded


def attempt_make(*, message: MessageToSend, endpoint: EndpointToCall, attempt: int) -> Attempted:
    """POST the message (no database access: pool threads call this); what to record."""
    if endpoint.problem:
        result = AttemptResult(None, 0, endpoint.problem)
    else:
        result = attempt_post(
            url=endpoint.url, secrets=endpoint.secrets, webhook_id=message.webhook_id, body=message.body
        )
    delay = None if result.succeeded else retry_delay(attempt)
    return Attempted(message, endpoint, attempt, result, delay)


def messages_skip(*, message_ids: Sequence[int]) -> None:
    """Mark pending messages of disabled endpoints `skipped`: they are not attempted."""
    if message_ids:
        WebhookMessage.objects.filter(pk__in=message_ids, state=MessageState.PENDING).update(state=MessageState.SKIPPED)


@transaction.atomic
def attempts_record(*, attempts: Sequence[Attempted]) -> None:
    """Store a batch of attempts, their messages' states and their endpoints' failure clocks, in one
    transaction of a few statements; disable endpoints that have failed for DISABLE_AFTER without a success."""
    if not attempts:
        return
    now = timezone.now()
    # Plain SQL: a model instance and the ORM's insert compiler per attempt were a fifth of the
    # webhooks process's CPU at 1,000 events/s; nothing listens to WebhookAttempt's signals.
    rows_insert(
        WebhookAttempt,
        [
            {
                "message_id": item.message.pk,
                "endpoint_id": item.endpoint.pk,
                "attempt": item.attempt,
                "status_code": item.result.status_code,
                "duration_ms": item.result.duration_ms,
                "error": item.result.error,
                "next_retry_at": (
                    now + datetime.timedelta(seconds=item.retry_after_seconds)
                    if item.retry_after_seconds is not None
                    else None
                ),
                "created": now,
            }
            for item in attempts
        ],
    )
    by_state: dict[MessageState, list[int]] = defaultdict(list)
    for item in attempts:
        if item.result.succeeded:
            by_state[MessageState.DELIVERED].append(item.message.pk)
        else:
            state = MessageState.PENDING if item.retry_after_seconds is not None else MessageState.FAILED
            by_state[state].append(item.message.pk)
    for state, ids in by_state.items():
        WebhookMessage.objects.filter(pk__in=ids).update(state=state, attempts=F("attempts") + 1)
    _failure_clocks(attempts, now)
    for item in attempts:
        log = logger.info if item.result.succeeded else logger.warning
        log(
            "webhook attempt",
            extra={
                "endpoint_id": item.endpoint.pk,
                "webhook_id": item.message.webhook_id,
                "attempt": item.attempt,
                "status_code": item.result.status_code,
                "error": item.result.error,
            },
        )


def _failure_clocks(attempts: Sequence[Attempted], now: datetime.datetime) -> None:
    """A success stops an endpoint's failure clock, a failure starts it; one that ran DISABLE_AFTER disables it."""
    succeeded = {item.endpoint.pk for item in attempts if item.result.succeeded}
    failed = {item.endpoint.pk: item for item in attempts if not item.result.succeeded}
    clear = [item.endpoint.pk for item in attempts if item.result.succeeded and item.endpoint.failing_since]
    if clear:
        WebhookEndpoint.objects.filter(pk__in=clear).update(failing_since=None)
    failing = [pk for pk in failed if pk not in succeeded]
    if not failing:
        return
    WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(failing_since=now)
    expired = WebhookEndpoint.objects.filter(pk__in=failing, enabled=True, failing_since__lte=now - DISABLE_AFTER)
    for pk in expired.values_list("pk", flat=True):
        reason = (
            f"Disabled at {now:%Y-%m-%d %H:%M} UTC: every attempt failed for {DISABLE_AFTER.days} days. "
            f"Last error: {failed[pk].result.error}"
        )[:1000]
        WebhookEndpoint.objects.filter(pk=pk).update(enabled=False, disabled_reason=reason)
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": pk, "user_id": failed[pk].endpoint.user_id})


def message_attempt(*, message_id: int, attempt: int) -> int | None:
    """Attempt one message and record it, as the webhooks process does for a batch of one: the retry
    delay that follows (None: no retry). A message that is gone or delivered, or whose endpoint is
    gone or disabled, is not attempted."""
    message = messages_load([message_id]).get(message_id)
    if message is None or message.state == MessageState.DELIVERED:
        return None
    endpoint = endpoints_load([message.endpoint_id]).get(message.endpoint_id)
    if endpoint is None:
        return None
    if not endpoint.enabled:
        messages_skip(message_ids=[message.pk])
        return None
    attempted = attempt_make(message=message, endpoint=endpoint, attempt=attempt)
    attempts_record(attempts=[attempted])
    return attempted.retry_after_seconds
