"""Reconnecting: a broker-side cancel, several broker addresses, and delays with jitter."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from emailsender import brokers, topology
from emailsender.reconnect import Backoff
from emailsender.settings import Settings, SettingsError, mask_url_password
from emailsender.testing.broker import RABBITMQ_TEST_URL
from emailsender.testing.polling import wait_for
from emailsender.testing.tcp_proxy import TcpProxy
from emailsender.tests.support import work_message


def sent_email_ids(results):
    return {r["email_id"] for r in results if r["outcome"] == "sent"}


@pytest.mark.rabbitmq
def test_a_consumer_cancelled_by_the_broker_reconnects_and_goes_on_consuming(broker, fake, start_sender, caplog):
    settings = broker.settings(fake)
    running = start_sender(settings)
    before = work_message()
    broker.publish(before)
    broker.collect_results(lambda r: sent_email_ids(r) == {before.email_id})

    # Deleting the queue makes RabbitMQ cancel the consumer (as a node failover does).
    with caplog.at_level("WARNING", logger="emailsender"):
        broker.channel.queue_delete(topology.work_queue(broker.prefix))
        wait_for(lambda: running.sender.stats["connections"] == 2, timeout=15)
    assert any(r.getMessage() == "consumer cancelled by the broker; reconnecting" for r in caplog.records)

    # The new connection declared the queue again and consumes from it.
    wait_for(running.sender.consuming.is_set)
    after = work_message()
    broker.publish(after)
    broker.collect_results(lambda r: sent_email_ids(r) == {after.email_id})
    assert running.stop() == 0


@pytest.mark.rabbitmq
def test_with_several_broker_addresses_a_dead_node_is_skipped(broker, fake, start_sender):
    target = urlsplit(RABBITMQ_TEST_URL)
    dead = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    dead_url = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{dead.port}"))
    dead.close()  # nothing listens there any more
    settings = broker.settings(fake, rabbitmq_url=f"{dead_url},{RABBITMQ_TEST_URL}")

    for _ in range(3):  # whichever node a connection starts from, it ends on the live one
        assert len(brokers.connection_parameters(settings.rabbitmq_url)) == 2
    running = start_sender(settings)
    message = work_message()
    broker.publish(message)

    broker.collect_results(lambda r: sent_email_ids(r) == {message.email_id})
    assert running.stop() == 0


def test_broker_urls_are_split_on_commas_validated_and_masked_one_by_one():
    value = "amqp://u:secret1@rabbit-0:5672/, amqp://u:secret2@rabbit-1:5672/"

    assert brokers.broker_urls(value) == ["amqp://u:secret1@rabbit-0:5672/", "amqp://u:secret2@rabbit-1:5672/"]
    assert "secret" not in mask_url_password(value)
    assert Settings.from_env({"RABBITMQ_URL": value}).rabbitmq_url == value
    with pytest.raises(SettingsError, match="amqp:// or amqps:// URLs"):
        Settings.from_env({"RABBITMQ_URL": "amqp://rabbit-0/,http://rabbit-1/"})


def test_each_process_starts_at_a_random_node():
    value = ",".join(f"amqp://rabbit-{n}:5672/" for n in range(3))

    firsts = {brokers.connection_parameters(value)[0].host for _ in range(200)}

    assert firsts == {"rabbit-0", "rabbit-1", "rabbit-2"}
    assert [p.host for p in brokers.connection_parameters("amqp://only:5672/")] == ["only"]


def test_backoff_doubles_to_its_cap_with_jitter_and_resets():
    backoff = Backoff(1.0, 8.0)

    delays = [backoff.next_delay() for _ in range(6)]

    for delay, step in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert step / 2 <= delay <= step
    assert len({round(d, 6) for d in delays[3:]}) > 1, "delays at the cap still vary"
    backoff.reset()
    assert backoff.next_delay() <= 1.0
