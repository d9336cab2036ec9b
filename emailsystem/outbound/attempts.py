"""What the webhooks process does with one queued message: attempt it, record the attempt, decide what follows."""

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from emailsystem.outbound.delivery import AttemptResult, attempt_post
from emailsystem.outbound.models import MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_secrets
from emailsystem.outbound.signing import SecretUnreadable

logger = logging.getLogger(__name__)

# An endpoint whose attempts have all failed for this long is disabled.
DISABLE_AFTER = datetime.timedelta(days=3)


@dataclass(frozen=True)
class Outcome:
    """What the consumer does next: ack, after scheduling a retry in `retry_after_seconds` if set."""

    retry_after_seconds: int | None = None


DONE = Outcome()


def retry_delay(attempt: int) -> int | None:
    """Seconds before the attempt after `attempt` (1-based), or None when it was the last."""
    schedule = settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE
    return schedule[attempt - 1] if attempt <= len(schedule) else None


def message_attempt(*, message_id: int, attempt: int) -> Outcome:
    """Make attempt number `attempt` of the message and record it; what follows.

    A message that is gone, already delivered, or whose endpoint is gone or disabled is not
    attempted. Raises DatabaseError when the attempt cannot be recorded (the consumer then
    returns the message to the queue, so the attempt is made again).
    """
    message = WebhookMessage.objects.select_related("endpoint").filter(pk=message_id).first()
    if message is None or message.state == MessageState.DELIVERED:
        return DONE
    endpoint = message.endpoint
    if not endpoint.enabled:
        WebhookMessage.objects.filter(pk=message.pk, state=MessageState.PENDING).update(state=MessageState.SKIPPED)
        return DONE
    try:
        secrets = endpoint_secrets(endpoint)
    except SecretUnreadable as error:
        result = AttemptResult(None, 0, str(error))
    else:
        result = attempt_post(url=endpoint.url, secrets=secrets, webhook_id=message.webhook_id, body=message.body)
    delay = None if result.succeeded else retry_delay(attempt)
    attempt_record(message=message, endpoint=endpoint, attempt=attempt, result=result, retry_after_seconds=delay)
    log = logger.info if result.succeeded else logger.warning
    log(
        "webhook attempt",
        extra={
            "endpoint_id": endpoint.pk,
            "webhook_id": message.webhook_id,
            "attempt": attempt,
            "status_code": result.status_code,
            "error": result.error,
        },
    )
    return Outcome(delay)


@transaction.atomic
def attempt_record(
    *,
    message: WebhookMessage,
    endpoint: WebhookEndpoint,
    attempt: int,
    result: AttemptResult,
    retry_after_seconds: int | None,
) -> None:
    """Store the attempt, the message's state and the endpoint's failure clock; disable an
    endpoint that has failed for DISABLE_AFTER without a success."""
    now = timezone.now()
    next_retry = now + datetime.timedelta(seconds=retry_after_seconds) if retry_after_seconds is not None else None
    WebhookAttempt.objects.create(
        message=message,
        endpoint=endpoint,
        attempt=attempt,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        error=result.error,
        next_retry_at=next_retry,
        created=now,
    )
    if result.succeeded:
        state = MessageState.DELIVERED
    else:
        state = MessageState.PENDING if next_retry is not None else MessageState.FAILED
    WebhookMessage.objects.filter(pk=message.pk).update(state=state, attempts=F("attempts") + 1)
    if result.succeeded:
        if endpoint.failing_since is not None:  # as read with the message: a healthy endpoint costs no UPDATE
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint.pk, enabled=True, failing_since__lte=now - DISABLE_AFTER
    ).update(
        enabled=False,
        disabled_reason=(
            f"Disabled at {now:%Y-%m-%d %H:%M} UTC: every attempt failed for {DISABLE_AFTER.days} days. "
            f"Last error: {result.error}"
        )[:1000],
    )
    if disabled:
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.pk, "user_id": endpoint.user_id})
