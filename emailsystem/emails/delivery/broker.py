"""The web side's RabbitMQ publisher: one long-lived connection per process.

pika's BlockingConnection is not thread-safe, so every use goes through one lock. A small
daemon thread services heartbeats while the process is idle, so the broker does not drop
a quiet connection; a failed publish resets the connection and the next use reconnects.
"""

import logging
import threading
import time

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import brokers, topology
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
    """The broker did not confirm the message; it stays in the outbox for the relay."""


class Publisher:
    def __init__(self, url: str, prefix: str, retry_delays_ms: tuple[int, ...]) -> None:
        self._url = url
        self._prefix = prefix
        self._retry_delays_ms = retry_delays_ms
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._skip_until = 0.0
        self._heartbeat_thread: threading.Thread | None = None

    def publish(self, body: bytes, *, message_id: str, request_id: str | None = None) -> None:
        """Publish one work message and wait for the broker's confirm. Raises PublishError."""
        with self._lock:
            if time.monotonic() < self._skip_until:
                raise PublishError("broker unavailable (recent failure); left for the relay")
            # Twice: a connection the broker closed while we were idle fails once, then reconnects.
            for attempt in (1, 2):
                try:
                    topology.publish_work(
                        self._channel_or_connect(),
                        body,
                        message_id=message_id,
                        prefix=self._prefix,
                        request_id=request_id,
                    )
                    return
                except (pika.exceptions.AMQPError, OSError) as error:
                    self._reset()
                    if attempt == 2:
                        self._skip_until = time.monotonic() + BACKOFF_AFTER_FAILURE_SECONDS
                        raise PublishError(f"{type(error).__name__}: {error}") from None

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
        channel.confirm_delivery()
        topology.declare(channel, self._prefix, self._retry_delays_ms)
        self._channel = channel
        self._start_heartbeats()
        return channel

    def _reset(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
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
            _publishers[key] = Publisher(config.rabbitmq_url, config.queue_prefix, config.retry_delays_ms)
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
