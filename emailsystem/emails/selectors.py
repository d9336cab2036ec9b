"""Reads for templates and the sent-email log."""

from django.db.models import Prefetch, QuerySet

from emailsystem.emails.models import Delivery, EmailTemplate, SentEmail
from emailsystem.users.models import User


def email_template_list() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.all()


def sent_email_list(*, user: User) -> QuerySet[SentEmail]:
    """The user's own emails, newest first, with their recipients. Nobody else's, ever."""
    deliveries = Delivery.objects.select_related("recipient").order_by("id")
    return (
        SentEmail.objects.filter(sender=user)
        .order_by("-created", "-id")
        .prefetch_related(Prefetch("deliveries", queryset=deliveries))
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
LOG_DELIVERY_FIELDS = ("sent_email_id", "recipient__email", "status", "attempts", "reason", "sent_at", "updated")


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
