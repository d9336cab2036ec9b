"""The web side's RabbitMQ publisher: one long-lived connection per process.

pika's BlockingConnection is not thread-safe, so every use goes through one lock. A small
daemon thread services heartbeats while the process is idle, so the broker does not drop
a quiet connection; a failed publish resets the connection and the next use reconnects.

Work messages go out on a channel in publisher-confirm mode (emailsender/confirms.py): every
message of a batch is written without waiting, then one wait covers the broker's confirms of
all of them. A confirm says the message is stored (in a quorum queue, on a majority of its
members); a nack says it is not, and its row stays for the relay. emailsender/confirms.py says
why not AMQP transactions: a quorum queue that has just lost its leader refuses publishes, and
a transaction's commit reports them stored. pika's own confirm mode waits for each confirm in
turn: the dispatcher thread spent about a third of a 100-message batch request's CPU
publishing its messages one confirm at a time, and the relay 7 ms per row.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import brokers, topology
from emailsender.confirms import ConfirmedChannel
from emailsystem.emails.delivery.config import sender_settings

logger = logging.getLogger(__name__)

# The broker drops a connection after two missed heartbeats; 30 s keeps idle web processes
# connected while noticing a dead peer within a minute.
HEARTBEAT_SECONDS = 30
# A request waits at most this long for the broker before the outbox relay takes over.
CONNECT_TIMEOUT_SECONDS = 2.0
# After a failure, requests skip the broker this long (the relay publishes their rows),
# so an outage costs each request nothing instead of a connect timeout.
BACKOFF_AFTER_FAILURE_SECONDS = 5.0


class PublishError(Exception):
    """The broker did not confirm the message; it stays in the outbox for the relay.

    `uncertain` is True when the connection failed after the messages were sent and before
    the broker's confirms came back: it may have stored some of them without its answer
    reaching us, so publishing them again soon could send them twice
    (docs/delivery/crash-windows.md).
    """

    def __init__(self, message: str, *, uncertain: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain


@dataclass(frozen=True)
class WorkPublish:
    """One encoded work message to publish, its message id, and the API request it came from."""

    body: bytes
    message_id: str
    request_id: str | None = None
    lane: str = topology.WORK_KEY  # the routing key: which lane's work queue (delivery/lanes.py)


class Publisher:
    def __init__(self, url: str, prefix: str, retry_delays_ms: tuple[int, ...], queue_type: str) -> None:
        self._url = url
        self._prefix = prefix
        self._retry_delays_ms = retry_delays_ms
        self._queue_type = queue_type
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._returned: list[str] = []  # message ids the broker sent back as unroutable
        self._committing = False  # publishes were sent and their confirms have not all come yet
        self._confirms: ConfirmedChannel | None = None
        self._skip_until = 0.0
        self._heartbeat_thread: threading.Thread | None = None

    def publish(
        self, body: bytes, *, message_id: str, request_id: str | None = None, lane: str = topology.WORK_KEY
    ) -> None:
        """Publish one work message to `lane` and wait until the broker has stored it. Raises PublishError."""
        if self.publish_many([WorkPublish(body, message_id, request_id, lane)]):
            raise PublishError("the broker could not route the message to the work queue")

    def publish_many(self, messages: Sequence[WorkPublish]) -> list[str]:
        """Publish the messages and wait once for the broker's confirms of all of them.

        Returns the message ids the broker refused (nack) or could not route even after the
        topology was declared again (their rows stay for the relay); every other message is
        stored when this returns. Raises PublishError when the broker cannot be reached or
        fails before confirming: then none of them is known to be stored, and all stay for the
        relay (`uncertain` when some may be stored all the same).
        """
        if not messages:
            return []
        with self._lock:
            if time.monotonic() < self._skip_until:
                raise PublishError("broker unavailable (recent failure); left for the relay")
            self._committing = False
            try:
                channel = self._live_channel()
                unroutable, refused = self._publish_and_confirm(channel, messages)
                if unroutable:
                    logger.error("%d work messages not routed; declaring the topology again", len(unroutable))
                    topology.declare(channel, self._prefix, self._retry_delays_ms, self._queue_type)
                    unroutable, refused_again = self._publish_and_confirm(
                        channel, [message for message in messages if message.message_id in unroutable]
                    )
                    refused |= refused_again
                return sorted(unroutable | refused)
            except (pika.exceptions.AMQPError, OSError) as error:
                self._reset()
                self._skip_until = time.monotonic() + BACKOFF_AFTER_FAILURE_SECONDS
                raise PublishError(f"{type(error).__name__}: {error}", uncertain=self._committing) from None

    def _live_channel(self) -> BlockingChannel:
        """The channel, on a connection that has just answered I/O. One the broker closed while
        we were idle is noticed here and replaced before anything of a batch is written, so no
        publish is ever repeated on a new connection (a repeat could store it twice)."""
        channel = self._channel_or_connect()
        try:
            assert self._connection is not None
            self._connection.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError):
            self._reset()
            channel = self._channel_or_connect()
        return channel

    def _publish_and_confirm(
        self, channel: BlockingChannel, messages: Sequence[WorkPublish]
    ) -> tuple[set[str], set[str]]:
        """Every message written, one wait for their confirms; the message ids the broker returned
        as unroutable, and those it refused (nack: a quorum queue without a leader, for one)."""
        assert self._confirms is not None
        self._returned = []
        tags = {}
        for message in messages:
            tag = self._confirms.publish(
                exchange=topology.exchange_name(self._prefix),
                routing_key=message.lane,
                body=message.body,
                properties=topology.work_properties(message.message_id, request_id=message.request_id),
                mandatory=True,
            )
            tags[tag] = message.message_id
        # Until here nothing has left this process: the frames wait in pika's buffer.
        self._committing = True
        nacked = self._confirms.wait()
        self._committing = False
        if nacked:
            logger.warning("the broker refused %d work messages (nack); left for the relay", len(nacked))
        # RabbitMQ sends a message's basic.return before its confirm; pika holds them as
        # channel events until this dispatches them to _on_return.
        assert self._connection is not None
        self._connection.process_data_events(time_limit=0)
        return set(self._returned), {tags[tag] for tag in nacked}

    def _on_return(self, _channel: Any, _method: Any, properties: pika.BasicProperties, _body: bytes) -> None:
        self._returned.append(properties.message_id or "")

    def check(self) -> str | None:
        """None when the broker accepts a connection (reusing ours), else the reason."""
        with self._lock:
            try:
                self._channel_or_connect()
            except (pika.exceptions.AMQPError, OSError) as error:
                self._reset()
                return f"broker unreachable: {type(error).__name__}"
        return None

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _channel_or_connect(self) -> BlockingChannel:
        if self._connection is not None and self._connection.is_open and self._channel is not None:
            return self._channel
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
        self._confirms = ConfirmedChannel(channel)
        channel.add_on_return_callback(self._on_return)
        topology.declare(channel, self._prefix, self._retry_delays_ms, self._queue_type)
        self._channel = channel
        self._start_heartbeats()
        return channel

    def _reset(self) -> None:
        connection, self._connection, self._channel, self._confirms = self._connection, None, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                logger.debug("closing a broken broker connection failed", exc_info=True)

    def _start_heartbeats(self) -> None:
        if self._heartbeat_thread is not None and self._heartbeat_thread.is_alive():
            return
        self._heartbeat_thread = threading.Thread(target=self._service_heartbeats, name="amqp-heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def _service_heartbeats(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS / 3)
            with self._lock:
                if self._connection is None:
                    continue
                try:
                    self._connection.process_data_events(time_limit=0)
                except (pika.exceptions.AMQPError, OSError):
                    logger.info("broker connection lost while idle; reconnecting on next publish")
                    self._reset()


_publishers: dict[tuple[str, str], Publisher] = {}
_publishers_lock = threading.Lock()


def publisher() -> Publisher:
    """This process's publisher for the configured broker and queue prefix."""
    config = sender_settings()
    assert config.rabbitmq_url, "publisher() is only for broker mode (RABBITMQ_URL set)"
    key = (config.rabbitmq_url, config.queue_prefix)
    with _publishers_lock:
        if key not in _publishers:
            _publishers[key] = Publisher(
                config.rabbitmq_url, config.queue_prefix, config.retry_delays_ms, config.queue_type
            )
        return _publishers[key]


