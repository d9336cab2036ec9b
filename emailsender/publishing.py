"""Publish the outcomes of many work messages with one broker round trip, without waiting for it.

The sender's publishes go on a dedicated channel in publisher-confirm mode (confirms.py).
Every publish of a batch is written at once (`BatchPublisher.start`), and the sender's loop
goes on receiving and starting work while the broker stores them; `confirmed()` tells when
the broker has confirmed all of a batch. A confirm means the message is stored (in a quorum
queue: on a majority of its members), so the batch's work messages may be acked then. Waiting
for each batch before the next (one confirm round trip per loop pass, 10 to 20 ms on the
bench machine while the broker is busy) held a one-sender drain of one-recipient messages to
990-1,460 a second; with several batches awaiting their confirms the round trips overlap
(with SENDER_PREFETCH's default of 256: 1,120-1,680, docs/sender/reliability.md).

A `basic.nack` (a quorum queue without a leader refuses publishes until one is elected)
raises NackError: the connection is dropped, the work messages are redelivered, and the
outcomes the sender remembers (recently_sent.py) are published again rather than sent again.

If the connection drops before a batch is confirmed, some of it may be stored and some not; the
unacked work is redelivered and its outcomes published again, so a result or a retry copy may
exist twice. Results are idempotent; a duplicated retry copy is a second send of that message
(docs/delivery/crash-windows.md).

`mandatory=True` keeps a missing queue an error rather than a silent drop. RabbitMQ sends the
`basic.return` of an unroutable message before its confirm; pika queues it as a channel event,
which `process_data_events` dispatches; `confirmed()` dispatches them once a batch is settled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, ReturnedMessage

from emailsender import topology
from emailsender.confirms import ConfirmedChannel
from emailsender.routing import Publish
from emailsender.settings import Settings

log = logging.getLogger("emailsender")

# How long `publish` lets the connection wait for input between checks of its confirms.
LOOP_SECONDS = 0.05


@dataclass
class InFlight:
    """Publishes written to the broker, tagged `first_tag` to `last_tag` on the confirm channel,
    whose confirms have not all been seen yet."""

    publishes: list[Publish]
    first_tag: int
    last_tag: int
    since: float  # time.monotonic() when they were written
    republished: bool = False  # those the broker could not route were published again once


class BatchPublisher:
    """Publishes lists of `routing.Publish` on a confirm-mode channel and tells when each list is
    stored. Several lists may await their confirms at once."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel, settings: Settings) -> None:
        self._connection = connection
        self._channel = channel
        self._settings = settings
        self._returned: list[ReturnedMessage] = []
        # A confirm is handled inside pika's I/O loop, which `process_data_events` does not leave
        # for it: a no-op callback ends the caller's wait, so a confirmed batch is acked at once.
        self._confirms = ConfirmedChannel(channel, on_answer=lambda: connection.add_callback_threadsafe(_nothing))
        channel.add_on_return_callback(self._on_return)

    def start(self, publishes: Sequence[Publish]) -> InFlight:
        """Write every publish to the broker without waiting for its confirm."""
        first = self._confirms.next_tag
        for publish in publishes:
            self._confirms.publish(
                exchange=publish.exchange,
                routing_key=publish.routing_key,
                body=publish.body,
                properties=_properties(publish),
                mandatory=True,
            )
        self._confirms.flush()
        return InFlight(list(publishes), first, self._confirms.next_tag - 1, time.monotonic())

    def confirmed(self, batch: InFlight) -> bool:
        """Whether every publish of `batch` is routed to a queue and stored (confirms arrive as the
        connection reads them: call this after `process_data_events`).

        A message the broker refused raises `NackError`. A message it could not route (someone
        deleted a queue) is published again, once, after declaring the topology again, and the
        batch waits for that confirm; if it still cannot be routed this raises `UnroutableError`.
        Any other failure raises pika's exception. After an exception, any publish of the batch
        may or may not be stored.
        """
        if not self._confirms.settled(batch.first_tag, batch.last_tag):
            return False
        if self._confirms.refused(batch.first_tag, batch.last_tag):
            raise pika.exceptions.NackError([])
        # Returns arrive before their confirms and wait in pika as channel events: dispatch them now.
        # This also dispatches deliveries to the consumer, as the sender's loop does every tick.
        self._connection.process_data_events(time_limit=0)
        returned = self._take_returned(batch.publishes)
        if not returned:
            return True
        if batch.republished:
            raise pika.exceptions.UnroutableError([])
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
        again = self.start(returned)
        batch.publishes, batch.first_tag, batch.last_tag = again.publishes, again.first_tag, again.last_tag
        batch.republished = True
        return False

    def publish(self, publishes: Sequence[Publish]) -> None:
        """`start` then wait until `confirmed`: returns once every publish is stored, or raises as
        `confirmed` does."""
        if not publishes:
            return
        batch = self.start(publishes)
        while not self.confirmed(batch):
            self._connection.process_data_events(time_limit=LOOP_SECONDS)

    def _take_returned(self, publishes: list[Publish]) -> list[Publish]:
        """The publishes of a batch the broker sent back as unroutable; those returns are forgotten.
        A return waiting here for a batch still unconfirmed stays."""
        matched, left = _match_returned(publishes, self._returned)
        self._returned = left
        return matched

    def _on_return(self, _channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        self._returned.append(ReturnedMessage(method, properties, body))


def _nothing() -> None:
    """Scheduled on the connection's thread just to end `process_data_events` early."""


def _properties(publish: Publish) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=topology.CONTENT_TYPE,
        delivery_mode=topology.PERSISTENT,
        message_id=publish.message_id,
        correlation_id=publish.correlation_id,
        headers=publish.headers or None,
        expiration=str(publish.expiration_ms) if publish.expiration_ms is not None else None,
    )


def _match_returned(
    publishes: Sequence[Publish], returned: list[ReturnedMessage]
) -> tuple[list[Publish], list[ReturnedMessage]]:
    """(The publishes among `publishes` that the broker returned, the returns none of them
    matches). Two identical publishes are interchangeable."""
    unmatched = list(publishes)
    matched = []
    left = []
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
        else:
            left.append(message)
    return matched, left
