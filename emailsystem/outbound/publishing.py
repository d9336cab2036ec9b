"""Handing webhook messages to RabbitMQ: right after the commit that wrote them, and by the relay
for any left over (a broker outage, a process that died between its commit and the publish).

A message row is written with `publish_after` RELAY_GRACE ahead; the committing process
publishes it from `transaction.on_commit` and clears `publish_after`. The relay claims rows
whose `publish_after` has passed. A crash between the broker's commit and the row's update
publishes a message twice: the webhooks process then attempts it twice, with one webhook-id,
which receivers use to drop repeats (docs/outbound-webhooks.md).
"""

import datetime
import logging
import threading
import time
from collections.abc import Sequence

import pika
import pika.exceptions
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import brokers, topology
from emailsender.confirms import ConfirmedChannel
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.outbound import topology as webhook_topology
from emailsystem.outbound.models import WebhookMessage

logger = logging.getLogger(__name__)

# Longer than a publish after the commit can take (connect timeout 2 s), so the relay and the
# committing process rarely both publish one row.
RELAY_GRACE = datetime.timedelta(seconds=15)
# A claimed row comes back after this if the relay died before publishing it.
CLAIM_LEASE = datetime.timedelta(seconds=60)
RELAY_BATCH = 500
CONNECT_TIMEOUT_SECONDS = 2.0
HEARTBEAT_SECONDS = 30
# After a failure, publishes are skipped this long (the relay takes their rows), so a broker
# outage costs a request or a results batch nothing instead of a connect timeout each.
BACKOFF_AFTER_FAILURE_SECONDS = 5.0


class PublishError(Exception):
    """The broker did not take the messages; their rows stay for the relay."""


