"""Retention: what `manage.py prune` deletes, kind by kind, in small batches (docs/deploy/retention.md).

Every batch is its own short transaction: up to `batch_rows` ids in primary-key order past the
previous batch's last, selected FOR UPDATE SKIP LOCKED (a row another transaction holds is left
for the next run, not waited for), deleted, committed without waiting for the WAL flush.
Nothing is held between batches, and a batch that waits more than LOCK_TIMEOUT_MS for a lock
is rolled back and skipped. A send writes new rows and today's count, which no batch selects.

Kinds, in the order they run: outbox leftovers, delivery events, outbound webhook messages
(with their attempts), sent emails (with their deliveries, events, history, tags, attachments
and outbox rows), idempotency records, daily send counts, login attempt counters.
Suppressions are the users' lists and are never pruned; recipient rows (one per address,
shared by every email sent to it) stay too: deleting one would race with a send that has just
looked it up.
"""

import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.utils import timezone

from emailsystem.emails.models import (
    DailySendCount,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    EmailStatus,
    IdempotencyRecord,
    OutboxMessage,
    SentEmail,
)
from emailsystem.emails.sql import lock_timeout_set, sent_emails_delete
from emailsystem.outbound.models import MessageState, WebhookMessage
from emailsystem.users.models import AttemptCounter

logger = logging.getLogger(__name__)

# Ids per batch. For sent emails the bound is on recipients: a batch holds as many emails as
# fit in BATCH_ROWS deliveries (at least one). 250 keeps a batch's locks and WAL (a few hundred
# KB with the pages' first images after a checkpoint) short next to a send's commit, at the same
# rows per second as 1,000 in bench `prune` (docs/performance.md).
BATCH_ROWS = 250
# The longest a batch waits for a row lock. Results, SendGrid events and requeues lock an old
# email's deliveries for milliseconds; a batch that meets one waits it out, and is skipped
# (its rows wait for the next run) rather than queue anything behind it for longer.
LOCK_TIMEOUT_MS = 2000
# After each batch prune waits this many times as long as the batch took, so that it works at most
# a quarter of the time and backs off by itself when the database is slow. In bench `prune` a
# ratio of 1 added 25 ms to the sends' p99 (85 to 110 ms) and took a quarter of their throughput;
# 3 added 5 to 25 ms over four runs and took 5 % in the run beside it (docs/performance.md).
PAUSE_RATIO = 3.0
# PostgreSQL's lock_not_available (lock_timeout) and deadlock_detected: the batch is skipped.
_LOCK_CONFLICTS = {"55P03", "40P01"}
# Emails still on their way: never pruned, nor are those with a recipient still queued.
_IN_FLIGHT = [EmailStatus.SCHEDULED, EmailStatus.QUEUED]
# One kind's rows, of whichever model.
_Rows = QuerySet[Any]


@dataclass
class Pruned:
    """What one kind's pass deleted (or, in a dry run, would delete)."""

    kind: str
    rule: str  # which rows go ("received more than 90 days ago"), or why none do
    rows: int = 0
    # Rows deleted with them, by model (sent emails: their deliveries, events...).
    with_rows: dict[type[Model], int] = field(default_factory=dict)
    skipped_batches: int = 0


@dataclass(frozen=True)
class _Kind:
    name: str
    rule: str
    candidates: _Rows | None  # the rows to delete; None: kept forever
    # (rows to walk, after id, batch_rows) -> the batch's ids, locked or to be locked by `delete`.
    select: Callable[[_Rows, int, int], list[int]]
    # (candidates, ids) -> rows deleted, by model.
    delete: Callable[[_Rows, list[int]], dict[type[Model], int]]
    walk: _Rows | None = None  # what batches are selected from, when not `candidates`


