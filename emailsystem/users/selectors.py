"""Reads for accounts: a user's API keys."""

from django.db.models import QuerySet

from emailsystem.users.models import ApiKey, User


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    """The user's keys that still work, newest first. Revoked keys stay for the admin, not here."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-created", "-pk")
