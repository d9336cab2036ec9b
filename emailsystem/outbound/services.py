"""Writes for users' webhook endpoints: create, change, rotate the secret, test, replay, delete."""

import datetime
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from emailsystem.core.exceptions import ApplicationError
from emailsystem.outbound.events import Change, event_body, webhook_id_new
from emailsystem.outbound.models import EventType, MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.publishing import RELAY_GRACE, webhook_messages_publish_on_commit
from emailsystem.outbound.signing import secret_decrypt, secret_encrypt, secret_generate
from emailsystem.outbound.targets import TargetRefused, target_check
from emailsystem.users.models import User

logger = logging.getLogger(__name__)

# After a rotation the previous secret signs too for this long, so receivers can switch over.
PREVIOUS_SECRET_VALID = datetime.timedelta(hours=24)


def endpoint_url_check(url: str) -> None:
    """ApplicationError (400 on `url`) unless the service may call the URL (outbound/targets.py)."""
    try:
        target_check(url)
    except TargetRefused as error:
        raise ApplicationError(f"The URL {error}.", field="url") from None


def endpoint_create(*, user: User, url: str, events: list[str], description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint with a new secret; the endpoint and its secret (the API shows it once)."""
    endpoint_url_check(url)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        user=user, url=url, events=events, description=description, secret_encrypted=secret_encrypt(secret)
    )
    logger.info("webhook endpoint created", extra={"user_id": user.pk, "endpoint_id": endpoint.pk})
    return endpoint, secret


def endpoint_update(*, endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    """Change url, events, description or enabled; enabling clears the disabled reason and the failure clock."""
    if "url" in fields:
        endpoint_url_check(fields["url"])
    for name, value in fields.items():
        setattr(endpoint, name, value)
    if fields.get("enabled"):
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
    endpoint.save()
    return endpoint


def endpoint_secrets(endpoint: WebhookEndpoint, *, now: datetime.datetime | None = None) -> list[str]:
    """The secrets that sign its messages now: the current one, and the previous one within its 24 hours."""
    now = now or timezone.now()
    secrets = [secret_decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires
        and endpoint.previous_secret_expires > now
    ):
        secrets.append(secret_decrypt(endpoint.previous_secret_encrypted))
    return secrets


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it for PREVIOUS_SECRET_VALID."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = secret_generate()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires = timezone.now() + PREVIOUS_SECRET_VALID
    endpoint.secret_encrypted = secret_encrypt(secret)
    endpoint.save()
    logger.info("webhook endpoint secret rotated", extra={"user_id": endpoint.user_id, "endpoint_id": endpoint.pk})
    return endpoint, secret


@transaction.atomic
def endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookMessage:
    """Queue an `endpoint.test` message for the endpoint, whatever its events and state."""
    now = timezone.now()
    change = Change(EventType.TEST, None, "", "test", "", [], {}, now)
    webhook_id = webhook_id_new()
    message = WebhookMessage.objects.create(
        endpoint=endpoint,
        event_type=EventType.TEST,
        webhook_id=webhook_id,
        body=event_body(webhook_id=webhook_id, change=change),
        created=now,
        publish_after=now + RELAY_GRACE,
    )
    webhook_messages_publish_on_commit([(message.pk, endpoint.pk, webhook_id)])
    return message


@transaction.atomic
def attempt_replay(*, attempt: WebhookAttempt) -> WebhookMessage:
    """Queue the attempt's message again, from its first attempt, with the same webhook-id and body."""
    message = WebhookMessage.objects.select_for_update().get(pk=attempt.message_id)
    message.state = MessageState.PENDING
    message.publish_after = timezone.now() + RELAY_GRACE
    message.save(update_fields=["state", "publish_after"])
    webhook_messages_publish_on_commit([(message.pk, message.endpoint_id, message.webhook_id)])
    return message


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its messages and attempts; queued messages for it are dropped when they come up."""
    endpoint.delete()
