"""Applying the sender's results to per-recipient statuses, and deriving each email's status from them.

Every result only moves a delivery out of `queued`, so applying a result twice, or a stale
result after a newer one, changes nothing: results are idempotent and never go backwards.
SendGrid's events (emails/webhooks/) move recipients further, by the order in statuses.py, and
derive the email's status with the same functions below.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from emailsender.result_messages import ResultMessage
from emailsystem.emails.delivery.history import attempt_rows, history_insert
from emailsystem.emails.delivery.statuses import DELIVERED, REACHED
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, SentEmail
from emailsystem.emails.sql import SentDelivery, deliveries_mark_sent
from emailsystem.outbound.events import results_watch

logger = logging.getLogger(__name__)

REASON_MAX_CHARS = 1000


def sent_email_status_derive(
    *, queued: int, sent: int, total: int, delivered: int = 0, suppressed: int = 0, sandboxed: int = 0
) -> EmailStatus:
    """An email's status from its recipients' counts: queued until all settle, then the outcome.

    `sent`: recipients that reached SendGrid (statuses.REACHED), of which `delivered` reached
    the mailbox's server (statuses.DELIVERED) and `sandboxed` its sandbox mode; `suppressed`:
    recipients never attempted. A sandbox send is `sandboxed` once every recipient not
    suppressed is; with failures it is `partial` or `failed` as any send.
    """
    if queued:
        return EmailStatus.QUEUED
    if sandboxed and sandboxed + suppressed == total:
        return EmailStatus.SANDBOXED
    if sent == total:
        return EmailStatus.DELIVERED if delivered == total else EmailStatus.SENT
    if sent == 0:
        return EmailStatus.SUPPRESSED if suppressed == total else EmailStatus.FAILED
    return EmailStatus.PARTIAL


def sent_email_status_refresh(*, email_ids: Iterable[int]) -> list[int]:
    """Recompute the stored status of these emails from their deliveries (a few queries for any number).

    Call inside the transaction that changed the deliveries. The emails are locked first, in
    id order: two transactions that each changed a different recipient of one email would
    otherwise each count the other's recipient as it was, and the last to commit would store
    a status neither saw whole. Under READ COMMITTED the count runs once the lock is granted,
    so it sees what the other transaction committed. Returns the ids of the emails that
    exist (locked until the commit).
    """
    ids = sorted(set(email_ids))
    if not ids:
        return []
    locked = list(SentEmail.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    counts = (
        Delivery.objects.filter(sent_email_id__in=ids)
        .values("sent_email_id")
        .annotate(
            total=Count("id"),
            queued=Count("id", filter=Q(status=DeliveryStatus.QUEUED)),
            sent=Count("id", filter=Q(status__in=REACHED)),
            delivered=Count("id", filter=Q(status__in=DELIVERED)),
            suppressed=Count("id", filter=Q(status=DeliveryStatus.SUPPRESSED)),
            sandboxed=Count("id", filter=Q(status=DeliveryStatus.SANDBOXED)),
        )
        .order_by()
    )
    by_status: dict[EmailStatus, list[int]] = defaultdict(list)
    for row in counts:
        derived = sent_email_status_derive(
            total=row["total"],
            queued=row["queued"],
            sent=row["sent"],
            delivered=row["delivered"],
            suppressed=row["suppressed"],
            sandboxed=row["sandboxed"],
        )
        by_status[derived].append(row["sent_email_id"])
    now = timezone.now()
    for status, email_ids_with_status in by_status.items():
        SentEmail.objects.filter(pk__in=email_ids_with_status).exclude(status=status).update(status=status, updated=now)
    return locked


@transaction.atomic
def delivery_results_apply(*, results: Sequence[ResultMessage], history: Sequence[dict[str, Any]] = ()) -> int:
    """Apply a batch of results in one transaction; returns how many deliveries changed.

    sent: queued -> sent, with sent_at and the attempt count. failed: queued -> failed with
    the reason. retrying: stays queued; records the attempt count and the last error. Every
    result is also an attempt in its email's history; `history` adds other rows of these
    emails (history.taken_row) to the same insert. Recipients whose sender has a webhook
    endpoint get their outbound webhook messages in the same transaction (outbound/events.py).
    """
    changed = 0
    now = timezone.now()
    # Outbound webhooks: one query finds whether any of these emails' senders has an endpoint.
    deliveries_by_email: dict[int, list[int]] = defaultdict(list)
    for result in results:
        deliveries_by_email[result.email_id].extend(result.deliveries)
    watch = results_watch(deliveries_by_email=deliveries_by_email)
    sent: list[SentDelivery] = []  # consecutive `sent` results, applied together before the next other result
    for result in results:
        if not result.deliveries:
            continue
        if result.outcome == "sent":  # nearly every result: a run of them is one UPDATE (sql.deliveries_mark_sent)
            provider = result.provider or ""
            sent += [SentDelivery(result.email_id, pk, result.at, result.attempt, provider) for pk in result.deliveries]
            continue
        changed += deliveries_mark_sent(deliveries=sent, now=now)
        sent = []
        pending = Delivery.objects.filter(
            pk__in=result.deliveries, sent_email_id=result.email_id, status=DeliveryStatus.QUEUED
        )
        # The reason quotes SendGrid's error body; PostgreSQL text cannot hold NUL, and one
        # unstorable result would fail its whole batch on every redelivery.
        reason = result.reason.replace("\x00", "")[:REASON_MAX_CHARS]
        if result.outcome == "failed":
            changed += pending.update(status=DeliveryStatus.FAILED, attempts=result.attempt, reason=reason, updated=now)
        elif result.outcome == "retrying":
            pending.filter(attempts__lt=result.attempt).update(attempts=result.attempt, reason=reason, updated=now)
        else:  # parse_result admits nothing else; a new outcome must be handled here first
            logger.error("unknown result outcome %r for email %s", result.outcome, result.email_id)
    changed += deliveries_mark_sent(deliveries=sent, now=now)
    existing = sent_email_status_refresh(email_ids=(result.email_id for result in results))
    # The timeline's attempts: one multi-row INSERT per batch, inside the batch's transaction.
    history_insert(rows=[*history, *attempt_rows(results)], email_ids=set(existing))
    if watch is not None:
        watch.record()
    return changed
