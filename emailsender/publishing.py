"""Publish the outcomes of many work messages with one broker round trip.

The sender's publishes go on a dedicated channel in publisher-confirm mode (confirms.py):
every publish of a batch is written without waiting, then one wait covers the broker's
confirms of all of them. A confirm means the message is stored (in a quorum queue: on a
majority of its members), so work messages may be acked after `publish()` returns. A
`basic.nack` (a quorum queue without a leader refuses publishes until one is elected) raises
NackError: the connection is dropped, the work messages are redelivered, and the outcomes the
sender remembers (recently_sent.py) are published again rather than sent again.

If the connection drops during the wait, some of the batch may be stored and some not; the
unacked work is redelivered and its outcomes published again, so a result or a retry copy may
exist twice. Results are idempotent; a duplicated retry copy is a second send of that message
(docs/delivery/crash-windows.md).

`mandatory=True` keeps a missing queue an error rather than a silent drop. RabbitMQ sends the
`basic.return` of an unroutable message before its confirm; pika queues it as a channel event,
which `process_data_events` dispatches right after the wait.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, ReturnedMessage

from emailsender import topology
from emailsender.confirms import ConfirmedChannel
from emailsender.routing import Publish
from emailsender.settings import Settings

log = logging.getLogger("emailsender")


class BatchPublisher:
    """Publishes lists of `routing.Publish` on a confirm-mode channel, one wait per list."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel, settings: Settings) -> None:
        self._connection = connection
        self._channel = channel
        self._settings = settings
        self._returned: list[ReturnedMessage] = []
        self._confirms = ConfirmedChannel(channel)
        channel.add_on_return_callback(self._on_return)

    def publish(self, publishes: Sequence[Publish]) -> None:
        """Publish everything, then wait once for the broker to confirm it.

        Returns only when every message is routed to a queue and stored. A message the broker
        could not route (someone deleted a queue) is published again, once, after declaring the
        topology again; if it still cannot be routed this raises `UnroutableError` (the rest of
        the batch is stored by then, and will be published again with the redelivery). A
        message the broker refused raises `NackError`; any other failure raises pika's exception.
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
        """Publish all, wait once for their confirms; returns the publishes the broker sent back as unroutable."""
        self._returned = []
        for publish in publishes:
            self._confirms.publish(
                exchange=publish.exchange,
                routing_key=publish.routing_key,
                body=publish.body,
                properties=_properties(publish),
                mandatory=True,
            )
        nacked = self._confirms.wait()
        if nacked:
            raise pika.exceptions.NackError([])
        # Returns arrive before their confirms and wait in pika as channel events: dispatch them now.
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
