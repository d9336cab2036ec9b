"""Two webhook batches at once, each about a different recipient of one email.

Each batch's transaction counts the email's recipients to derive its status. Without a lock
on the email, each would count the other's recipient as it was before, and the last to
commit would store a status that neither transaction saw whole (write skew).
"""

import json
import threading
import time

import pytest
from django.db import connection, transaction

from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import DeliveryStatus, EmailStatus
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result
from emailsystem.emails.webhooks.parsing import batch_parse
from emailsystem.emails.webhooks.services import sendgrid_events_apply


def delivered(delivery, event_id: str):
    body = [
        {
            "event": "delivered",
            "sg_event_id": event_id,
            "timestamp": 1_795_000_000,
            "delivery_id": str(delivery.pk),
            "email_id": str(delivery.sent_email_id),
        }
    ]
    return batch_parse(json.dumps(body).encode())


def waiting_on_a_lock() -> int:
    """Backends of this test database waiting for a row lock right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_batches_about_different_recipients_of_one_email_leave_it_delivered():
    email = sent_email(recipients=["a@example.com", "b@example.com"])
    delivery_results_apply(results=[result(email, "sent")])
    first, second = email.deliveries.order_by("pk")
    first_applied = threading.Event()
    second_done = threading.Event()

    def apply(index: int) -> None:
        if index == 0:
            with transaction.atomic():
                sendgrid_events_apply(batch=delivered(first, "evt-first"))
                first_applied.set()
                # Hold the transaction open until the other batch has either finished (no lock
                # kept it out: the race) or is waiting for this one's lock.
                deadline = time.monotonic() + 30
                while not second_done.is_set() and not waiting_on_a_lock() and time.monotonic() < deadline:
                    time.sleep(0.02)
        else:
            assert first_applied.wait(timeout=30)
            sendgrid_events_apply(batch=delivered(second, "evt-second"))
            second_done.set()

    run_concurrently(2, apply)

    email.refresh_from_db()
    assert [d.status for d in email.deliveries.order_by("pk")] == [DeliveryStatus.DELIVERED] * 2
    assert email.status == EmailStatus.DELIVERED
