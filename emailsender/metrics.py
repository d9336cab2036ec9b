"""The sender's Prometheus metrics, served over HTTP on SENDER_METRICS_PORT.

One sender process is one scrape target (the pod template carries the prometheus.io
annotations), so the default registry of prometheus_client is enough: no multiprocess mode.
Labels carry only outcomes, status classes and queue names, never addresses or ids.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pika
import pika.exceptions
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from emailsender.clients import Client, Response, TransportError

log = logging.getLogger("emailsender")

MESSAGES = Counter(
    "emailsender_messages_total",
    "Work messages whose outcome was recorded (published and acked), by outcome.",
    ["outcome"],
)
RETRIES = Counter(
    "emailsender_retries_total",
    "Work messages sent back to a delay queue: 'retry' (5xx, timeout, connection) or 'rate_limited' (429).",
    ["reason"],
)
DEAD_LETTERS = Counter(
    "emailsender_dead_letters_total",
    "Work messages moved to the dead-letter queue: 'failed' (4xx or out of attempts) or 'poison' (unreadable).",
    ["reason"],
)
SENDGRID_SECONDS = Histogram(
    "emailsender_sendgrid_request_seconds",
    "Duration of one SendGrid mail/send call, by answer: 2xx, 4xx, 429, 5xx, timeout or connection.",
    ["result"],
    # SendGrid answers in 50-500 ms; the top buckets show calls approaching the 10 s timeout.
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge("emailsender_in_flight", "SendGrid calls running right now in this process.")
HELD = Gauge("emailsender_held_messages", "Unacked work messages this process holds (at most SENDER_PREFETCH).")
HELD_BYTES = Gauge(
    "emailsender_held_bytes",
    "Bytes of work messages this process holds, both lanes (delivered, not yet acked or given back); at most "
    "SENDER_MAX_INFLIGHT_BYTES, or the bulk lane's share of it plus one normal message larger than the rest.",
)
PREFETCH = Gauge(
    "emailsender_prefetch",
    "The prefetch of this process's consumer of each lane: SENDER_PREFETCH (normal) or SENDER_BULK_PREFETCH "
    "(bulk), less while large messages are in hand, 0 while paused.",
    ["lane"],
)
QUEUE_MESSAGES = Gauge(
    "emailsender_queue_messages",
    "Messages ready in each queue, from a passive declare every QUEUE_DEPTH_INTERVAL_SECONDS. Every sender "
    "reports the same queues: aggregate with max(), not sum().",
    ["queue"],
)
QUEUE_CONSUMERS = Gauge(
    "emailsender_queue_consumers", "Consumers on each queue, from the same passive declare.", ["queue"]
)

# Often enough for an alert on a growing backlog, rare enough to cost the broker nothing.
QUEUE_DEPTH_INTERVAL_SECONDS = 15.0


def _result_label(response: Response | None, error: TransportError | None) -> str:
    if error is not None:
        return error.kind
    assert response is not None
    if response.status_code == 429:
        return "429"
    return f"{response.status_code // 100}xx"


class TimedClient:
    """Wraps a client: counts calls in flight and times each call by its answer."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return repr(self._client)

    def send(self, payload: dict[str, Any]) -> Response:
        started = time.perf_counter()
        response: Response | None = None
        error: TransportError | None = None
        IN_FLIGHT.inc()
        try:
            response = self._client.send(payload)
            return response
        except TransportError as exc:
            error = exc
            raise
        finally:
            IN_FLIGHT.dec()
            if response is not None or error is not None:
                SENDGRID_SECONDS.labels(_result_label(response, error)).observe(time.perf_counter() - started)


def record_outcome(kind: str) -> None:
    """Count one recorded outcome (outcomes.OutcomeKind value) in the matching series."""
    MESSAGES.labels(kind).inc()
    if kind in ("retry", "rate_limited"):
        RETRIES.labels(kind).inc()
    elif kind in ("failed", "poison"):
        DEAD_LETTERS.labels(kind).inc()


def record_queue_depth(queue: str, messages: int, consumers: int) -> None:
    QUEUE_MESSAGES.labels(queue).set(messages)
    QUEUE_CONSUMERS.labels(queue).set(consumers)


class QueueDepthReader:
    """Reads every queue's depth and consumers with passive declares, at most every QUEUE_DEPTH_INTERVAL_SECONDS.

    One per connection, on a channel of its own: a passive declare of a missing queue closes
    the channel it runs on, and a metrics read must not take down the sender's publish
    channel, and with it the connection and every message held. A missing queue is logged
    and skipped; the publisher declares the topology again when a publish finds no route.
    """

    def __init__(self, queues: list[str]) -> None:
        self._queues = queues
        self._channel: Any = None
        self._next_read = 0.0

    def read_when_due(self, connection: pika.BlockingConnection) -> None:
        now = time.monotonic()
        if now < self._next_read:
            return
        self._next_read = now + QUEUE_DEPTH_INTERVAL_SECONDS
        for queue in self._queues:
            if self._channel is None or not self._channel.is_open:
                self._channel = connection.channel()
            try:
                declared = self._channel.queue_declare(queue=queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                log.warning("queue depth not read", extra={"queue": queue, "error": exc.reply_text})
                continue
            record_queue_depth(queue, declared.method.message_count, declared.method.consumer_count)


def serve(port: int, host: str) -> None:
    """Serve /metrics (any path, in fact) on a daemon thread; stops with the process."""
    start_http_server(port, addr=host)
    log.info("metrics served", extra={"port": port, "host": host})


PROVIDER_SENDS = Counter(
    "emailsender_provider_sends_total",
    "Calls to each provider, by how the provider answered (sent, refused, failed, timeout, deferred).",
    ["provider", "result"],
)
BREAKER_STATE = Gauge(
    "emailsender_breaker_state", "1 for each provider's current breaker state, 0 for the others.", ["provider", "state"]
)
BREAKER_TRANSITIONS = Counter(
    "emailsender_breaker_transitions_total", "Breaker state changes per provider.", ["provider", "to"]
)
_BREAKER_STATES = ("closed", "open", "half_open")


def record_breaker_state(provider: str, state: str, *, was: str | None = None) -> None:
    """Set the provider's breaker state gauge; count the transition when there is one (`was`)."""
    for name in _BREAKER_STATES:
        BREAKER_STATE.labels(provider, name).set(1 if name == state else 0)
    if was is not None:
        BREAKER_TRANSITIONS.labels(provider, state).inc()


def record_provider_send(provider: str, result: str) -> None:
    PROVIDER_SENDS.labels(provider, result).inc()
