"""Publisher confirms for a batch (confirms.py) against the real broker: acks, nacks, one wait."""

from __future__ import annotations

import uuid

import pika
import pika.exceptions
import pytest

from emailsender.confirms import ConfirmedChannel
from emailsender.publishing import BatchPublisher
from emailsender.routing import Publish

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def full_after_one(broker):
    """A quorum queue already over its length limit of one, so it refuses (nacks) every publish,
    as RabbitMQ refuses publishes to a quorum queue that has no leader. (A quorum queue checks
    its limit after an enqueue: it takes a second message before it refuses.)"""
    name = f"{broker.prefix}.full-{uuid.uuid4().hex[:6]}"
    broker.channel.queue_declare(
        name,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"},
    )
    for body in (b"first", b"second"):
        broker.channel.basic_publish("", name, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    assert broker.depth(name) == 2
    yield name
    broker.channel.queue_delete(name)


def publish(confirms: ConfirmedChannel, queue: str, body: bytes) -> int:
    return confirms.publish(
        exchange="", routing_key=queue, body=body, properties=pika.BasicProperties(delivery_mode=2), mandatory=True
    )


def test_a_batch_is_confirmed_in_one_wait_and_the_refused_tags_are_named(broker, full_after_one):
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        confirms = ConfirmedChannel(connection.channel())
        stored = f"{broker.prefix}.stored"
        broker.channel.queue_declare(stored, durable=True, arguments={"x-queue-type": "quorum"})

        tags = [
            publish(confirms, stored, b"a"),
            publish(confirms, full_after_one, b"b"),
            publish(confirms, stored, b"c"),
        ]

        assert tags == [1, 2, 3]
        assert confirms.wait() == {2}
        assert [body for _, body in broker.take(stored)] == [b"a", b"c"]
        # The channel goes on numbering after a batch: the next one is tag 4.
        assert publish(confirms, full_after_one, b"d") == 4
        assert confirms.wait() == {4}
        assert broker.depth(full_after_one) == 2
        broker.channel.queue_delete(stored)
    finally:
        connection.close()


def test_the_senders_batch_publisher_raises_when_the_broker_refuses_a_message(broker, full_after_one):
    settings = broker.settings()
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        publisher = BatchPublisher(connection, connection.channel(), settings)
        with pytest.raises(pika.exceptions.NackError):
            publisher.publish([Publish("retry", "", full_after_one, f"{n}".encode()) for n in range(2)])
    finally:
        if connection.is_open:
            connection.close()
    assert [body for _, body in broker.take(full_after_one)] == [b"first", b"second"]
