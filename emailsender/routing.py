"""What to publish for each outcome before the work message may be acked. Pure; no broker.

| outcome      | publishes (in order)                                          | then |
|--------------|---------------------------------------------------------------|------|
| sent         | result "sent"                                                 | ack  |
| retry        | copy -> its lane's retry tier (x-attempt + 1, jittered exp.), | ack  |
|              | result "retrying"                                             |      |
| rate_limited | copy -> retry tier (same x-attempt, expiration = the wait)    | ack  |
| failed       | original -> dead (x-death-reason), result "failed"            | ack  |
| poison       | original -> dead (x-death-reason), result "failed" if the     | ack  |
|              | email and delivery ids could be read                          |      |

Each outcome's results also include a "failed" result for the deliveries whose address could
not be used (outcomes.results_for), so those fail while the others are sent or retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emailsender import topology
from emailsender.outcomes import Outcome, OutcomeKind, results_for
from emailsender.result_messages import encode_result
from emailsender.settings import Settings

# Headers RabbitMQ adds when dead-lettering out of a retry queue; copying them into the next
# retry would make them grow with every attempt.
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


@dataclass(frozen=True)
class Publish:
    purpose: str  # "result", "retry" or "dead", for logs
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    expiration_ms: int | None = None


def _copy_headers(headers: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    copied = {k: v for k, v in (headers or {}).items() if k not in _BROKER_HEADERS}
    copied.update(changes)
    return copied


def _result(
    outcome: Outcome, settings: Settings, message_id: str | None, headers: dict[str, Any] | None
) -> list[Publish]:
    request_id = request_id_from_headers(headers)
    return [
        Publish(
            purpose="result",
            exchange=topology.exchange_name(settings.queue_prefix),
            routing_key=topology.RESULT_KEY,
            body=encode_result(result),
            # The results process logs both, so one id finds the request, the send and the result.
            correlation_id=message_id,
            headers={topology.REQUEST_ID_HEADER: request_id} if request_id else {},
        )
        for result in results_for(outcome)
    ]


def _delayed_copy(
    outcome: Outcome,
    body: bytes,
    headers: dict[str, Any] | None,
    settings: Settings,
    message_id: str | None,
    lane: str,
) -> Publish:
    delay_ms = max(1, round(outcome.delay_seconds * 1000))
    tier = topology.retry_tier(delay_ms, settings.retry_delays_ms)
    return Publish(
        purpose="retry",
        exchange="",  # the default exchange routes by queue name straight into the tier
        routing_key=topology.retry_queue(settings.queue_prefix, tier, lane),
        body=body,
        headers=_copy_headers(headers, **{topology.ATTEMPT_HEADER: outcome.attempt}),
        message_id=message_id,
        expiration_ms=min(delay_ms, tier),
    )


def _dead_letter(
    outcome: Outcome, body: bytes, headers: dict[str, Any] | None, settings: Settings, message_id: str | None
) -> Publish:
    return Publish(
        purpose="dead",
        exchange=topology.exchange_name(settings.queue_prefix),
        routing_key=topology.DEAD_KEY,
        body=body,
        headers=_copy_headers(
            headers, **{topology.ATTEMPT_HEADER: outcome.attempt, topology.DEATH_REASON_HEADER: outcome.reason}
        ),
        message_id=message_id,
    )


def plan(
    outcome: Outcome,
    *,
    body: bytes,
    headers: dict[str, Any] | None,
    message_id: str | None,
    settings: Settings,
    lane: str = topology.WORK_KEY,
) -> list[Publish]:
    """The publishes the broker must have stored (committed), in order, before the work message is acked.

    `lane` is the work queue the message came from: a retry goes to that lane's delay tier,
    which dead-letters it back to the same lane.
    """
    if outcome.kind is OutcomeKind.SENT:
        return _result(outcome, settings, message_id, headers)
    if outcome.kind in (OutcomeKind.RETRY, OutcomeKind.RATE_LIMITED):
        # RATE_LIMITED gets no result (see result_for): a long 429 storm would flood the results queue.
        return [
            _delayed_copy(outcome, body, headers, settings, message_id, lane),
            *_result(outcome, settings, message_id, headers),
        ]
    return [
        _dead_letter(outcome, body, headers, settings, message_id),
        *_result(outcome, settings, message_id, headers),
    ]


# Past the last attempt every count means the same. The count travels on (plus one) in the
# x-attempt header and in results, and the web side stores it in a small integer (<= 32767).
ATTEMPT_MAX = 10_000


def attempt_from_headers(headers: dict[str, Any] | None) -> int:
    """The x-attempt header as an int in [0, ATTEMPT_MAX]; absent or garbage counts as 0.

    Whatever a publisher put there (infinity, 2**63 - 1, a string of digits) must neither
    raise nor come back as a count too large to publish, or the message would crash the
    sender on every redelivery.
    """
    value = (headers or {}).get(topology.ATTEMPT_HEADER, 0)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    try:
        return min(max(int(value), 0), ATTEMPT_MAX)
    except (TypeError, ValueError, OverflowError):
        return 0


def request_id_from_headers(headers: Mapping[str, Any] | None) -> str | None:
    """The x-request-id header (the API request a send came from), if it is a sane id."""
    value = (headers or {}).get(topology.REQUEST_ID_HEADER)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return value if isinstance(value, str) and topology.valid_request_id(value) else None
