"""Reads for the admin dashboard: sends per hour, outcomes per day, recipient domains, queue depths.

Every query aggregates in SQL over a bounded window and reaches the rows through existing
indexes, so the page stays fast with millions of sent emails:

- SentEmail has no index on `created` alone, but `sentemail_sender_created` is
  (sender, -created, -id). Asking for `sender_id IN (every user)` with `created >= since`
  lets PostgreSQL descend that index once per user and read only the window's rows, instead
  of scanning the whole table. Users are few next to emails; the plan is in
  docs/observability.md ("Admin dashboard").
- Deliveries are reached from those emails through the index on their `sent_email`
  foreign key.

Outcomes are grouped by the existing `status` field, so statuses added later (delivered,
bounced, suppressed...) appear as new series without a change here.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncHour
from django.utils import timezone

from emailsender import topology
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.statuses import DELIVERY_FAILED
from emailsystem.emails.models import Delivery, DeliveryStatus, SentEmail

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' name for a model with annotations

WINDOW = datetime.timedelta(days=7)
# Domains: the last day only. Enough sends to rank them, and a bounded join on a busy service.
DOMAIN_WINDOW = datetime.timedelta(days=1)
DOMAIN_ROWS = 10
# A domain needs this many deliveries in the window before its failure rate or latency ranks.
DOMAIN_MIN_DELIVERIES = 5


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int | None
    consumers: int | None
    error: str = ""


def _emails_since(since: datetime.datetime) -> QuerySet[SentEmail]:
    """Emails created since `since`, filtered so that the (sender, -created, -id) index serves the window."""
    senders = get_user_model().objects.values("pk")
    return SentEmail.objects.filter(sender_id__in=senders, created__gte=since)


def _deliveries_since(since: datetime.datetime) -> QuerySet[Delivery]:
    """Deliveries of the emails created since `since`: their ids from the index above, then the sent_email index."""
    return Delivery.objects.filter(sent_email_id__in=_emails_since(since).values("pk"))


def sends_per_hour(*, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """[{hour, emails, recipients}] for every hour of the last 7 days, zeros included, oldest first."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - WINDOW + datetime.timedelta(hours=1)
    rows = (
        _emails_since(start)
        .annotate(hour=TruncHour("created"))
        .values("hour")
        .annotate(emails=Count("pk"), recipients=Sum("recipient_count"))
        .order_by()
    )
    by_hour: dict[datetime.datetime, Mapping[str, Any]] = {row["hour"]: row for row in rows}
    hours = [start + datetime.timedelta(hours=n) for n in range(int(WINDOW / datetime.timedelta(hours=1)))]
    return [
        {
            "hour": hour,
            "emails": by_hour.get(hour, {}).get("emails", 0),
            "recipients": by_hour.get(hour, {}).get("recipients") or 0,
        }
        for hour in hours
    ]


def outcomes_per_day(*, now: datetime.datetime | None = None) -> tuple[list[datetime.datetime], dict[str, list[int]]]:
    """Days of the last week (oldest first) and, per delivery status, the recipients in it each day.

    A delivery counts on the day its email was sent, with the status it has now. One query
    per day: for a day's emails PostgreSQL probes the deliveries' sent_email index,
    while for a whole week's it estimates a scan of every delivery to be cheaper, and is
    wrong by 4x with a million emails (docs/observability.md, "Admin dashboard").
    """
    now = now or timezone.now()
    first_day = (now - WINDOW + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first_day + datetime.timedelta(days=n) for n in range(WINDOW.days)]
    series: dict[str, list[int]] = {}
    for position, day in enumerate(days):
        emails = _emails_since(day).filter(created__lt=day + datetime.timedelta(days=1))
        rows = (
            Delivery.objects.filter(sent_email_id__in=emails.values("pk"))
            .values("status")
            .annotate(count=Count("pk"))
            .order_by()
        )
        for row in rows:
            series.setdefault(row["status"], [0] * len(days))[position] = row["count"]
    return days, dict(sorted(series.items(), key=lambda item: _status_order(item[0])))


def _status_order(status: str) -> tuple[int, str]:
    known = list(DeliveryStatus.values)
    return (known.index(status), status) if status in known else (len(known), status)


class _DomainTotal(TypedDict):
    domain: str
    total: int


def _domain_rows(since: datetime.datetime) -> "QuerySet[WithAnnotations[Delivery, _DomainTotal], _DomainTotal]":
    address = Lower("recipient__email")
    return (
        _deliveries_since(since)
        .annotate(domain=Substr(address, StrIndex(address, Value("@")) + 1))
        .values("domain")
        .annotate(total=Count("pk"))
        .filter(total__gte=DOMAIN_MIN_DELIVERIES)
        .order_by()
    )


def domains_most_failing(*, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """The recipient domains with the most failed deliveries in the last day: [{domain, total, failed, rate}].

    Failed means refused by SendGrid (`failed`) or, as its events report later, by the
    receiving server (`bounced`) or by SendGrid's own lists (`dropped`): statuses.DELIVERY_FAILED.
    """
    since = (now or timezone.now()) - DOMAIN_WINDOW
    rows = (
        _domain_rows(since)
        .annotate(failed=Count("pk", filter=Q(status__in=DELIVERY_FAILED)))
        .filter(failed__gt=0)
        .order_by("-failed", "domain")[:DOMAIN_ROWS]
    )
    return [{**row, "rate": row["failed"] / row["total"]} for row in rows]


def domains_slowest(*, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """The recipient domains whose deliveries took longest from acceptance to SendGrid's 2xx, last day.

    [{domain, total, seconds}], where `seconds` is the mean of sent_at - created.
    """
    since = (now or timezone.now()) - DOMAIN_WINDOW
    took = ExpressionWrapper(F("sent_at") - F("created"), output_field=DurationField())
    rows = (
        _domain_rows(since)
        .filter(sent_at__isnull=False)
        .annotate(latency=Avg(took))
        .order_by("-latency", "domain")[:DOMAIN_ROWS]
    )
    return [{**row, "seconds": row["latency"].total_seconds() if row["latency"] else 0.0} for row in rows]


def queue_depths() -> list[QueueDepth] | None:
    """Messages and consumers of every queue, read from RabbitMQ now; None in embedded mode (no broker).

    One short-lived connection with passive declares: a passive declare never creates or
    changes a queue, and a missing queue is reported as such instead of failing the page.
    """
    from emailsystem.emails.delivery.broker import queue_depths_read

    config = sender_settings()
    if not config.rabbitmq_url:
        return None
    names = topology.all_queues(config.queue_prefix, config.retry_delays_ms)
    return [QueueDepth(*row) for row in queue_depths_read(config.rabbitmq_url, names)]
