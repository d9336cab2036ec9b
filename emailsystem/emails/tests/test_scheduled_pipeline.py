"""Scheduled sends through the whole deployed pipeline: API -> outbox -> relay -> RabbitMQ -> sender -> fake SendGrid.

Real PostgreSQL, real RabbitMQ, the relay, sender and results processes as separate processes.
"""

import datetime
import threading

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from emailsystem.emails.models import EmailStatus, OutboxMessage, SentEmail
from emailsystem.emails.services import sent_email_create
from emailsystem.emails.tests.pipeline import URL, send, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def schedule(client, send_at: datetime.datetime, recipients: list[str]) -> int:
    payload = {"recipients": recipients, "subject": "Later", "body": "b", "send_at": send_at.isoformat()}
    response = client.post(URL, payload, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "scheduled"
    return response.json()["id"]


def emails_at_fake(fake) -> dict[int, list[float]]:
    """Email id -> when each accepted request carrying it arrived."""
    seen: dict[int, list[float]] = {}
    for request in fake.requests:
        if request.status == 202:
            for email_id in request.email_ids:
                seen.setdefault(email_id, []).append(request.at)
    return seen


def test_a_scheduled_send_survives_every_process_stopping_and_goes_out_after_send_at(stack, user_client):
    stack.start("sender"), stack.start("results"), stack.start("relay")
    send_at = timezone.now() + datetime.timedelta(seconds=4)
    later = schedule(user_client, send_at, ["later@example.com"])
    now = send(user_client, ["now@example.com"])
    # A send made after the scheduled one goes out while the scheduled one waits, unclaimed.
    wait_until(lambda: now in emails_at_fake(stack.fake), stack, what="the immediate send reached SendGrid")
    assert later not in emails_at_fake(stack.fake)
    assert OutboxMessage.objects.get(sent_email_id=later).available_at == send_at

    stack.stop_all()  # every process down: the schedule lives in PostgreSQL
    stack.start("sender"), stack.start("results"), stack.start("relay")

    wait_until(lambda: SentEmail.objects.get(pk=later).status == EmailStatus.SENT, stack, what="the scheduled send")
    [arrived] = emails_at_fake(stack.fake)[later]
    assert arrived >= send_at.timestamp()
    assert not OutboxMessage.objects.exists()


# Rounds of the race below until both outcomes have occurred: on a busy machine one round can
# end all canceled (the relay is late) or all sent (the cancels are late).
RACE_ROUNDS = 6


def race_cancels_against_the_relay(stack, user) -> list[str]:
    """Fifty sends due at one moment; their sender cancels each at about that moment, from the
    newest while the relay hands them on from the oldest. Checks that each email ended either
    canceled with nothing sent or sent once after send_at, never both; returns the outcomes."""
    # Recorded with the service: fifty API requests on a busy machine can outlast a short send_at.
    send_at = timezone.now() + datetime.timedelta(seconds=3)
    ids = [
        sent_email_create(user=user, recipients=[f"r{n}@example.com"], subject="s", body="b", send_at=send_at).email_id
        for n in range(50)
    ]
    answers: dict[int, int] = {}

    def cancel_all(batch: list[int]) -> None:
        own = APIClient()
        own.force_authenticate(user)
        threading.Event().wait(max(0.0, (send_at - timezone.now()).total_seconds()))
        try:
            for email_id in batch:
                answers[email_id] = own.post(f"{URL}{email_id}/cancel/").status_code
        finally:
            connections.close_all()

    newest_first = list(reversed(ids))
    threads = [threading.Thread(target=cancel_all, args=(newest_first[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settled = {EmailStatus.CANCELED, EmailStatus.SENT}
    wait_until(
        lambda: set(SentEmail.objects.filter(pk__in=ids).values_list("status", flat=True)) <= settled,
        stack,
        what="every email canceled or sent",
    )

    at_fake = emails_at_fake(stack.fake)
    statuses = dict(SentEmail.objects.filter(pk__in=ids).values_list("pk", "status"))
    for email_id in ids:
        if statuses[email_id] == EmailStatus.CANCELED:
            assert answers[email_id] == 200 and email_id not in at_fake
        else:
            assert answers[email_id] == 409 and len(at_fake[email_id]) == 1
            assert at_fake[email_id][0] >= send_at.timestamp()
    return list(statuses.values())


def test_cancels_racing_the_relay_end_canceled_with_nothing_sent_or_sent_never_both(stack, user):
    """The race is run until both outcomes have occurred (at most RACE_ROUNDS times), so the
    check covers cancels that lost to the relay as well as cancels that won."""
    stack.start("sender"), stack.start("results"), stack.start("relay")
    seen: set[str] = set()
    for _ in range(RACE_ROUNDS):
        seen.update(race_cancels_against_the_relay(stack, user))
        if seen == {EmailStatus.CANCELED, EmailStatus.SENT}:
            break
    assert seen == {EmailStatus.CANCELED, EmailStatus.SENT}, seen
