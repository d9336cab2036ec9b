"""RabbitMQ names and declarations shared by the web side and the sender.

Both sides call `declare()` at start-up; every declaration is idempotent. Nobody should spell
a queue name by hand: use the helpers below. The diagram is in docs/sender/messages.md.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pika

from emailsender.settings import QUEUE_TYPES, QUORUM

DEFAULT_PREFIX = "emails"
# The two lanes of work, each a routing key and a work queue of its own (docs/sender/fairness.md):
# the web side picks one per work message, the sender consumes both.
WORK_KEY = "send"
BULK_KEY = "bulk"
LANES = (WORK_KEY, BULK_KEY)
RESULT_KEY = "result"
DEAD_KEY = "dead"

# Matches Settings() defaults: backoff tiers for base 2 s x4 capped at 600 s, plus rate-limit tiers.
DEFAULT_RETRY_DELAYS_MS = (1_000, 2_000, 8_000, 10_000, 32_000, 60_000, 128_000)

# Message headers the sender reads or writes.
ATTEMPT_HEADER = "x-attempt"
DEATH_REASON_HEADER = "x-death-reason"
# The id of the API request a work message came from, copied to its retries, dead letter and result.
REQUEST_ID_HEADER = "x-request-id"
CONTENT_TYPE = "application/json"
PERSISTENT: Final = 2

# A quorum queue drops (or dead-letters) a message returned to it this many times; RabbitMQ 4
# sets 20 by default. Returns here are shutdowns, crashes and the results process handing a
# batch back every 2 s while the database is down: a million covers an outage of three weeks.
DELIVERY_LIMIT = 1_000_000


# What a request id may look like: a client's X-Request-ID is taken only if it matches.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def valid_request_id(value: str) -> bool:
    """True for ids safe to log and carry: 1-128 letters, digits, '.', '_', ':' or '-'."""
    # fullmatch, not match with "$": "$" also matches before a trailing newline.
    return bool(_REQUEST_ID.fullmatch(value))


def exchange_name(prefix: str = DEFAULT_PREFIX) -> str:
    """The direct exchange every message is published to."""
    return prefix


def work_queue(prefix: str = DEFAULT_PREFIX) -> str:
    """The queue senders compete on (routing key `send`)."""
    return f"{prefix}.send"


def bulk_queue(prefix: str = DEFAULT_PREFIX) -> str:
    """The bulk lane's work queue (routing key `bulk`): large sends and busy senders' work."""
    return f"{prefix}.bulk"


def lane_queue(prefix: str, lane: str) -> str:
    """The work queue of `lane` (WORK_KEY or BULK_KEY)."""
    return bulk_queue(prefix) if _checked(lane) == BULK_KEY else work_queue(prefix)


def retry_queue(prefix: str, delay_ms: int, lane: str = WORK_KEY) -> str:
    """The delay queue for one tier of one lane; the name carries the TTL so a new tier is a new
    queue, and it dead-letters back to its own lane's work queue."""
    if _checked(lane) == BULK_KEY:
        return f"{prefix}.bulk.retry.{int(delay_ms)}"
    return f"{prefix}.retry.{int(delay_ms)}"


def _checked(lane: str) -> str:
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}; lanes are {LANES}")
    return lane


def dead_queue(prefix: str = DEFAULT_PREFIX) -> str:
    """Dead letters (routing key `dead`): poison messages and sends that failed for good."""
    return f"{prefix}.dead"


def results_queue(prefix: str = DEFAULT_PREFIX) -> str:
    """Delivery results (routing key `result`) for the web side's results process."""
    return f"{prefix}.results"


def all_queues(prefix: str, retry_delays_ms: tuple[int, ...] | list[int]) -> list[str]:
    """Every queue `declare()` creates, for tooling and test clean-up."""
    return [
        work_queue(prefix),
        bulk_queue(prefix),
        dead_queue(prefix),
        results_queue(prefix),
        *(retry_queue(prefix, ms, lane) for lane in LANES for ms in sorted(set(retry_delays_ms))),
    ]


