"""Reads for webhooks/endpoints/: a user's endpoints and their delivery attempts."""

from django.db.models import QuerySet

from emailsystem.outbound.models import WebhookAttempt, WebhookEndpoint
from emailsystem.users.models import User


def endpoint_list(*, user: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(user=user).order_by("-created", "-id")


def attempt_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookAttempt]:
    """The endpoint's attempts, newest first (an index serves the order)."""
    return WebhookAttempt.objects.filter(endpoint=endpoint).select_related("message").order_by("-created", "-id")
