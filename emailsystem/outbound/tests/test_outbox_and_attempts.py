"""The outbox of webhook messages (published after commit, relayed when not) and what an attempt records."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from emailsystem.emails.tests.factories import sent_email
from emailsystem.outbound import topology as webhook_topology
from emailsystem.outbound.attempts import DISABLE_AFTER, message_attempt
from emailsystem.outbound.models import MessageState, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.publishing import webhook_messages_relay
from emailsystem.outbound.services import endpoint_create
from emailsystem.outbound.tests.receiver import Receiver
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.rabbitmq
def test_messages_are_published_after_commit_and_the_relay_publishes_those_left_over(webhook_broker, settings):
    user = UserFactory()
    endpoint, _secret = endpoint_create(user=user, url="http://127.0.0.1:9/", events=["email.queued"])
    queue = webhook_topology.webhooks_queue(webhook_broker.prefix)

    sent_email(user=user, recipients=["a@example.com", "b@example.com"])
    published = webhook_broker.take(queue)
    settings.RABBITMQ_URL = ""  # the broker is unreachable when this send commits
    sent_email(user=user, recipients=["c@example.com"])
    settings.RABBITMQ_URL = webhook_broker.url
    left = WebhookMessage.objects.get(publish_after__isnull=False)
    WebhookMessage.objects.filter(pk=left.pk).update(publish_after=timezone.now())

    relayed = webhook_messages_relay()

    assert len(published) == 2
    assert WebhookMessage.objects.filter(publish_after__isnull=True).count() == 3
    assert relayed == 1
    [(properties, body)] = webhook_broker.take(queue)
    assert properties.message_id == left.webhook_id
    assert webhook_topology.decode(body) == (left.pk, endpoint.pk, 1)


def test_an_endpoint_failing_for_three_days_is_disabled_with_its_reason(settings, user, user_client):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE = (1,)
    with Receiver([503]) as receiver:
        endpoint, _secret = endpoint_create(user=user, url=receiver.url, events=["email.queued"])
        sent_email(user=user, recipients=["a@example.com", "b@example.com"])
        first, second = WebhookMessage.objects.order_by("pk")

        retry = message_attempt(message_id=first.pk, attempt=1)
        endpoint.refresh_from_db()
        assert retry == 1
        assert endpoint.enabled and endpoint.failing_since is not None
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - DISABLE_AFTER)
        last = message_attempt(message_id=first.pk, attempt=2)
        skipped = message_attempt(message_id=second.pk, attempt=1)

    endpoint.refresh_from_db()
    assert last is None and skipped is None
    assert not endpoint.enabled
    assert "failed for 3 days" in endpoint.disabled_reason and "HTTP 503" in endpoint.disabled_reason
    assert len(receiver.received) == 2  # the disabled endpoint's next message was not attempted
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.state, second.state) == (MessageState.FAILED, MessageState.SKIPPED)
    shown = user_client.get(f"/api/v1/webhooks/endpoints/{endpoint.pk}/").json()
    assert (shown["enabled"], shown["disabled_reason"]) == (False, endpoint.disabled_reason)


def test_a_success_stops_the_failure_clock(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    user = UserFactory()
    with Receiver([500, 200]) as receiver:
        endpoint, _secret = endpoint_create(user=user, url=receiver.url, events=["email.queued"])
        sent_email(user=user, recipients=["a@example.com"])
        message = WebhookMessage.objects.get()
        message_attempt(message_id=message.pk, attempt=1)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - DISABLE_AFTER + datetime.timedelta(minutes=1)
        )
        message_attempt(message_id=message.pk, attempt=2)

    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is None


@pytest.mark.parametrize("value", ["abc", "5,,10", "0", "-5", "5,9999999"])
def test_an_invalid_retry_schedule_stops_start_up_naming_the_variable(value):
    env = {**os.environ, "DJANGO_DEBUG": "1", "LOG_FORMAT": "plain", "OUTBOUND_WEBHOOKS_RETRY_SCHEDULE": value}

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "OUTBOUND_WEBHOOKS_RETRY_SCHEDULE must be whole seconds" in result.stderr
