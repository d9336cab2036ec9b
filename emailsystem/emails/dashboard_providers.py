"""Reads for the admin dashboard's providers section: recipients sent per provider, breaker states.

Breaker states live in the process that sends: the embedded worker's are read here; a
deployment's senders export theirs as `emailsender_breaker_state` (docs/observability.md).
"""

import datetime
from typing import Any

from django.db.models import Count
from django.utils import timezone

from emailsender.providers import ProviderChain
from emailsystem.emails import dashboard
from emailsystem.emails.delivery import embedded


def sent_per_provider(*, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """[{provider, recipients}] sent in the dashboard's domain window (the last day), most first."""
    since = (now or timezone.now()) - dashboard.DOMAIN_WINDOW
    rows = (
        dashboard._deliveries_since(since)
        .filter(sent_at__isnull=False)
        .values("provider")
        .annotate(recipients=Count("pk"))
        .order_by("-recipients", "provider")
    )
    return [{"provider": row["provider"] or "-", "recipients": row["recipients"]} for row in rows]


def breaker_states() -> list[dict[str, str]] | None:
    """[{provider, state}] of this process's embedded worker, in EMAIL_PROVIDERS order; None without one."""
    client = embedded.worker_client()
    if not isinstance(client, ProviderChain):
        return None
    return [{"provider": name, "state": breaker.state.value} for name, _client, breaker in client.providers]
