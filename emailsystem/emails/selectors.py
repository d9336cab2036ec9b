"""Reads for templates, the sent-email log, the suppression list and the admin's search and timeline."""

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from emailsystem.emails.models import (
    Attachment,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    EmailTemplate,
    HistoryKind,
    SentEmail,
    SentEmailHistory,
    Suppression,
)
from emailsystem.users.models import User, normalize_email_address


def email_template_list() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.all()


def sent_email_list(*, user: User, with_events: bool = False) -> QuerySet[SentEmail]:
    """The user's own emails, newest first, with their recipients (and their events). Nobody else's, ever."""
    deliveries = Delivery.objects.select_related("recipient").order_by("id")
    if with_events:
        deliveries = deliveries.prefetch_related(
            Prefetch("events", queryset=DeliveryEvent.objects.order_by("occurred_at", "id"))
        )
    return (
        SentEmail.objects.filter(sender=user)
        .order_by("-created", "-id")
        .prefetch_related(
            Prefetch("deliveries", queryset=deliveries),
            Prefetch("attachments", queryset=Attachment.objects.defer("content").order_by("position")),
        )
    )


def suppression_list(*, user: User) -> QuerySet[Suppression]:
    """The user's suppression list, newest first. Nobody else's, ever."""
    return (
        Suppression.objects.filter(user=user)
        .select_related("recipient", "delivery")
        .only("id", "reason", "created", "recipient__email", "delivery__sent_email_id")
        .order_by("-created", "-id")
    )


# The log's list shows these columns of each email (the detail view shows the bodies too).
LOG_FIELDS = (
    "id",
    "status",
    "send_at",
    "subject",
    "template",
    "template_name",
    "from_email",
    "reply_to",
    "recipient_count",
    "created",
    "updated",
    "tags",
    "metadata",
    "sandbox",
    "unsubscribe",
)
LOG_DELIVERY_FIELDS = (
    "sent_email_id",
    "recipient__email",
    "status",
    "attempts",
    "reason",
    "sent_at",
    "delivered_at",
    "updated",
    "provider",
)


def sent_email_log_rows(*, user: User) -> QuerySet[SentEmail, dict[str, Any]]:
    """The user's emails as plain rows, newest first: the list view's query (see sent_email_list)."""
    rows: QuerySet[SentEmail, dict[str, Any]] = (
        SentEmail.objects.filter(sender=user).order_by("-created", "-id").values(*LOG_FIELDS)
    )
    return rows


