"""Rows of a sent email's history (models.SentEmailHistory): its publishes, attempts and requeues.

The admin's timeline reads them next to the email's `created` and SendGrid's events. Every
write here joins a statement or transaction its caller already has: one multi-row INSERT per
batch of results or per requeue, and none at all for a publish (outbox.outbox_delete).
"""

import datetime
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from emailsender.result_messages import ResultMessage
from emailsystem.core.plain_sql import rows_insert
from emailsystem.emails.models import HistoryKind, SentEmailHistory

REASON_MAX_CHARS = 1000  # as Delivery.reason: SendGrid's error bodies can be long


def attempt_row(result: ResultMessage) -> dict[str, Any]:
    """The history row of one sender's result: one call to SendGrid and what came of it."""
    return {
        "sent_email_id": result.email_id,
        "kind": HistoryKind.ATTEMPT.value,
        "at": result.at,
        "delivery_ids": list(result.deliveries),
        "attempt": result.attempt,
        "outcome": result.outcome,
        "status_code": result.status_code,
        "reason": result.reason.replace("\x00", "")[:REASON_MAX_CHARS],
    }


def taken_row(*, email_id: int, delivery_ids: list[int] | None, at: datetime.datetime) -> dict[str, Any]:
    """The history row of the embedded worker's first claim of an outbox row (its "publish")."""
    return {"sent_email_id": email_id, "kind": HistoryKind.TAKEN.value, "at": at, "delivery_ids": delivery_ids}


def history_insert(*, rows: Iterable[dict[str, Any]], email_ids: Collection[int]) -> None:
    """Insert the rows of these emails in one statement (the rows of emails deleted since are dropped).

    Call inside the transaction that locked `email_ids` (results.sent_email_status_refresh),
    so none of them can be deleted before the commit. A row already recorded (a result the
    results process received twice) is skipped by the unique constraint on (email, at, attempt).
    """
    kept = [row for row in rows if row["sent_email_id"] in email_ids]
    if kept:
        rows_insert(SentEmailHistory, kept, skip_conflicts=True)


def requeues_record(*, by_email: dict[int, list[int]], at: datetime.datetime) -> None:
    """One `requeued` row per email, naming its requeued deliveries: one INSERT."""
    rows = [
        {"sent_email_id": email_id, "kind": HistoryKind.REQUEUED.value, "at": at, "delivery_ids": sorted(ids)}
        for email_id, ids in by_email.items()
    ]
    if rows:
        rows_insert(SentEmailHistory, rows)


def attempt_rows(results: Sequence[ResultMessage]) -> list[dict[str, Any]]:
    return [attempt_row(result) for result in results if result.deliveries]
