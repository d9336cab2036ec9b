"""The webhooks queue and its delay queues, beside the sender's on the same exchange (emailsender/topology.py).

`<prefix>.webhooks` (routing key `webhook`) holds messages to attempt; each retry delay of
OUTBOUND_WEBHOOKS_RETRY_SCHEDULE is a queue `<prefix>.webhooks.retry.<ms>` whose messages
expire into the webhooks queue, as the sender's retries do. PARK_DELAY_MS is one more tier:
where the webhooks process puts a message whose endpoint already has its fill of attempts
in flight, so it holds no slot of the prefetch while it waits.
"""

import json
from typing import Any

import pika

from emailsender import topology

WEBHOOK_KEY = "webhook"
# A message whose endpoint is busy comes back after this long.
PARK_DELAY_MS = 1000


def webhooks_queue(prefix: str) -> str:
    return f"{prefix}.webhooks"


def webhook_retry_queue(prefix: str, delay_ms: int) -> str:
    return f"{prefix}.webhooks.retry.{int(delay_ms)}"


def delay_tiers_ms(schedule: tuple[int, ...]) -> list[int]:
    """Every delay queue's TTL: the schedule's delays in milliseconds, and PARK_DELAY_MS."""
    return sorted({seconds * 1000 for seconds in schedule} | {PARK_DELAY_MS})


def all_webhook_queues(prefix: str, schedule: tuple[int, ...]) -> list[str]:
    return [webhooks_queue(prefix), *(webhook_retry_queue(prefix, ms) for ms in delay_tiers_ms(schedule))]


def declare_webhooks(channel: Any, prefix: str, schedule: tuple[int, ...], queue_type: str) -> None:
    """Declare the webhooks queue and its delay queues on the sender's exchange (which
    `topology.declare` creates: call that first), of `queue_type` as the sender's queues are
    (RABBITMQ_QUEUE_TYPE): quorum delay queues dead-letter at least once. Idempotent, as
    topology.declare is."""
    exchange = topology.exchange_name(prefix)
    channel.queue_declare(
        queue=webhooks_queue(prefix), durable=True, arguments=topology.queue_arguments(queue_type) or None
    )
    channel.queue_bind(queue=webhooks_queue(prefix), exchange=exchange, routing_key=WEBHOOK_KEY)
    for delay_ms in delay_tiers_ms(schedule):
        channel.queue_declare(
            queue=webhook_retry_queue(prefix, delay_ms),
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                **topology.queue_arguments(queue_type, dead_letter_to=WEBHOOK_KEY, exchange=exchange),
            },
        )


def encode(*, message_id: int, endpoint_id: int, attempt: int) -> bytes:
    """A queue message: the WebhookMessage, its endpoint (for the per-endpoint cap) and the attempt number."""
    return json.dumps({"message": message_id, "endpoint": endpoint_id, "attempt": attempt}).encode()


def decode(body: bytes) -> tuple[int, int, int]:
    """(message id, endpoint id, attempt); raises ValueError for anything else."""
    data = json.loads(body)
    values = (data["message"], data["endpoint"], data["attempt"])
    if not all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values):
        raise ValueError("message, endpoint and attempt must be non-negative integers")
    return values


def properties(webhook_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=topology.CONTENT_TYPE, delivery_mode=topology.PERSISTENT, message_id=webhook_id
    )
