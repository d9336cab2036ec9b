"""The `scheduled` scenario: a burst of scheduled sends all due at one second.

Measures `scheduled_lateness_p99_s`, from `send_at` to the fake SendGrid receiving the email,
with the stack's relay, sender and events as deployed.
"""

import datetime
import statistics
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from bench import loads
from emailsystem.emails.models import OutboxMessage, SentEmail
from emailsystem.emails.services import sent_email_create

BURST = 1000
# Time for every send of the burst to be at the fake before the run is declared stuck.
ARRIVAL_SECONDS = 180
# From the moment the burst is recorded to its send_at: the relay's poll is 1 s.
LEAD_SECONDS = 3


def scheduled(bench, context: dict[str, Any]) -> None:
    """BURST one-recipient sends scheduled for the same second; lateness from send_at to the fake's 202."""

    def once() -> None:
        count = BURST // 5 if bench.quick else BURST
        # Recorded with the service and far ahead, then moved to one due second together: how
        # fast they can be recorded is api_send's figure, not this one's.
        far = timezone.now() + datetime.timedelta(days=1)
        ids = [
            sent_email_create(
                user=context["user"], recipients=[f"s{n}@example.com"], subject="Reminder", body="b", send_at=far
            ).email_id
            for n in range(count)
        ]
        before = loads.get_json(f"{context['fake']}/_fake/requests?summary=1")["total"]
        send_at = timezone.now() + datetime.timedelta(seconds=LEAD_SECONDS)
        with transaction.atomic():
            SentEmail.objects.filter(pk__in=ids).update(send_at=send_at)
            OutboxMessage.objects.filter(sent_email_id__in=ids).update(available_at=send_at)
        arrivals = _arrivals(context, before=before, ids=set(ids))
        lateness = sorted(arrivals[email_id] - send_at.timestamp() for email_id in arrivals)
        if len(lateness) < count:
            bench.notes.append(f"scheduled: {count - len(lateness)} of {count} sends did not reach the fake")
        early = sum(1 for value in lateness if value < 0)
        if early:
            bench.notes.append(f"scheduled: {early} sends reached the fake before their send_at")
        bench.record("scheduled_lateness_p99_s", lateness[min(len(lateness) - 1, round(0.99 * (len(lateness) - 1)))])
        bench.record("scheduled_lateness_p50_s", statistics.median(lateness))

    bench.repeat("scheduled", once)


def _arrivals(context: dict[str, Any], *, before: int, ids: set[int]) -> dict[int, float]:
    """When the fake first accepted each of `ids`, waiting until all have arrived (or the deadline)."""
    arrivals: dict[int, float] = {}
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while len(arrivals) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
        for record in loads.get_json(f"{context['fake']}/_fake/requests?since={before}")["requests"]:
            if record["status"] != 202:
                continue
            for email_id in record["email_ids"]:
                if email_id in ids:
                    arrivals.setdefault(email_id, record["at"])
    return arrivals
