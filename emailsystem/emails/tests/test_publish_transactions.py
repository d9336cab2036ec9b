"""Work messages published in broker transactions: the dispatcher's batches, each with one commit,
and what a broker failure during one leaves behind."""

import pika
import pytest
from django.db import transaction
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import topology
from emailsender.messages import parse_work
from emailsystem.emails.delivery.broker import WorkPublish, publisher
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.models import OutboxMessage
from emailsystem.emails.tests.factories import sent_email

# Transactional: the dispatcher thread publishes and deletes outbox rows on its own connection.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]


@pytest.fixture
def commits(monkeypatch) -> list[BlockingChannel]:
    """Every tx_commit made from now on, by channel."""
    made: list[BlockingChannel] = []
    original = BlockingChannel.tx_commit

    def counted(channel):
        made.append(channel)
        return original(channel)

    monkeypatch.setattr(BlockingChannel, "tx_commit", counted)
    return made


def commit_lost(channel):
    raise pika.exceptions.StreamLostError("the connection dropped before commit-ok")


def work_messages(broker):
    assert dispatcher().flush(), "the dispatcher did not finish"
    return [(properties, parse_work(body)) for properties, body in broker.take(topology.work_queue(broker.prefix))]


def test_messages_published_together_share_one_transaction(broker, commits):
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


def test_a_broker_failure_during_the_dispatchers_transaction_leaves_every_row_for_the_relay(
    broker, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent_email(recipients=["a@example.com"])  # connects the publisher
    work_messages(broker)
    monkeypatch.setattr(BlockingChannel, "tx_commit", commit_lost)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        later = [sent_email(recipients=[f"{n}@example.com"]) for n in range(3)]

    # Not published again on another connection (it may be stored): the relay takes them after RELAY_GRACE.
    assert work_messages(broker) == []
    assert sorted(OutboxMessage.objects.values_list("sent_email_id", flat=True)) == sorted(e.pk for e in later)
