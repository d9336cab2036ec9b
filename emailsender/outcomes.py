"""What handling a work message comes to (`Outcome`), and the result messages that record it
for the web's results process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from emailsender.messages import Rejected, WorkMessage
from emailsender.result_messages import build_result


class OutcomeKind(StrEnum):
    SENT = "sent"  # 2xx: publish a "sent" result, ack
    RETRY = "retry"  # 5xx / timeout / connection error with attempts left: delay queue, ack
    RATE_LIMITED = "rate_limited"  # 429: delay queue with the same attempt count, ack
    FAILED = "failed"  # other 4xx, or out of attempts: dead letter, "failed" result, ack
    POISON = "poison"  # not a valid work message: dead letter (and "failed" result if ids known), ack


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    # Attempts made including this one (unchanged for RATE_LIMITED and POISON, which used none).
    attempt: int
    reason: str = ""
    status_code: int | None = None
    delay_seconds: float = 0.0  # RETRY and RATE_LIMITED: how long to wait before the next try
    message: WorkMessage | None = field(default=None, repr=False)  # None only for POISON
    email_id: int | None = None
    delivery_ids: tuple[int, ...] = ()
    # Deliveries not attempted because their address cannot be used: each fails on its own,
    # whatever happens to the others.
    rejected: tuple[Rejected, ...] = ()
    # The provider that answered (providers.ProviderChain), recorded with each "sent" recipient.
    provider: str = ""


_RESULT_OUTCOMES = {
    OutcomeKind.SENT: "sent",
    OutcomeKind.RETRY: "retrying",
    OutcomeKind.FAILED: "failed",
    OutcomeKind.POISON: "failed",
}


def results_for(outcome: Outcome) -> list[dict[str, Any]]:
    """Every result message that records `outcome`: `result_for`'s, then a "failed" one per
    reason for the deliveries rejected for their address (no attempt was made for those)."""
    results = [result] if (result := result_for(outcome)) is not None else []
    if outcome.email_id is None:
        return results
    by_reason: dict[str, list[int]] = {}
    for rejected in outcome.rejected:
        by_reason.setdefault(rejected.reason, []).append(rejected.id)
    now = datetime.now(UTC)
    for offset, (reason, delivery_ids) in enumerate(by_reason.items()):
        # The email's history keeps one row per (moment, attempt): each group has its own moment.
        at = now + timedelta(microseconds=offset)
        results.append(
            build_result(
                email_id=outcome.email_id, delivery_ids=delivery_ids, outcome="failed", attempt=0, reason=reason, at=at
            )
        )
    return results


def result_for(outcome: Outcome) -> dict[str, Any] | None:
    """The result message (see result_messages.build_result) that records `outcome`, or None when there
    is nothing to record: a 429 changes nothing for the recipients, and a poison message whose
    ids could not be read names no recipient."""
    result_outcome = _RESULT_OUTCOMES.get(outcome.kind)
    if result_outcome is None or outcome.email_id is None or not outcome.delivery_ids:
        return None
    return build_result(
        email_id=outcome.email_id,
        delivery_ids=outcome.delivery_ids,
        outcome=result_outcome,
        attempt=outcome.attempt,
        reason=outcome.reason,
        status_code=outcome.status_code,
        provider=outcome.provider if outcome.kind is OutcomeKind.SENT else None,
    )
