"""Cancel against the claim that hands a due scheduled send on: on real PostgreSQL, exactly one wins."""

import datetime
import threading

import pytest
from django.db import connections
from django.utils import timezone

from emailsystem.core.exceptions import ConflictError
from emailsystem.emails.delivery.outbox import outbox_claim, outbox_claim_batch
from emailsystem.emails.delivery.schedule import sent_email_cancel
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, OutboxMessage, SentEmail
from emailsystem.emails.services import sent_email_create

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 40


def due_scheduled_send(user) -> SentEmail:
    """A scheduled send whose send_at has just passed: claimable by the relay, cancelable by its sender."""
    send_at = timezone.now() + datetime.timedelta(minutes=5)
    email_id = sent_email_create(
        user=user, recipients=["a@example.com", "b@example.com"], subject="s", body="b", send_at=send_at
    ).email_id
    past = timezone.now() - datetime.timedelta(milliseconds=1)
    SentEmail.objects.filter(pk=email_id).update(send_at=past)
    OutboxMessage.objects.filter(sent_email_id=email_id).update(available_at=past)
    return SentEmail.objects.get(pk=email_id)


# The relay claims a batch; the embedded worker claims row by row.
CLAIMS = {
    "relay": lambda outbox_id: outbox_id in outbox_claim_batch(limit=10),
    "embedded": lambda outbox_id: outbox_claim(outbox_id=outbox_id),
}


def race(email: SentEmail, take) -> tuple[bool, bool]:
    """Claim and cancel at the same moment from two connections; (claimed, canceled)."""
    start = threading.Barrier(2)
    outcome = {}

    def claim() -> None:
        start.wait()
        try:
            outcome["claimed"] = bool(take(outbox_id))
        finally:
            connections.close_all()

    def cancel() -> None:
        start.wait()
        try:
            sent_email_cancel(sent_email=email)
            outcome["canceled"] = True
        except ConflictError:
            outcome["canceled"] = False
        finally:
            connections.close_all()

    outbox_id = OutboxMessage.objects.get(sent_email=email).pk
    threads = [threading.Thread(target=claim), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome["claimed"], outcome["canceled"]


@pytest.mark.parametrize("claimer", sorted(CLAIMS))
def test_a_cancel_racing_the_claim_either_wins_with_nothing_left_to_send_or_loses_with_a_409(user, claimer):
    winners = {"claim": 0, "cancel": 0}
    for _ in range(ROUNDS):
        email = due_scheduled_send(user)

        claimed, canceled = race(email, CLAIMS[claimer])

        assert claimed != canceled, "exactly one of the two takes the row"
        statuses = set(Delivery.objects.filter(sent_email=email).values_list("status", flat=True))
        email.refresh_from_db()
        if canceled:
            winners["cancel"] += 1
            assert email.status == EmailStatus.CANCELED and statuses == {DeliveryStatus.CANCELED}
            assert not OutboxMessage.objects.filter(sent_email=email).exists()
        else:
            winners["claim"] += 1
            assert email.status == EmailStatus.SCHEDULED and statuses == {DeliveryStatus.QUEUED}
            assert OutboxMessage.objects.filter(sent_email=email).exists()
        OutboxMessage.objects.all().delete()  # the claimed row of this round must not be in the next one's batch
    print(f"{claimer}: winners over {ROUNDS} rounds: {winners}")