def records_prune(
    *,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    pause_ratio: float = PAUSE_RATIO,
    report: Callable[[Pruned], None] | None = None,
) -> list[Pruned]:
    """Delete every kind's records past its retention, batch by batch; what went, per kind.

    `dry_run`: count them instead. `pause_ratio`: after each batch, wait this many times as long
    as it took, leaving the database to other work. `report` is called with each kind as it is done, so that the kinds
    done before an error are known. A DatabaseError other than a lock conflict is raised.
    """
    results = []
    for kind in _kinds(now or timezone.now()):
        pruned = Pruned(kind=kind.name, rule=kind.rule)
        if kind.candidates is not None:
            if dry_run:
                pruned.rows = kind.candidates.count()
            else:
                _prune(kind, kind.candidates, pruned, batch_rows=batch_rows, pause_ratio=pause_ratio)
        if report is not None:
            report(pruned)
        results.append(pruned)
    return results


def _prune(kind: _Kind, candidates: _Rows, pruned: Pruned, *, batch_rows: int, pause_ratio: float) -> None:
    walk = candidates if kind.walk is None else kind.walk
    last = 0
    while True:
        ids: list[int] = []
        started = time.monotonic()
        try:
            with transaction.atomic():
                # A batch a crash undoes is deleted by the next run: its commit need not wait for
                # the disk, and the sends' commits do not queue behind its WAL flush.
                lock_timeout_set(milliseconds=LOCK_TIMEOUT_MS, flush_at_commit=False)
                ids = kind.select(walk, last, batch_rows)
                deleted = kind.delete(candidates, ids) if ids else {}
        except DatabaseError as error:
            if not ids or getattr(error.__cause__, "pgcode", None) not in _LOCK_CONFLICTS:
                raise
            pruned.skipped_batches += 1
            logger.warning(
                "prune: %s: batch after id %d skipped: %s", kind.name, last, error, extra={"kind": kind.name}
            )
        else:
            if not ids:
                return
            pruned.rows += deleted.pop(candidates.model, 0)
            for model, count in deleted.items():
                pruned.with_rows[model] = pruned.with_rows.get(model, 0) + count
        last = ids[-1]
        time.sleep((time.monotonic() - started) * pause_ratio)


def _kinds(now: datetime.datetime) -> list[_Kind]:
    outbox_days = settings.RETENTION_OUTBOX_LEFTOVERS_DAYS
    events_days = settings.RETENTION_DELIVERY_EVENTS_DAYS
    emails_days = settings.RETENTION_SENT_EMAILS_DAYS
    counts_days = settings.RETENTION_DAILY_COUNTS_DAYS
    ttl_hours = settings.IDEMPOTENCY_KEY_TTL_HOURS
    # An outbox row has something left to send while its email has a queued recipient.
    queued = Delivery.objects.filter(sent_email=OuterRef("sent_email"), status=DeliveryStatus.QUEUED)
    emails_before = now - datetime.timedelta(days=emails_days)
    return [
        _Kind(
            "outbox leftovers",
            _rule(
                outbox_days,
                "RETENTION_OUTBOX_LEFTOVERS_DAYS",
                "written more than {days} days ago, nothing left to send",
            ),
            OutboxMessage.objects.filter(created__lt=_days_ago(now, outbox_days)).exclude(Exists(queued))
            if outbox_days
            else None,
            _select_locked,
            _delete,
        ),
        _Kind(
            "delivery events",
            _rule(events_days, "RETENTION_DELIVERY_EVENTS_DAYS", "received more than {days} days ago"),
            DeliveryEvent.objects.filter(received_at__lt=_days_ago(now, events_days)) if events_days else None,
            _select_locked,
            _delete,
        ),
        _Kind(
            "outbound webhook messages",
            _rule(
                events_days,
                "RETENTION_DELIVERY_EVENTS_DAYS",
                "recorded more than {days} days ago and settled, with their attempts",
            ),
            WebhookMessage.objects.filter(created__lt=_days_ago(now, events_days)).exclude(state=MessageState.PENDING)
            if events_days
            else None,
            _select_locked,
            _delete,
        ),
        _Kind(
            "sent emails",
            _rule(emails_days, "RETENTION_SENT_EMAILS_DAYS", "accepted more than {days} days ago, none in flight"),
            _sent_emails_prunable(before=emails_before) if emails_days else None,
            _select_sent_emails,
            _delete_sent_emails,
            # On the emails' own columns: an anti-join to the deliveries, planned for the whole
            # table, read every delivery to find the first batch (2.4 s on 2,000,000); each batch
            # is checked in full once locked.
            walk=SentEmail.objects.filter(created__lt=emails_before).exclude(status__in=_IN_FLIGHT),
        ),
        _Kind(
            "idempotency records",
            f"written more than {ttl_hours} hours ago, past IDEMPOTENCY_KEY_TTL_HOURS",
            IdempotencyRecord.objects.filter(created__lt=now - datetime.timedelta(hours=ttl_hours)),
            _select_locked,
            _delete,
        ),
        _Kind(
            "daily send counts",
            _rule(counts_days, "RETENTION_DAILY_COUNTS_DAYS", "UTC days more than {days} days ago"),
            DailySendCount.objects.filter(day__lt=_days_ago(now, counts_days).date()) if counts_days else None,
            _select_locked,
            _delete,
        ),
        _Kind(
            "login attempt counters",
            "windows ended",
            AttemptCounter.objects.filter(expires_at__lte=now),
            _select_locked,
            _delete,
        ),
    ]