def retry_tier(delay_ms: int, retry_delays_ms: tuple[int, ...] | list[int]) -> int:
    """The smallest tier that holds `delay_ms`, or the largest tier if none does.

    A message's own `expiration` is at most its tier's TTL, so the time it waits is between
    its expiration and the tier TTL (RabbitMQ only expires messages at the head of a queue).
    """
    tiers = sorted(set(retry_delays_ms))
    if not tiers:
        raise ValueError("retry_delays_ms is empty")
    for tier in tiers:
        if tier >= delay_ms:
            return tier
    return tiers[-1]


def queue_arguments(queue_type: str, *, dead_letter_to: str | None = None, exchange: str = "") -> dict[str, Any]:
    """The `x-` arguments of a queue of `queue_type` that dead-letters to routing key `dead_letter_to`.

    Quorum queues dead-letter at least once: the message leaves the source queue only after
    the target queue has confirmed it, so a retry that expires while a node is lost is never
    dropped. RabbitMQ accepts that strategy only with `x-overflow: reject-publish`; no queue
    here has a length limit, so the overflow setting never refuses a publish.
    """
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue_type must be one of {QUEUE_TYPES} (got {queue_type!r})")
    arguments: dict[str, Any] = {}
    if queue_type == QUORUM:
        arguments["x-queue-type"] = QUORUM
        arguments["x-delivery-limit"] = DELIVERY_LIMIT
    if dead_letter_to is not None:
        arguments["x-dead-letter-exchange"] = exchange
        arguments["x-dead-letter-routing-key"] = dead_letter_to
        if queue_type == QUORUM:
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    return arguments


def declare(
    channel: Any,
    prefix: str = DEFAULT_PREFIX,
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS,
    queue_type: str = QUORUM,
) -> None:
    """Declare the exchange, the two lanes' work and retry queues, the dead and results queues
    and their bindings.

    `channel` is an open pika BlockingChannel. Safe to call any number of times from any
    process; a changed retry tier creates a new queue instead of failing with PRECONDITION_FAILED.
    A queue that exists with another type (or other arguments) fails with PRECONDITION_FAILED
    (406): docs/sender/messages.md says how to move a deployment from classic to quorum queues.
    """
    exchange = exchange_name(prefix)
    channel.exchange_declare(exchange=exchange, exchange_type="direct", durable=True)
    for queue, key in (
        (work_queue(prefix), WORK_KEY),
        (bulk_queue(prefix), BULK_KEY),
        (dead_queue(prefix), DEAD_KEY),
        (results_queue(prefix), RESULT_KEY),
    ):
        arguments = queue_arguments(queue_type)
        channel.queue_declare(queue=queue, durable=True, arguments=arguments or None)
        channel.queue_bind(queue=queue, exchange=exchange, routing_key=key)
    for lane in LANES:
        for delay_ms in sorted(set(retry_delays_ms)):
            channel.queue_declare(
                queue=retry_queue(prefix, delay_ms, lane),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay_ms),
                    **queue_arguments(queue_type, dead_letter_to=lane, exchange=exchange),
                },
            )


def delete(channel: Any, prefix: str, retry_delays_ms: tuple[int, ...] | list[int]) -> None:
    """Delete everything `declare()` created (tests and tear-down scripts only)."""
    for queue in all_queues(prefix, retry_delays_ms):
        channel.queue_delete(queue=queue)
    channel.exchange_delete(exchange=exchange_name(prefix))


def work_properties(message_id: str, attempt: int = 0, request_id: str | None = None) -> pika.BasicProperties:
    """AMQP properties for a work message: persistent JSON with our message id, attempt count and request id."""
    headers: dict[str, Any] = {ATTEMPT_HEADER: int(attempt)}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        message_id=message_id,
        headers=headers,
    )


def publish_work(
    channel: Any,
    body: bytes,
    *,
    message_id: str,
    prefix: str = DEFAULT_PREFIX,
    request_id: str | None = None,
    lane: str = WORK_KEY,
) -> None:
    """Publish one encoded work message (see `messages.encode_work`) to `lane`'s work queue.

    `mandatory=True` makes an unroutable message an error instead of a silent drop; on a
    channel in confirm mode (`channel.confirm_delivery()`) this returns once the broker has it.
    """
    channel.basic_publish(
        exchange=exchange_name(prefix),
        routing_key=_checked(lane),
        body=body,
        properties=work_properties(message_id, request_id=request_id),
        mandatory=True,
    )
