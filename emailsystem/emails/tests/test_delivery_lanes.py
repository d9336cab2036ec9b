"""The lane each request's work is published to: bulk from BULK_LANE_MIN_RECIPIENTS recipients,
normal below, kept on the outbox row for the relay and scheduled sends (docs/sender/fairness.md)."""

import datetime

import pytest
from django.utils import timezone

from emailsender import topology
from emailsender.messages import parse_work
from emailsender.testing.broker import RABBITMQ_TEST_URL
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.outbox import outbox_relay
from emailsystem.emails.delivery.requeue import deliveries_requeue
from emailsystem.emails.models import Delivery, DeliveryStatus, Lane, OutboxMessage
from emailsystem.emails.tests.factories import sent_email

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture(autouse=True)
def _three_recipients_are_bulk(settings):
    settings.BULK_LANE_MIN_RECIPIENTS = 3


def lanes(broker) -> dict[str, list[tuple[int, int]]]:
    """(email id, deliveries) of every work message published so far, by lane; the queues emptied."""
    assert dispatcher().flush(), "the dispatcher did not finish"
    return {
        lane: [
            (message.email_id, len(message.deliveries))
            for message in (parse_work(body) for _, body in broker.take(topology.lane_queue(broker.prefix, lane)))
        ]
        for lane in topology.LANES
    }


def test_a_send_of_the_threshold_goes_to_the_bulk_lane_and_a_smaller_one_to_the_normal_lane(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        large = sent_email(recipients=["a@example.com", "b@example.com", "c@example.com"])
        small = sent_email(recipients=["a@example.com", "b@example.com"])

    assert lanes(broker) == {"bulk": [(large.pk, 3)], "send": [(small.pk, 2)]}


def test_suppressed_recipients_do_not_count_towards_the_bulk_lane(broker, django_capture_on_commit_callbacks):
    first = sent_email(recipients=["a@example.com"])
    user = first.sender
    user.suppressions.create(recipient=Delivery.objects.get(sent_email=first).recipient, reason="unsubscribed")
    lanes(broker)
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(user=user, recipients=["a@example.com", "b@example.com", "c@example.com"])

    assert lanes(broker) == {"bulk": [], "send": [(email.pk, 2)]}


def test_every_message_of_a_batch_takes_the_lane_of_the_whole_batch(
    broker, user_client, django_capture_on_commit_callbacks
):
    messages = [{"recipients": [f"r{n}@example.com"], "subject": "s", "body": "b"} for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post("/api/v1/emails/batch/", {"messages": messages}, format="json")
        small = user_client.post("/api/v1/emails/batch/", {"messages": messages[:2]}, format="json")

    assert response.status_code == 202 and small.status_code == 202, (response.json(), small.json())
    published = lanes(broker)
    assert sorted(published["bulk"]) == sorted((item["id"], 1) for item in response.json()["results"])
    assert sorted(published["send"]) == sorted((item["id"], 1) for item in small.json()["results"])


def test_the_relay_publishes_a_row_to_the_lane_chosen_with_the_send(
    broker, settings, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    settings.RABBITMQ_URL = UNREACHABLE
    with django_capture_on_commit_callbacks(execute=True):
        large = sent_email(recipients=["a@example.com", "b@example.com", "c@example.com"])
        small = sent_email(recipients=["d@example.com"])
    assert dispatcher().flush()
    assert dict(OutboxMessage.objects.values_list("sent_email_id", "lane")) == {
        large.pk: Lane.BULK,
        small.pk: Lane.NORMAL,
    }

    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    assert outbox_relay() == 2
    assert lanes(broker) == {"bulk": [(large.pk, 3)], "send": [(small.pk, 1)]}


def test_a_scheduled_bulk_send_is_published_to_the_bulk_lane_when_due(broker, django_capture_on_commit_callbacks):
    send_at = timezone.now() + datetime.timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com", "b@example.com", "c@example.com"], send_at=send_at)
    assert lanes(broker) == {"bulk": [], "send": []}
    OutboxMessage.objects.update(available_at=timezone.now())

    assert outbox_relay() == 1
    assert lanes(broker) == {"bulk": [(email.pk, 3)], "send": []}


def test_an_admin_requeue_takes_the_lane_of_the_recipients_it_requeues(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com", "b@example.com", "c@example.com"])
    lanes(broker)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    Delivery.objects.update(status=DeliveryStatus.FAILED, reason="SendGrid 400")

    with django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=ids[:1])
    assert lanes(broker) == {"bulk": [], "send": [(email.pk, 1)]}

    with django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=ids[1:])
    Delivery.objects.update(status=DeliveryStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_requeue(delivery_ids=ids)
    assert lanes(broker) == {"bulk": [(email.pk, 3)], "send": [(email.pk, 2)]}
