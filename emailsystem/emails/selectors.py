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