def broker_readiness() -> str | None:
    """Readiness detail for /readyz: None when there is no broker or it answers."""
    if not sender_settings().rabbitmq_url:
        return None
    return publisher().check()


def publishers_close() -> None:
    """Close every publisher of this process (tests; a process exiting needs nothing)."""
    with _publishers_lock:
        publishers = list(_publishers.values())
        _publishers.clear()
    for item in publishers:
        item.close()


def queue_depths_read(url: str, queues: list[str]) -> list[tuple[str, int | None, int | None, str]]:
    """(queue, messages, consumers, error) for each queue, from passive declares on a short-lived connection.

    For the admin dashboard. A broker that does not answer within the connect timeout gives
    every queue the error instead of holding up the page.
    """
    try:
        connection = brokers.connect(
            url,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            stack_timeout=CONNECT_TIMEOUT_SECONDS * 2,
            blocked_connection_timeout=CONNECT_TIMEOUT_SECONDS,
            connection_attempts=1,
        )
    except (pika.exceptions.AMQPError, OSError) as error:
        return [(queue, None, None, f"broker unreachable: {type(error).__name__}") for queue in queues]
    depths: list[tuple[str, int | None, int | None, str]] = []
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                declared = channel.queue_declare(queue=queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as error:
                depths.append((queue, None, None, f"not declared ({error.reply_code})"))
                channel = connection.channel()  # a failed passive declare closes the channel
                continue
            depths.append((queue, declared.method.message_count, declared.method.consumer_count, ""))
    finally:
        if connection.is_open:
            connection.close()
    return depths
