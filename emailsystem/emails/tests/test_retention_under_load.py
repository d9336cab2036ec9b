"""Sends go on while `prune` deletes an old log, on real PostgreSQL.

The proportional version of bench's `prune` scenario (a million rows, with the send p99 it
keeps: docs/performance.md): 2,000 old emails with 4,000 deliveries and 2,000 events (the events
go first, on their own retention), the emails in batches of 200 recipients, while a client
sends through the API, some to the very addresses whose old deliveries are being deleted.
The positive signal: inside an open batch (its rows deleted and locked, not yet committed)
sends start and complete. Nothing here asserts a duration; the timeouts only turn a blocked
send into a failure instead of a hang.
"""

import datetime
import threading

import pytest
from django.db import connections
from django.utils import timezone

from emailsystem.conftest import token_client
from emailsystem.emails import retention
from emailsystem.emails.models import Delivery, DeliveryEvent, DeliveryStatus, EmailStatus, Recipient, SentEmail
from emailsystem.emails.retention import records_prune
from emailsystem.users.tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OLD_EMAILS = 2000
ADDRESSES = 200
BATCH_ROWS = 200
# Batches that wait, while open, for sends to complete.
WATCHED_BATCHES = 3
# A send blocked by a batch would never complete: after this the test fails rather than hangs.
SEND_SECONDS = 60


def seed_old_log() -> None:
    """OLD_EMAILS emails accepted in 2000, two delivered recipients each and an event for one."""
    sender = UserFactory.create()
    recipients = Recipient.objects.bulk_create(Recipient(email=f"old{n}@example.com") for n in range(ADDRESSES))
    accepted = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    emails = SentEmail.objects.bulk_create(
        SentEmail(
            sender=sender, subject="Old", body="b", from_email="x@example.com", recipient_count=2, created=accepted
        )
        for _ in range(OLD_EMAILS)
    )
    SentEmail.objects.update(status=EmailStatus.DELIVERED)
    deliveries = Delivery.objects.bulk_create(
        Delivery(sent_email=email, recipient=recipients[(n + k) % ADDRESSES], status=DeliveryStatus.DELIVERED)
        for n, email in enumerate(emails)
        for k in (0, 1)
    )
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(sg_event_id=f"old-{delivery.pk}", delivery=delivery, event="delivered", occurred_at=accepted)
        for delivery in deliveries[::2]
    )
    DeliveryEvent.objects.update(received_at=accepted)


class Sender(threading.Thread):
    """Sends through the API until stopped, counting the 202s; some go to the old log's addresses."""

    def __init__(self) -> None:
        super().__init__(name="sender")
        self.client = token_client(UserFactory.create())
        self.done = 0
        self.refused: list[int] = []
        self.progress = threading.Condition()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                recipients = [f"old{self.done % ADDRESSES}@example.com", f"new{self.done}@example.com"]
                response = self.client.post(
                    "/api/v1/emails/sent-email/", {"recipients": recipients, "subject": "New", "body": "b"}
                )
                with self.progress:
                    if response.status_code != 202:
                        self.refused.append(response.status_code)
                    self.done += 1
                    self.progress.notify_all()
        finally:
            connections.close_all()

    def wait_for(self, count: int) -> bool:
        with self.progress:
            return self.progress.wait_for(lambda: self.done >= count, timeout=SEND_SECONDS)


def test_sends_complete_inside_an_open_prune_batch(monkeypatch, settings):
    settings.EMAIL_FROM_ADDRESS = "service@example.com"  # any user may send
    seed_old_log()
    sender = Sender()
    delete = retention.sent_emails_delete
    watched: list[bool] = []

    def delete_then_let_sends_through(*, email_ids):
        deleted = delete(email_ids=email_ids)
        if len(watched) < WATCHED_BATCHES:
            # Two more: at least one of them started after this batch had its rows locked.
            watched.append(sender.wait_for(sender.done + 2))
        return deleted

    monkeypatch.setattr(retention, "sent_emails_delete", delete_then_let_sends_through)
    sender.start()
    try:
        assert sender.wait_for(1), "no send completed before prune started"
        results = {item.kind: item for item in records_prune(batch_rows=BATCH_ROWS)}
    finally:
        sender.stop.set()
        sender.join(SEND_SECONDS)

    assert watched == [True] * WATCHED_BATCHES, "a send did not complete while a prune batch was open"
    assert sender.refused == []
    # The events went first, on their own retention; then the emails with their deliveries.
    assert results["delivery events"].rows == OLD_EMAILS
    pruned = results["sent emails"]
    assert (pruned.rows, pruned.with_rows[Delivery], pruned.skipped_batches) == (OLD_EMAILS, 2 * OLD_EMAILS, 0)
    assert not DeliveryEvent.objects.exists()
    # Every send kept, with both recipients, the old log's address included.
    assert SentEmail.objects.count() == sender.done
    assert Delivery.objects.count() == 2 * sender.done
    assert Recipient.objects.filter(email__startswith="old").count() == ADDRESSES
    assert timezone.now() - SentEmail.objects.earliest("created").created < datetime.timedelta(hours=1)