def _sent_emails_prunable(*, before: datetime.datetime) -> QuerySet[SentEmail]:
    """Emails accepted before `before` with nothing in flight: not scheduled or queued, and no
    recipient queued (an admin's requeue puts a failed one back)."""
    queued = Delivery.objects.filter(sent_email=OuterRef("pk"), status=DeliveryStatus.QUEUED)
    return SentEmail.objects.filter(created__lt=before).exclude(status__in=_IN_FLIGHT).exclude(Exists(queued))


def _rule(days: int, setting: str, condition: str) -> str:
    return condition.format(days=days) if days else f"kept forever ({setting}=0)"


def _days_ago(now: datetime.datetime, days: int) -> datetime.datetime:
    return now - datetime.timedelta(days=days)


def _select_locked(walk: _Rows, after: int, batch_rows: int) -> list[int]:
    rows = walk.filter(pk__gt=after).order_by("pk").select_for_update(skip_locked=True)
    return list(rows.values_list("pk", flat=True)[:batch_rows])


def _delete(candidates: _Rows, ids: list[int]) -> dict[type[Model], int]:
    # Models nothing refers to: one DELETE ... WHERE id IN (...), no rows loaded.
    _, by_label = candidates.model.objects.filter(pk__in=ids).delete()
    return {candidates.model: by_label.get(candidates.model._meta.label, 0)}


def _select_sent_emails(walk: _Rows, after: int, batch_rows: int) -> list[int]:
    """The next emails whose recipients fit in `batch_rows` (at least one email); not locked yet."""
    ids: list[int] = []
    recipients = 0
    for pk, count in walk.filter(pk__gt=after).order_by("pk").values_list("pk", "recipient_count")[:batch_rows]:
        if ids and recipients + count > batch_rows:
            break
        ids.append(pk)
        recipients += count
    return ids


def _delete_sent_emails(candidates: _Rows, ids: list[int]) -> dict[type[Model], int]:
    # Their deliveries first, in id order, the order in which results, SendGrid events and
    # requeues lock deliveries and then their email: no deadlock with them, and one that comes
    # after this batch finds the rows gone.
    list(Delivery.objects.filter(sent_email_id__in=ids).order_by("pk").select_for_update().values_list("pk"))
    # Checked in full now that nothing can put a recipient back in the queue.
    still = list(candidates.filter(pk__in=ids).order_by("pk").select_for_update().values_list("pk", flat=True))
    return sent_emails_delete(email_ids=still)