def deliveries_by_email(*, email_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The deliveries of these emails as plain rows, grouped by email, in creation order (one query)."""
    grouped: dict[int, list[dict[str, Any]]] = {email_id: [] for email_id in email_ids}
    rows = Delivery.objects.filter(sent_email_id__in=email_ids).order_by("id").values(*LOG_DELIVERY_FIELDS)
    for row in rows:
        grouped[row["sent_email_id"]].append(row)
    return grouped


# A whole address (as stored: Recipient.email is lowercased): searched by equality, which the
# unique index on Recipient.email answers. Anything else is a part, searched with ILIKE.
WHOLE_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def search_words(term: str) -> list[str]:
    """The words of an admin search, split as Django's admin does ("quoted phrases" stay whole)."""
    words = []
    for word in smart_split(term):
        if word[:1] in "\"'" and word[-1:] == word[:1] and len(word) > 1:
            word = unescape_string_literal(word)
        if word.strip():
            words.append(word.strip())
    return words


def sent_email_search(*, queryset: QuerySet[SentEmail], term: str) -> QuerySet[SentEmail]:
    """The emails of `queryset` that match every word of `term`, each listed once.

    A whole address matches the emails sent to it: the recipient by its unique index, then
    its deliveries by the (recipient, email) index. Any other word matches part of a
    recipient's address, the subject or the sender's address; a number also matches the id.
    Recipients are matched in a subquery of email ids, never a join, so no email appears twice
    and no DISTINCT over the whole row is needed.
    """
    for word in search_words(term):
        if WHOLE_ADDRESS.fullmatch(word):
            to_address = Delivery.objects.filter(recipient__email=normalize_email_address(word))
            queryset = queryset.filter(pk__in=to_address.values("sent_email_id"))
            continue
        to_part = Delivery.objects.filter(recipient__email__icontains=word)
        matches = (
            Q(pk__in=to_part.values("sent_email_id")) | Q(subject__icontains=word) | Q(sender__email__icontains=word)
        )
        if word.isdigit() and len(word) < 19:  # fits a bigint
            matches |= Q(pk=int(word))
        queryset = queryset.filter(matches)
    return queryset


def delivery_search(*, queryset: QuerySet[Delivery], term: str) -> QuerySet[Delivery]:
    """The deliveries of `queryset` to a whole address (by index) or to addresses containing each word."""
    for word in search_words(term):
        if WHOLE_ADDRESS.fullmatch(word):
            queryset = queryset.filter(recipient__email=normalize_email_address(word))
        else:
            queryset = queryset.filter(recipient__email__icontains=word)
    return queryset


def deliveries_failed(*, email_ids: QuerySet[SentEmail] | list[int]) -> QuerySet[Delivery]:
    """The failed deliveries of these emails (the ones an admin can requeue)."""
    return Delivery.objects.filter(sent_email__in=email_ids, status=DeliveryStatus.FAILED)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime.datetime
    kind: str  # "accepted", "event", or a HistoryKind value
    title: str
    recipients: str = ""  # whom it concerned, when not the whole email
    detail: str = ""


# An email to thousands of recipients has thousands of SendGrid events; the page shows the
# first ones and points to the deliveries' own pages for the rest.
TIMELINE_EVENTS_MAX = 300
# Addresses named in one entry before "and N more".
RECIPIENTS_NAMED = 5
# Entries at the same instant: in the order they can happen.
_KIND_ORDER = {"accepted": 0, HistoryKind.REQUEUED: 1, HistoryKind.PUBLISHED: 2, HistoryKind.TAKEN: 2}
_OUTCOME_TITLES = {"sent": "sent", "retrying": "retry", "failed": "failed"}


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    events_left_out: int  # SendGrid events past TIMELINE_EVENTS_MAX


def sent_email_timeline(*, sent_email: SentEmail) -> Timeline:
    """What happened to one email, oldest first: accepted, published (or taken by the in-process
    worker), each attempt and its outcome, requeues, and SendGrid's events. Four queries."""
    addresses = dict(
        Delivery.objects.filter(sent_email=sent_email).order_by("pk").values_list("pk", "recipient__email")
    )
    entries = [
        TimelineEntry(
            at=sent_email.created,
            kind="accepted",
            title="Accepted",
            detail=f"{sent_email.recipient_count} recipient(s), sent by {sent_email.sender.email}",
        )
    ]
    for row in SentEmailHistory.objects.filter(sent_email=sent_email).order_by("at", "pk"):
        entries.append(_history_entry(row, addresses))
    events = list(
        DeliveryEvent.objects.filter(delivery__sent_email=sent_email)
        .order_by("occurred_at", "pk")
        .values_list("occurred_at", "event", "detail", "delivery_id")[: TIMELINE_EVENTS_MAX + 1]
    )
    left_out = 0
    if len(events) > TIMELINE_EVENTS_MAX:
        events = events[:TIMELINE_EVENTS_MAX]
        left_out = DeliveryEvent.objects.filter(delivery__sent_email=sent_email).count() - TIMELINE_EVENTS_MAX
    for occurred_at, event, detail, delivery_id in events:
        entries.append(
            TimelineEntry(
                at=occurred_at,
                kind="event",
                title=f"SendGrid: {event}",
                recipients=addresses.get(delivery_id, ""),
                detail=detail,
            )
        )
    entries.sort(key=_timeline_order)
    return Timeline(entries=entries, events_left_out=left_out)


def _timeline_order(entry: TimelineEntry) -> tuple[datetime.datetime, bool, datetime.datetime, int]:
    """Time order. SendGrid stamps its events in whole seconds, ours to the microsecond: within
    one second, an event follows our steps (SendGrid only reports what it was handed)."""
    return (entry.at.replace(microsecond=0), entry.kind == "event", entry.at, _KIND_ORDER.get(entry.kind, 3))


def _history_entry(row: SentEmailHistory, addresses: dict[int, str]) -> TimelineEntry:
    recipients = _recipients_named(row.delivery_ids, addresses)
    if row.kind == HistoryKind.ATTEMPT:
        outcome = _OUTCOME_TITLES.get(row.outcome, row.outcome)
        status = f"HTTP {row.status_code}" if row.status_code else ""
        detail = ": ".join(part for part in (status, row.reason) if part)
        return TimelineEntry(row.at, row.kind, f"Attempt {row.attempt}: {outcome}", recipients, detail)
    return TimelineEntry(row.at, row.kind, HistoryKind(row.kind).label, recipients)


def _recipients_named(delivery_ids: list[int] | None, addresses: dict[int, str]) -> str:
    if delivery_ids is None:
        return "every queued recipient"
    named = [addresses.get(delivery_id, f"delivery #{delivery_id}") for delivery_id in sorted(delivery_ids)]
    if len(named) > RECIPIENTS_NAMED:
        return f"{', '.join(named[:RECIPIENTS_NAMED])} and {len(named) - RECIPIENTS_NAMED} more"
    return ", ".join(named)
