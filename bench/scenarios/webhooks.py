"""webhook_events_per_s: outbound webhook events delivered by one webhooks process to a receiver
on 127.0.0.1 that answers at once (docs/outbound-webhooks.md).

Once the webhooks process has delivered a first event, a backlog of messages for one endpoint is
written and published in one go; the rate is the events that arrived over the time from the
publish to the last arrival. The receiver is a threaded HTTP server in this process.
"""

import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from emailsystem.outbound.events import webhook_id_new
from emailsystem.outbound.models import EventType, WebhookMessage
from emailsystem.outbound.publishing import webhook_messages_publish
from emailsystem.outbound.services import endpoint_create, endpoint_test
from emailsystem.outbound.tests.receiver import Receiver

EVENTS = 10_000
PUBLISH_CHUNK = 1000
# Past this the run is abandoned as stuck (at the 1,000/s target 10,000 events take 10 s).
TIMEOUT_SECONDS = 180


def webhook_events_per_s(bench, context: dict[str, Any]) -> None:
    events = EVENTS // 5 if bench.quick else EVENTS
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    stack = context["stack"]
    with Receiver() as receiver:
        endpoint, _secret = endpoint_create(user=context["user"], url=receiver.url, events=[EventType.SENT])
        process = stack.start("webhooks", env={**stack.env, "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": "1"})
        try:
            # Not timed: the process's start-up, until one event went through.
            warm_up = endpoint_test(endpoint=endpoint)
            webhook_messages_publish(messages=[(warm_up.pk, endpoint.pk, warm_up.webhook_id)])
            receiver.wait_for(1, timeout=TIMEOUT_SECONDS)

            def once() -> None:
                body = '{"type":"email.sent","timestamp":"2026-01-01T00:00:00Z","data":{}}'
                now = timezone.now()
                fields = {"endpoint": endpoint, "event_type": EventType.SENT, "body": body, "created": now}
                rows = WebhookMessage.objects.bulk_create(
                    WebhookMessage(webhook_id=webhook_id_new(), **fields) for _ in range(events)
                )
                before = len(receiver.received)
                started = time.monotonic()
                for start in range(0, events, PUBLISH_CHUNK):
                    chunk = rows[start : start + PUBLISH_CHUNK]
                    webhook_messages_publish(messages=[(row.pk, endpoint.pk, row.webhook_id) for row in chunk])
                receiver.wait_for(before + events, timeout=TIMEOUT_SECONDS)
                bench.record("webhook_events_per_s", events / (time.monotonic() - started))

            bench.repeat("webhook events", once)
        finally:
            process.stop()
            endpoint.delete()
