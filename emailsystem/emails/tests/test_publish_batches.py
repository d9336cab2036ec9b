"""Work messages published in batches with publisher confirms: the dispatcher's and the relay's
batches, each with one wait for the broker's confirms, and what a broker failure during one
leaves behind."""

import datetime
import json

import pika
import pytest
from django.db import transaction
from django.utils import timezone

from emailsender import topology
from emailsender.confirms import ConfirmedChannel
from emailsender.messages import parse_work
from emailsender.result_messages import build_result, parse_result
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.broker import WorkPublish, publisher
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.outbox import outbox_relay
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import OutboxMessage
from emailsystem.emails.services import sent_email_create
from emailsystem.emails.tests.factories import sent_email
from emailsystem.users.tests.factories import UserFactory

# Transactional: the dispatcher thread publishes and deletes outbox rows on its own connection.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]


ORIGINAL_WAIT = ConfirmedChannel.wait


@pytest.fixture
def commits(monkeypatch) -> list[ConfirmedChannel]:
    """Every wait for a batch's confirms made from now on, by channel."""
    made: list[ConfirmedChannel] = []

    def counted(confirms):
        made.append(confirms)
        return ORIGINAL_WAIT(confirms)

    monkeypatch.setattr(ConfirmedChannel, "wait", counted)
    return made


def commit_lost(confirms):
    raise pika.exceptions.StreamLostError("the connection dropped before the confirms came")


def work_messages(broker):
    assert dispatcher().flush(), "the dispatcher did not finish"
    return [(properties, parse_work(body)) for properties, body in broker.take(topology.work_queue(broker.prefix))]


def test_messages_published_together_share_one_wait_for_confirms(broker, commits):
    messages = [WorkPublish(f"body-{n}".encode(), f"m{n}", "req-9") for n in range(3)]

    assert publisher().publish_many(messages) == []

    assert len(commits) == 1
    taken = broker.take(topology.work_queue(broker.prefix))
    assert [(properties.message_id, body) for properties, body in taken] == [
        ("m0", b"body-0"),
        ("m1", b"body-1"),
        ("m2", b"body-2"),
    ]
    assert {properties.headers[topology.REQUEST_ID_HEADER] for properties, _ in taken} == {"req-9"}


def test_a_broker_failure_during_the_dispatchers_batch_leaves_every_row_for_the_relay(
    broker, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent_email(recipients=["a@example.com"])  # connects the publisher
    work_messages(broker)
    monkeypatch.setattr(ConfirmedChannel, "wait", commit_lost)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        later = [sent_email(recipients=[f"{n}@example.com"]) for n in range(3)]

    # The failure came after the messages were written, so the broker may hold them (here it does:
    # closing the connection flushed them). They are not published again on another connection,
    # and every row stays for the relay, out of its reach for UNCERTAIN_RELAY_GRACE.
    taken = [message.email_id for _, message in work_messages(broker)]
    assert sorted(taken) == sorted(e.pk for e in later)
    rows = OutboxMessage.objects.all()
    assert sorted(row.sent_email_id for row in rows) == sorted(e.pk for e in later)
    assert all(row.available_at >= timezone.now() + outbox_module.RELAY_GRACE for row in rows)


def due_scheduled_sends(count: int) -> list[int]:
    """`count` scheduled sends (one with an attachment) whose send_at has just passed: their ids."""
    user = UserFactory.create()
    far = timezone.now() + datetime.timedelta(days=1)
    ids = [
        sent_email_create(user=user, recipients=[f"s{n}@example.com"], subject="s", body="b", send_at=far).email_id
        for n in range(count - 1)
    ]
    attachment = {"filename": "a.txt", "type": "text/plain", "disposition": "attachment", "content": b"hello"}
    ids.append(
        sent_email_create(
            user=user, recipients=["att@example.com"], subject="s", body="b", send_at=far, attachments=[attachment]
        ).email_id
    )
    OutboxMessage.objects.filter(sent_email_id__in=ids).update(available_at=timezone.now())
    return ids


def test_the_relay_publishes_its_claimed_batch_with_one_wait_for_confirms(broker, commits):
    ids = due_scheduled_sends(5)

    assert outbox_relay() == 5

    assert len(commits) == 1
    messages = {message.email_id: message for _, message in work_messages(broker)}
    assert sorted(messages) == sorted(ids)
    [attached] = [message for message in messages.values() if message.options.attachments]
    assert attached.email_id == ids[-1] and attached.options.attachments[0].content == b"hello"
    assert not OutboxMessage.objects.exists()


def test_a_broker_failure_during_the_relays_batch_keeps_every_row_for_later(broker, monkeypatch):
    ids = due_scheduled_sends(3)
    publisher().publish_many([WorkPublish(b"x", "connect")])  # connected, so the failure is the commit's
    broker.take(topology.work_queue(broker.prefix))
    monkeypatch.setattr(ConfirmedChannel, "wait", commit_lost)
    before = timezone.now()

    assert outbox_relay() == 0

    rows = OutboxMessage.objects.order_by("sent_email_id")
    assert [row.sent_email_id for row in rows] == sorted(ids)
    assert {row.attempts for row in rows} == {1}
    assert all("StreamLostError" in row.last_error for row in rows)
    assert all(row.available_at >= before + outbox_module.UNCERTAIN_RELAY_GRACE for row in rows)
    # At most one copy each reached the broker: nothing was published twice.
    taken = [parse_work(body).email_id for _, body in broker.take(topology.work_queue(broker.prefix))]
    assert len(taken) == len(set(taken)) and set(taken) <= set(ids)


def commit_answer_lost(confirms):
    """The messages reach the broker and are stored; the connection drops before the wait returns
    (the confirms are lost with it, as when the node goes down)."""
    ORIGINAL_WAIT(confirms)
    raise pika.exceptions.StreamLostError("the connection dropped before the confirms came")


def test_a_commit_whose_answer_is_lost_waits_for_its_stored_copy_so_the_relay_sends_nothing_twice(
    broker, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent_email(recipients=["warm@example.com"])  # connects the publisher
    work_messages(broker)
    monkeypatch.setattr(ConfirmedChannel, "wait", commit_answer_lost)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        email = sent_email(recipients=["a@example.com", "b@example.com"])

    # The broker holds the message; the row stays, out of the relay's reach for UNCERTAIN_RELAY_GRACE.
    [(_properties, stored)] = work_messages(broker)
    assert stored.email_id == email.pk
    [row] = OutboxMessage.objects.all()
    assert row.available_at >= before + outbox_module.UNCERTAIN_RELAY_GRACE
    assert "confirms" in row.last_error

    # The stored copy is sent and its result applied before the grace ends ...
    delivery_results_apply(
        results=[
            parse_result(
                json.dumps(
                    build_result(
                        email_id=email.pk,
                        delivery_ids=[d.id for d in stored.deliveries],
                        outcome="sent",
                        attempt=1,
                        status_code=202,
                    )
                ).encode()
            )
        ]
    )
    OutboxMessage.objects.update(available_at=timezone.now())
    monkeypatch.setattr(ConfirmedChannel, "wait", ORIGINAL_WAIT)

    # ... so the relay finds nothing left to send, and publishes nothing.
    assert outbox_relay() == 0
    assert not OutboxMessage.objects.exists()
    assert broker.take(topology.work_queue(broker.prefix)) == []
