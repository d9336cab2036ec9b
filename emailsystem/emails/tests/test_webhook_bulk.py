"""Large Event Webhook batches are applied in bulk: the statement count does not grow per event."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emailsender.testing.fake_events import EventEmitter
from emailsystem.emails.models import DeliveryEvent, DeliveryStatus, EmailStatus, Suppression
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.webhooks.services import BULK_ROWS

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/sendgrid/"


@pytest.fixture
def signer(settings):
    emitter = EventEmitter(fake=None)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = emitter.public_key()
    return emitter


def batch(email, kinds):
    """Every recipient of `email` gets each kind, one second apart; every 10th also bounces."""
    events = []
    for delivery_id, address in email.deliveries.order_by("pk").values_list("pk", "recipient__email"):
        names = [*kinds, "bounce"] if delivery_id % 10 == 0 else kinds
        for offset, kind in enumerate(names):
            events.append(
                {
                    "email": address,
                    "timestamp": 1_795_000_000 + offset,
                    "event": kind,
                    "type": "bounce",
                    "sg_event_id": f"{delivery_id}-{kind}",
                    "delivery_id": str(delivery_id),
                    "email_id": str(email.pk),
                }
            )
    return events


def apply(client, signer, events):
    body = json.dumps(events).encode()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, body, content_type="application/json", headers=signer.sign(body))
    assert response.status_code == 200, response.content
    return response.json(), len(queries)


def test_thousands_of_events_take_a_handful_of_statements(client, signer, settings):
    settings.REQUEST_MAX_BYTES = 4 * 1024 * 1024
    small_email = sent_email(recipients=[f"s{n}@example.com" for n in range(10)])
    large_email = sent_email(recipients=[f"r{n}@example.com" for n in range(1000)])

    small, small_queries = apply(client, signer, batch(small_email, ["processed", "delivered", "open"]))
    large, large_queries = apply(client, signer, batch(large_email, ["processed", "delivered", "open"]))

    assert large["applied"] == 3100 and small["applied"] == 31
    # Same statements for 31 events and for 3,100; only the bulk writes split every BULK_ROWS rows
    # (events: 4 statements instead of 1; the 1,000 deliveries' update fits in one).
    extra_chunks = (3100 - 1) // BULK_ROWS
    assert large_queries <= small_queries + extra_chunks
    assert large_queries <= 15
    assert DeliveryEvent.objects.filter(delivery__sent_email=large_email).count() == 3100
    statuses = dict(large_email.deliveries.values_list("pk", "status"))
    assert {status for pk, status in statuses.items() if pk % 10 == 0} == {DeliveryStatus.BOUNCED}
    assert {status for pk, status in statuses.items() if pk % 10} == {DeliveryStatus.OPENED}
    assert Suppression.objects.filter(user=large_email.sender).count() == 100
    large_email.refresh_from_db()
    assert large_email.status == EmailStatus.PARTIAL
