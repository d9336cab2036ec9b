"""A sent email's timeline on its admin page: accepted, published or taken, attempts, requeues, SendGrid events."""

import datetime
import json

import pytest
from django.test import Client

from emailsender.clients import EmlFolderClient, SendGridClient
from emailsender.result_messages import ResultMessage
from emailsender.testing.fake_events import EventEmitter
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.delivery.requeue import deliveries_requeue
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import (
    DeliveryEvent,
    DeliveryStatus,
    HistoryKind,
    OutboxMessage,
    SentEmail,
    SentEmailHistory,
)
from emailsystem.emails.tests.admin_pages import ADMIN_DATETIME, email_page, logged_in, timeline
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_broker import dispatched
from emailsystem.emails.tests.test_delivery_results import result

pytestmark = pytest.mark.django_db


@pytest.fixture
def sendgrid(fake, settings):
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = fake.url
    config = sender_settings()
    return SendGridClient(config.sendgrid_api_key, config.sendgrid_api_host, timeout=2), config


def deliver_now(client, config) -> None:
    """Run the embedded worker's pass over every row that is due, retries included."""
    OutboxMessage.objects.update(available_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
    outbox_process(client=client, config=config)


def steps(html: str) -> list[tuple[str, str]]:
    return [(row.kind, row.step) for row in timeline(html)]


def test_a_send_through_the_embedded_worker_shows_accepted_taken_and_its_attempt(admin, settings, tmp_path):
    settings.OUTBOX_DIR = str(tmp_path)
    email = sent_email(user=admin, recipients=["a@example.com", "b@example.com"])

    outbox_process(client=EmlFolderClient(tmp_path), config=sender_settings())
    rows = timeline(email_page(logged_in(admin), email.pk))

    assert [(row.kind, row.step) for row in rows] == [
        ("accepted", "Accepted"),
        ("taken", "Taken by the in-process worker"),
        ("attempt", "Attempt 1: sent"),
    ]
    assert rows[0].detail == f"2 recipient(s), sent by {admin.email}"
    assert rows[1].recipients == "every queued recipient"
    assert rows[2].recipients == "a@example.com, b@example.com"
    assert all(ADMIN_DATETIME.fullmatch(row.time) for row in rows), [row.time for row in rows]


def test_retries_show_their_reason_and_a_failure_its_answer_then_a_requeue_and_its_attempt(admin, sendgrid, fake):
    client, config = sendgrid
    email = sent_email(user=admin, recipients=["a@example.com"])
    fake.set_mode(status=500, count=1)
    deliver_now(client, config)  # 500: retried later
    fake.set_mode(status=400, count=1)
    deliver_now(client, config)  # 400: failed at once
    deliveries_requeue(delivery_ids=email.deliveries.values_list("pk", flat=True))
    deliver_now(client, config)  # 202

    rows = timeline(email_page(logged_in(admin), email.pk))

    assert [(row.kind, row.step) for row in rows] == [
        ("accepted", "Accepted"),
        ("taken", "Taken by the in-process worker"),
        ("attempt", "Attempt 1: retry"),
        ("attempt", "Attempt 2: failed"),
        ("requeued", "Requeued"),
        ("taken", "Taken by the in-process worker"),
        ("attempt", "Attempt 1: sent"),
    ]
    retry, failed, requeued, sent = rows[2], rows[3], rows[4], rows[6]
    assert retry.detail.startswith("HTTP 500: ") and "internal server error" in retry.detail
    assert failed.detail.startswith("HTTP 400: ")
    assert requeued.recipients == "a@example.com"
    assert sent.detail == "HTTP 202"
    assert email.deliveries.get().status == DeliveryStatus.SENT


def test_sendgrid_events_appear_in_time_order_with_their_recipient(admin, settings):
    email = sent_email(user=admin, recipients=["a@example.com", "b@example.com"])
    delivery_results_apply(results=[result(email, "sent")])
    first, second = email.deliveries.select_related("recipient").order_by("pk")
    signer = EventEmitter(fake=None)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key()
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    events = [
        {"event": "open", "delivery": first, "at": now + 20},
        {"event": "bounce", "delivery": second, "at": now + 10, "reason": "550 no such user"},
        {"event": "delivered", "delivery": first, "at": now + 5, "response": "250 OK"},
    ]
    body = json.dumps(
        [
            {
                "email": item["delivery"].recipient.email,
                "timestamp": item["at"],
                "event": item["event"],
                "sg_event_id": f"evt-{index}",
                "delivery_id": str(item["delivery"].pk),
                "email_id": str(email.pk),
                **({"reason": item["reason"], "type": "bounce"} if "reason" in item else {}),
                **({"response": item["response"]} if "response" in item else {}),
            }
            for index, item in enumerate(events)
        ]
    ).encode()
    answer = Client().post(
        "/api/v1/webhooks/sendgrid/", body, content_type="application/json", headers=signer.sign(body)
    )
    assert answer.status_code == 200, answer.content

    rows = [row for row in timeline(email_page(logged_in(admin), email.pk)) if row.kind == "event"]

    assert [(row.step, row.recipients, row.detail) for row in rows] == [
        ("SendGrid: delivered", "a@example.com", "250 OK"),
        ("SendGrid: bounce", "b@example.com", "550 no such user"),
        ("SendGrid: open", "a@example.com", ""),
    ]


def test_a_result_applied_twice_is_one_attempt(admin):
    email = sent_email(user=admin, recipients=["a@example.com"])

    delivery_results_apply(results=[result(email, "retrying", attempt=1, reason="HTTP 503")])
    delivery_results_apply(results=[result(email, "retrying", attempt=1, reason="HTTP 503")])

    assert SentEmailHistory.objects.filter(kind=HistoryKind.ATTEMPT).count() == 1
    assert steps(email_page(logged_in(admin), email.pk)).count(("attempt", "Attempt 1: retry")) == 1


def test_a_result_for_an_email_deleted_since_is_applied_without_a_history_row():
    email = sent_email(recipients=["a@example.com"])
    stale = result(email, "sent")
    email.delete()

    assert delivery_results_apply(results=[stale]) == 0
    assert not SentEmailHistory.objects.exists()


def test_a_big_email_names_a_few_recipients_per_entry(admin):
    addresses = [f"r{n:02d}@example.com" for n in range(12)]
    email = sent_email(user=admin, recipients=addresses)
    delivery_results_apply(results=[result(email, "sent")])

    [attempt] = [row for row in timeline(email_page(logged_in(admin), email.pk)) if row.kind == "attempt"]

    assert attempt.recipients == ", ".join(addresses[:5]) + " and 7 more"


def outcome(email, outcome, delivery, *, attempt=1, status_code=None, reason=""):
    """A sender's result about one delivery, made now (as a sender stamps it)."""
    at = datetime.datetime.now(datetime.UTC)
    return ResultMessage(
        email_id=email.pk,
        deliveries=(delivery.pk,),
        outcome=outcome,
        attempt=attempt,
        reason=reason,
        status_code=status_code,
        at=at,
    )


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_in_broker_mode_the_dispatcher_and_the_relay_record_the_publish(
    broker, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(user=admin, recipients=["a@example.com", "b@example.com"])
    dispatched()
    first, second = email.deliveries.order_by("pk")
    delivery_results_apply(
        results=[
            outcome(email, "sent", first, status_code=202),
            outcome(email, "failed", second, status_code=400, reason="invalid address"),
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=[second.pk])  # published through the relay's code path

    rows = timeline(email_page(logged_in(admin), email.pk))

    assert [(row.kind, row.step) for row in rows] == [
        ("accepted", "Accepted"),
        ("published", "Published to the broker"),
        ("attempt", "Attempt 1: sent"),
        ("attempt", "Attempt 1: failed"),
        ("requeued", "Requeued"),
        ("published", "Published to the broker"),
    ]
    assert rows[1].recipients == "every queued recipient"
    assert rows[3].detail == "HTTP 400: invalid address"
    assert rows[5].recipients == "b@example.com"
    assert not OutboxMessage.objects.exists()


def test_an_event_stamped_in_the_second_of_the_send_follows_the_send(admin):
    """SendGrid's timestamps are whole seconds, so such an event reads as earlier than the attempt it reports on."""
    email = sent_email(user=admin, recipients=["a@example.com"])
    created = email.created.replace(microsecond=500_000)
    SentEmail.objects.filter(pk=email.pk).update(created=created)
    delivery_results_apply(
        results=[
            ResultMessage(
                email_id=email.pk,
                deliveries=tuple(email.deliveries.values_list("pk", flat=True)),
                outcome="sent",
                attempt=1,
                reason="",
                status_code=202,
                at=created + datetime.timedelta(microseconds=300_000),
            )
        ]
    )
    DeliveryEvent.objects.create(
        sg_event_id="evt-same-second",
        delivery=email.deliveries.get(),
        event="processed",
        occurred_at=created.replace(microsecond=0),
    )

    assert steps(email_page(logged_in(admin), email.pk)) == [
        ("accepted", "Accepted"),
        ("attempt", "Attempt 1: sent"),
        ("event", "SendGrid: processed"),
    ]