class WebhookPublisher:
    """One connection per process, used under a lock (pika's BlockingConnection is not thread-safe).

    Messages go out with publisher confirms, as the work messages do (emails/delivery/broker.py;
    emailsender/confirms.py says why not transactions): every message written, one wait for the
    broker's answers. Unroutable ones (`mandatory`) are returned before their confirm, and ones the
    broker refused (nack) are not stored: neither is in the returned set, so their rows stay for
    the relay.
    """

    def __init__(self, url: str, prefix: str, schedule: tuple[int, ...]) -> None:
        self._url, self._prefix, self._schedule = url, prefix, schedule
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._confirms: ConfirmedChannel | None = None
        self._returned: set[str] = set()
        self._skip_until = 0.0

    def publish(self, messages: Sequence[tuple[int, int, str]], *, attempt: int = 1) -> set[int]:
        """Publish (message id, endpoint id, webhook id) triples; the ids the broker stored. Raises PublishError."""
        if not messages:
            return set()
        with self._lock:
            if time.monotonic() < self._skip_until:
                raise PublishError("broker unavailable (recent failure); left for the relay")
            try:
                self._channel_or_connect()
                assert self._confirms is not None and self._connection is not None
                self._returned = set()
                tags = {}
                for message_id, endpoint_id, webhook_id in messages:
                    tag = self._confirms.publish(
                        exchange=topology.exchange_name(self._prefix),
                        routing_key=webhook_topology.WEBHOOK_KEY,
                        body=webhook_topology.encode(message_id=message_id, endpoint_id=endpoint_id, attempt=attempt),
                        properties=webhook_topology.properties(webhook_id),
                        mandatory=True,
                    )
                    tags[tag] = message_id
                refused = {tags[tag] for tag in self._confirms.wait()}
                self._connection.process_data_events(time_limit=0)  # delivers the returns to _on_return
            except (pika.exceptions.AMQPError, OSError) as error:
                self._reset()
                self._skip_until = time.monotonic() + BACKOFF_AFTER_FAILURE_SECONDS
                raise PublishError(f"{type(error).__name__}: {error}") from None
        if refused:
            logger.warning("the broker refused %d webhook messages (nack); left for the relay", len(refused))
        return {
            message_id
            for message_id, _endpoint, webhook_id in messages
            if webhook_id not in self._returned and message_id not in refused
        }

    def _on_return(self, _channel: object, _method: object, properties: pika.BasicProperties, _body: bytes) -> None:
        self._returned.add(properties.message_id or "")

    def _channel_or_connect(self) -> BlockingChannel:
        if self._connection is not None and self._connection.is_open and self._channel is not None:
            try:
                self._connection.process_data_events(time_limit=0)
                return self._channel
            except (pika.exceptions.AMQPError, OSError):
                self._reset()
        self._connection = brokers.connect(
            self._url,
            heartbeat=HEARTBEAT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            stack_timeout=CONNECT_TIMEOUT_SECONDS * 2,
            blocked_connection_timeout=CONNECT_TIMEOUT_SECONDS * 2,
            connection_attempts=1,
        )
        channel = self._connection.channel()
        config = sender_settings()
        topology.declare(channel, self._prefix, config.retry_delays_ms, config.queue_type)
        webhook_topology.declare_webhooks(channel, self._prefix, self._schedule, config.queue_type)
        self._confirms = ConfirmedChannel(channel)
        channel.add_on_return_callback(self._on_return)
        self._channel = channel
        return channel

    def _reset(self) -> None:
        connection, self._connection, self._channel, self._confirms = self._connection, None, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                logger.debug("closing a broken broker connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._reset()


_publishers: dict[tuple[str, str, tuple[int, ...]], WebhookPublisher] = {}
_publishers_lock = threading.Lock()


def webhook_publisher() -> WebhookPublisher:
    """This process's publisher for the configured broker, queue prefix and retry schedule."""
    key = (settings.RABBITMQ_URL, settings.QUEUE_PREFIX, tuple(settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE))
    with _publishers_lock:
        if key not in _publishers:
            _publishers[key] = WebhookPublisher(*key)
        return _publishers[key]


def webhook_publishers_close() -> None:
    with _publishers_lock:
        publishers = list(_publishers.values())
        _publishers.clear()
    for publisher in publishers:
        publisher.close()


def webhook_messages_publish(*, messages: Sequence[tuple[int, int, str]]) -> int:
    """Publish these rows' messages now and mark them published; on a broker failure they stay
    for the relay. Returns how many were published. Without a broker (embedded mode) nothing is."""
    if not settings.RABBITMQ_URL or not messages:
        return 0
    try:
        published = webhook_publisher().publish(messages)
    except PublishError as error:
        logger.warning("webhook messages left for the relay: %s", error, extra={"count": len(messages)})
        return 0
    if published:
        WebhookMessage.objects.filter(pk__in=published).update(publish_after=None)
    return len(published)


def webhook_messages_publish_on_commit(messages: list[tuple[int, int, str]]) -> None:
    """Publish the messages once the current transaction commits (never for a rolled-back one)."""
    if messages and settings.RABBITMQ_URL:
        transaction.on_commit(lambda: webhook_messages_publish(messages=messages))


def webhook_messages_relay(*, limit: int = RELAY_BATCH) -> int:
    """Publish up to `limit` messages whose publish did not happen; how many were published.

    Claimed with SELECT ... FOR UPDATE SKIP LOCKED and a lease, so several relays never take one row.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            WebhookMessage.objects.select_for_update(skip_locked=True)
            .filter(publish_after__lte=now)
            .order_by("publish_after", "pk")
            .values_list("pk", "endpoint_id", "webhook_id")[:limit]
        )
        if rows:
            WebhookMessage.objects.filter(pk__in=[row[0] for row in rows]).update(publish_after=now + CLAIM_LEASE)
    if not rows:
        return 0
    published = webhook_messages_publish(messages=rows)
    if published < len(rows):
        WebhookMessage.objects.filter(pk__in=[row[0] for row in rows], publish_after__isnull=False).update(
            publish_after=timezone.now() + RELAY_GRACE
        )
    logger.info("relay: published %d of %d webhook messages", published, len(rows))
    return published
