"""Publish the outcomes of many work messages with one broker round trip.

The sender's publishes go on a dedicated channel in AMQP transaction mode (`tx_select`):
every publish of a batch is sent without waiting, then one `tx_commit` waits for the broker.
In RabbitMQ, visibility, durability and the transfer of responsibility all happen on commit
(https://www.rabbitmq.com/docs/semantics), so `commit-ok` says about every message of the
batch what a publisher confirm says about one. Work messages may be acked after `publish()`
returns.

Why not publisher confirms: pika's `BlockingChannel.basic_publish` waits for the confirm of
each message before returning, one round trip per publish. The publishes of a batch are
written without a flush each (unflushed.py); `tx_commit` flushes them with the commit. With a transaction, nothing of a
batch reaches a queue before its commit: if the connection drops first, the broker drops the
batch's publishes and redelivers the unacked work, so no stray retry copy is left behind.

`mandatory=True` keeps a missing queue an error rather than a silent drop. RabbitMQ sends the
`basic.return` of an unroutable message before the `commit-ok` of its transaction; pika
queues it as a channel event, which `process_data_events` dispatches right after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, ReturnedMessage

from emailsender import topology, unflushed
from emailsender.routing import Publish
from emailsender.settings import Settings

log = logging.getLogger("emailsender")


class BatchPublisher:
    """Publishes lists of `routing.Publish` on a transactional channel, one commit per list."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel, settings: Settings) -> None:
        self._connection = connection
        self._channel = channel
        self._settings = settings
        self._returned: list[ReturnedMessage] = []
        channel.tx_select()
        channel.add_on_return_callback(self._on_return)

    def publish(self, publishes: Sequence[Publish]) -> None:
        """Publish everything, then wait once for the broker to commit it.

        Returns only when every message is routed to a queue and stored. A message the broker
        could not route (someone deleted a queue) is published again, once, after declaring the
        topology again; if it still cannot be routed this raises `UnroutableError` (the rest of
        the batch is committed by then, and will be published again with the redelivery, as
        before batching). Any other failure raises pika's exception; nothing of an uncommitted
        batch reaches a queue.
        """
        if not publishes:
            return
        returned = self._publish_and_commit(publishes)
        if not returned:
            return
        for publish in returned:
            log.error(
                "publish not accepted by the broker; declaring the topology again",
                extra={
                    "message_id": publish.message_id or publish.correlation_id,
                    "purpose": publish.purpose,
                    "routing_key": publish.routing_key,
                },
            )
        topology.declare(
            self._channel, self._settings.queue_prefix, self._settings.retry_delays_ms, self._settings.queue_type
        )
        if self._publish_and_commit(returned):
            raise pika.exceptions.UnroutableError(self._returned)

    def _publish_and_commit(self, publishes: Sequence[Publish]) -> list[Publish]:
        """One transaction; returns the publishes the broker sent back as unroutable."""
        self._returned = []
        for publish in publishes:
            unflushed.publish(
                self._channel,
                exchange=publish.exchange,
                routing_key=publish.routing_key,
                body=publish.body,
                properties=_properties(publish),
                mandatory=True,
            )
        self._channel.tx_commit()
        # Returns arrive before commit-ok and wait in pika as channel events: dispatch them now.
        # This also dispatches deliveries to the consumer, as the sender's loop does every tick.
        self._connection.process_data_events(time_limit=0)
        matched = _match_returned(publishes, self._returned)
        if len(matched) != len(self._returned):  # cannot happen; never ack what might be lost
            raise pika.exceptions.UnroutableError(self._returned)
        return matched

    def _on_return(self, _channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        self._returned.append(ReturnedMessage(method, properties, body))


def _properties(publish: Publish) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=topology.CONTENT_TYPE,
        delivery_mode=topology.PERSISTENT,
        message_id=publish.message_id,
        correlation_id=publish.correlation_id,
        headers=publish.headers or None,
        expiration=str(publish.expiration_ms) if publish.expiration_ms is not None else None,
    )


def _match_returned(publishes: Sequence[Publish], returned: list[ReturnedMessage]) -> list[Publish]:
    """The publishes the broker returned. Two identical publishes are interchangeable."""
    unmatched = list(publishes)
    matched = []
    for message in returned:
        for publish in unmatched:
            if (
                publish.routing_key == message.method.routing_key
                and publish.exchange == message.method.exchange
                and publish.body == message.body
                and publish.correlation_id == message.properties.correlation_id
                and publish.message_id == message.properties.message_id
            ):
                unmatched.remove(publish)
                matched.append(publish)
                break
    return matched
