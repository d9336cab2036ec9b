"""Applying delivery events: history, recipient statuses, suppressions, email statuses.

The events are SendGrid's (its Event Webhook, in batches) and the recipients' own one-click
unsubscribes (emails/unsubscribe/), one path for both. Built for batches of thousands: a fixed
number of statements plus one per BULK_ROWS rows of each bulk write, whatever the batch size
(tests/test_webhook_bulk.py counts them).
"""

import datetime
import logging
from dataclasses import dataclass
from typing import TypedDict

from django.db import transaction
from django.utils import timezone

from emailsystem.emails.delivery.results import sent_email_status_refresh
from emailsystem.emails.delivery.statuses import status_later
from emailsystem.emails.models import Delivery, DeliveryStatus, Suppression
from emailsystem.emails.sql import delivery_events_insert
from emailsystem.emails.webhooks.parsing import ParsedBatch, ParsedEvent
from emailsystem.outbound.events import delivery_changes_record, subscriptions_for_users

logger = logging.getLogger(__name__)

# Rows per bulk statement: 1,000 rows x 6 columns stays far below PostgreSQL's 65,535 parameters.
BULK_ROWS = 1000
FAILURE_STATUSES = {DeliveryStatus.BOUNCED, DeliveryStatus.DROPPED}


class _DeliveryRow(TypedDict):
    """What _deliveries_locked reads of each delivery."""

    pk: int
    status: str
    reason: str
    delivered_at: datetime.datetime | None
    sent_email_id: int
    recipient_id: int
    sent_email__sender_id: int


@dataclass(frozen=True)
class BatchSummary:
    received: int
    applied: int  # new events recorded
    duplicates: int  # already recorded (SendGrid redelivers)
    unknown: int  # no delivery of ours
    ignored: int  # kinds we do not track, or incomplete events

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ("received", "applied", "duplicates", "unknown", "ignored")}


@dataclass(frozen=True)
class AppliedEvents:
    """What delivery_events_apply did with its events."""

    unique: int  # distinct event ids among them
    known: int  # of those, about a delivery of ours
    new: list[ParsedEvent]  # of those, recorded now (the others were recorded before)


@transaction.atomic
def delivery_events_apply(*, events: list[ParsedEvent]) -> AppliedEvents:
    """Record events once each and move statuses forward (never backwards); suppress the
    address for the email's sender where an event says to.

    Deliveries are locked (in id order, so concurrent batches cannot deadlock) while their
    new status is computed from the current one: two batches about one recipient cannot
    overwrite each other with an older status. `AppliedEvents.new` holds each event the
    first time it is applied, never again; each is also an outbound webhook message for the
    sender's endpoints that take its type, written in this transaction (outbound/events.py).
    """
    unique = list({event.sg_event_id: event for event in reversed(events)}.values())
    deliveries = _deliveries_locked({event.delivery_id for event in unique})
    known = [event for event in unique if _belongs(event, deliveries)]
    new_ids = _events_insert(known)
    new = [event for event in known if event.sg_event_id in new_ids]
    changed = _deliveries_advance(new, deliveries)
    _suppressions_add(new, deliveries)
    _webhook_messages_record(new, deliveries)
    sent_email_status_refresh(email_ids=(deliveries[delivery_id]["sent_email_id"] for delivery_id in changed))
    return AppliedEvents(unique=len(unique), known=len(known), new=new)


def sendgrid_events_apply(*, batch: ParsedBatch) -> BatchSummary:
    """Apply a parsed Event Webhook batch (delivery_events_apply) and count what came of it."""
    applied = delivery_events_apply(events=batch.events)
    return BatchSummary(
        received=batch.received,
        applied=len(applied.new),
        duplicates=len(batch.events) - len(applied.new) - (applied.unique - applied.known),
        unknown=batch.unknown + applied.unique - applied.known,
        ignored=batch.ignored,
    )


def _deliveries_locked(ids: set[int]) -> dict[int, _DeliveryRow]:
    if not ids:
        return {}
    rows = (
        Delivery.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .values("pk", "status", "reason", "delivered_at", "sent_email_id", "recipient_id", "sent_email__sender_id")
    )
    return {row["pk"]: row for row in rows}


def _belongs(event: ParsedEvent, deliveries: dict[int, _DeliveryRow]) -> bool:
    """The delivery exists and, when the event names an email, is that email's."""
    row = deliveries.get(event.delivery_id)
    return row is not None and event.email_id in (None, row["sent_email_id"])


def _events_insert(events: list[ParsedEvent]) -> set[str]:
    """Insert the events' history rows, BULK_ROWS per statement, skipping ids already stored; the ids inserted."""
    inserted: set[str] = set()
    now = timezone.now()
    for start in range(0, len(events), BULK_ROWS):
        inserted |= delivery_events_insert(events=events[start : start + BULK_ROWS], received_at=now)
    return inserted


def _deliveries_advance(events: list[ParsedEvent], deliveries: dict[int, _DeliveryRow]) -> list[int]:
    """Move each delivery to the highest-ranked status seen; record the first delivery time. Changed ids."""
    updates: dict[int, Delivery] = {}
    for event in sorted(events, key=lambda item: item.occurred_at):
        row = deliveries[event.delivery_id]
        target = updates.get(event.delivery_id) or Delivery(
            pk=event.delivery_id, status=row["status"], reason=row["reason"], delivered_at=row["delivered_at"]
        )
        later = status_later(target.status, event.status)
        if later != target.status:
            target.status = later
            if later in FAILURE_STATUSES:
                target.reason = event.detail
        if event.status == DeliveryStatus.DELIVERED and target.delivered_at is None:
            target.delivered_at = event.occurred_at
        if (target.status, target.reason, target.delivered_at) != (row["status"], row["reason"], row["delivered_at"]):
            updates[event.delivery_id] = target
    now = timezone.now()
    for delivery in updates.values():
        delivery.updated = now
    Delivery.objects.bulk_update(
        list(updates.values()), ["status", "reason", "delivered_at", "updated"], batch_size=BULK_ROWS
    )
    return list(updates)


def _webhook_messages_record(events: list[ParsedEvent], deliveries: dict[int, _DeliveryRow]) -> None:
    """One outbound webhook message per new event, when the email's sender has an endpoint (one query if not)."""
    subscriptions = subscriptions_for_users(deliveries[event.delivery_id]["sent_email__sender_id"] for event in events)
    if subscriptions:
        changes = [(event.delivery_id, event.status, event.detail, event.occurred_at) for event in events]
        delivery_changes_record(changes=changes, subscriptions=subscriptions)


def _suppressions_add(events: list[ParsedEvent], deliveries: dict[int, _DeliveryRow]) -> None:
    """Suppress the address for the email's sender; an existing entry stays as it is."""
    entries: dict[tuple[int, int], Suppression] = {}
    for event in events:
        if event.suppress is None:
            continue
        row = deliveries[event.delivery_id]
        key = (row["sent_email__sender_id"], row["recipient_id"])
        entries.setdefault(
            key,
            Suppression(user_id=key[0], recipient_id=key[1], reason=event.suppress, delivery_id=event.delivery_id),
        )
    suppressions_add(entries=list(entries.values()))


def suppressions_add(*, entries: list[Suppression]) -> None:
    """Insert unsaved suppression entries, BULK_ROWS per statement; an address already on its
    user's list keeps the entry it has (the first reason stands)."""
    if entries:
        Suppression.objects.bulk_create(entries, ignore_conflicts=True, batch_size=BULK_ROWS)
