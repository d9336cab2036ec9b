"""Reads for templates, the sent-email log and the suppression list."""

from django.db.models import Prefetch, QuerySet

from emailsystem.emails.models import Delivery, DeliveryEvent, EmailTemplate, SentEmail, Suppression
from emailsystem.users.models import User


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
        .prefetch_related(Prefetch("deliveries", queryset=deliveries))
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
    "subject",
    "template",
    "template_name",
    "from_email",
    "reply_to",
    "recipient_count",
    "created",
    "updated",
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
)


def sent_email_log_rows(*, user: User) -> QuerySet[SentEmail]:
    """The user's emails as plain rows, newest first: the list view's query (see sent_email_list)."""
    return SentEmail.objects.filter(sender=user).order_by("-created", "-id").values(*LOG_FIELDS)


def deliveries_by_email(*, email_ids: list[int]) -> dict[int, list[dict]]:
    """The deliveries of these emails as plain rows, grouped by email, in creation order (one query)."""
    grouped: dict[int, list[dict]] = {email_id: [] for email_id in email_ids}
    rows = Delivery.objects.filter(sent_email_id__in=email_ids).order_by("id").values(*LOG_DELIVERY_FIELDS)
    for row in rows:
        grouped[row["sent_email_id"]].append(row)
    return grouped
