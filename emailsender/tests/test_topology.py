"""topology.declare() against the real broker."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from emailsender import topology
from emailsender.reconnect import fatal_cause
from emailsender.testing.polling import wait_for

pytestmark = pytest.mark.rabbitmq


def test_names():
    assert topology.exchange_name("emails") == "emails"
    assert topology.work_queue("emails") == "emails.send"
    assert topology.retry_queue("emails", 2000) == "emails.retry.2000"
    assert topology.dead_queue("emails") == "emails.dead"
    assert topology.results_queue("emails") == "emails.results"
    assert topology.bulk_queue("emails") == "emails.bulk"
    assert topology.retry_queue("emails", 2000, topology.BULK_KEY) == "emails.bulk.retry.2000"
    assert topology.lane_queue("emails", topology.BULK_KEY) == "emails.bulk"
    assert topology.lane_queue("emails", topology.WORK_KEY) == "emails.send"
    assert topology.all_queues("e", (10, 5, 10)) == [
        "e.send",
        "e.bulk",
        "e.dead",
        "e.results",
        "e.retry.5",
        "e.retry.10",
        "e.bulk.retry.5",
        "e.bulk.retry.10",
    ]


def test_an_unknown_lane_is_refused():
    with pytest.raises(ValueError, match="unknown lane 'dead'"):
        topology.retry_queue("emails", 2000, "dead")


def test_declare_is_idempotent_and_routes_by_key(broker):
    channel = broker.channel
    topology.declare(channel, broker.prefix, (100, 1000))
    topology.declare(channel, broker.prefix, (100, 1000))
    broker.declare_tiers((100, 1000))
    for key, queue in (("send", "send"), ("bulk", "bulk"), ("result", "results"), ("dead", "dead")):
        channel.basic_publish(broker.prefix, key, b"x", mandatory=True)
        assert broker.depth(f"{broker.prefix}.{queue}") == 1


def test_retry_queue_dead_letters_back_to_the_work_queue(broker):
    topology.declare(broker.channel, broker.prefix, (100,))
    broker.declare_tiers((100,))
    broker.channel.basic_publish("", topology.retry_queue(broker.prefix, 100), b"later", mandatory=True)
    assert broker.depth(topology.work_queue(broker.prefix)) == 0
    _wait_depth(broker, topology.work_queue(broker.prefix), 1)


def test_a_bulk_retry_dead_letters_back_to_the_bulk_queue(broker):
    topology.declare(broker.channel, broker.prefix, (100,))
    broker.declare_tiers((100,))
    broker.channel.basic_publish("", topology.retry_queue(broker.prefix, 100, topology.BULK_KEY), b"later")
    _wait_depth(broker, topology.bulk_queue(broker.prefix), 1)
    assert broker.depth(topology.work_queue(broker.prefix)) == 0


def test_changed_tiers_create_new_queues_instead_of_conflicting(broker):
    topology.declare(broker.channel, broker.prefix, (100,))
    topology.declare(broker.channel, broker.prefix, (100, 250))
    broker.declare_tiers((100, 250))
    assert broker.depth(topology.retry_queue(broker.prefix, 250)) == 0
    # Same name, different TTL: exactly the failure that the delay-in-the-name scheme avoids.
    other = broker.connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as raised:
        other.queue_declare(topology.retry_queue(broker.prefix, 100), durable=True, arguments={"x-message-ttl": 5})
    assert raised.value.reply_code == 406


def _wait_depth(broker, queue, depth):
    wait_for(lambda: broker.depth(queue) == depth, timeout=5)


def test_queues_are_quorum_queues_by_default(broker):
    topology.declare(broker.channel, broker.prefix, (100,))
    broker.declare_tiers((100,))
    for queue in topology.all_queues(broker.prefix, (100,)):
        # RabbitMQ compares a redeclaration's type with the queue's: only "quorum" matches.
        same = broker.connection.channel()
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": topology.DELIVERY_LIMIT}
        for lane in topology.LANES:
            if queue == topology.retry_queue(broker.prefix, 100, lane):
                arguments = topology.queue_arguments("quorum", dead_letter_to=lane, exchange=broker.prefix)
                arguments["x-message-ttl"] = 100
        same.queue_declare(queue, durable=True, arguments=arguments)
        same.close()
        other = broker.connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as raised:
            other.queue_declare(queue, durable=True, arguments={**arguments, "x-queue-type": "classic"})
        assert raised.value.reply_code == 406
        assert "x-queue-type" in raised.value.reply_text


def test_classic_queues_on_request_and_a_type_mismatch_is_fatal_with_a_hint(broker):
    topology.declare(broker.channel, broker.prefix, (100,), queue_type="classic")
    broker.declare_tiers((100,))
    broker.channel.basic_publish(broker.prefix, "send", b"x", mandatory=True)
    assert broker.depth(topology.work_queue(broker.prefix)) == 1
    other = broker.connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as raised:
        topology.declare(other, broker.prefix, (100,), queue_type="quorum")
    fatal = fatal_cause(raised.value)
    assert fatal is not None
    assert "RABBITMQ_QUEUE_TYPE" in str(fatal)


def test_a_per_message_expiration_on_a_quorum_delay_queue_dead_letters_before_the_tier_ttl(broker):
    # The sender's retries carry their own jittered `expiration`, at most the tier's TTL.
    topology.declare(broker.channel, broker.prefix, (60_000,))
    broker.declare_tiers((60_000,))
    properties = pika.BasicProperties(expiration="100", delivery_mode=2)
    broker.channel.basic_publish(
        "", topology.retry_queue(broker.prefix, 60_000), b"soon", properties=properties, mandatory=True
    )
    _wait_depth(broker, topology.work_queue(broker.prefix), 1)


def test_queue_arguments():
    assert topology.queue_arguments("classic") == {}
    assert topology.queue_arguments("classic", dead_letter_to="send", exchange="e") == {
        "x-dead-letter-exchange": "e",
        "x-dead-letter-routing-key": "send",
    }
    assert topology.queue_arguments("quorum", dead_letter_to="send", exchange="e") == {
        "x-queue-type": "quorum",
        "x-delivery-limit": topology.DELIVERY_LIMIT,
        "x-dead-letter-exchange": "e",
        "x-dead-letter-routing-key": "send",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    with pytest.raises(ValueError, match="queue_type"):
        topology.queue_arguments("lazy")
