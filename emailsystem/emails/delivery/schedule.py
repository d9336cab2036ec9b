"""Scheduled sends (`send_at`): when they are handed on, and canceling them before that.

A scheduled send is an ordinary send whose outbox row is written with `available_at` =
`send_at` and is not dispatched after the commit. Until then neither the relay (broker
mode) nor the embedded worker can claim it: both only take rows whose `available_at` has
passed. So the schedule lives in PostgreSQL, not in a broker TTL, and survives a restart of
every process; once due, the row is handed on like any row the request could not publish.

The email is `scheduled` until the sender's first result about it (the results process then
derives `sent`, `failed`...); its recipients stay `queued`, the status the whole delivery
path already selects on, so nothing between the outbox and SendGrid needs to know about
schedules.

Cancel and claim race on the outbox row. A claim is a conditional UPDATE that moves
`available_at` into the future (outbox.outbox_claim); cancel is a conditional DELETE of the
row while `available_at` still equals the email's `send_at`, that is, while nobody has
claimed it. PostgreSQL re-checks each condition on the row as the other left it, so exactly
one of the two wins: a claimed row makes the cancel a 409, a deleted row leaves the claim
nothing to take.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from emailsystem.core.exceptions import ConflictError
from emailsystem.emails.delivery.history import history_insert
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, HistoryKind, OutboxMessage, SentEmail


def send_at_problem(value: datetime.datetime, *, now: datetime.datetime, max_days: int) -> str | None:
    """Why `value` cannot be a send_at, or None when it can: it needs an offset, and to lie in the
    future by at most `max_days`."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "Give the time with an offset (2026-11-22T09:30:00Z or +01:00)."
    if value <= now:
        return "Must be in the future."
    if value > now + datetime.timedelta(days=max_days):
        return f"At most {max_days} days ahead."
    return None


@transaction.atomic
def sent_email_cancel(*, sent_email: SentEmail) -> SentEmail:
    """Cancel a scheduled send that has not been handed on: its recipients and the email become `canceled`.

    Canceling a canceled email changes nothing. Raises ConflictError (409) when the email is
    not scheduled, or its outbox row has already been claimed (it is on its way to SendGrid).
    """
    email = SentEmail.objects.select_for_update().get(pk=sent_email.pk)
    if email.status == EmailStatus.CANCELED:
        return email
    if email.status != EmailStatus.SCHEDULED or email.send_at is None:
        message = f"Only a scheduled email can be canceled; this one is {email.status}."
        raise ConflictError(message, code="not_scheduled")
    deleted, _ = OutboxMessage.objects.filter(sent_email_id=email.pk, available_at=email.send_at).delete()
    if not deleted:
        raise ConflictError("This email has already been handed on for delivery.", code="already_handed_on")
    now = timezone.now()
    canceled = list(
        Delivery.objects.filter(sent_email_id=email.pk, status=DeliveryStatus.QUEUED).values_list("pk", flat=True)
    )
    Delivery.objects.filter(pk__in=canceled).update(status=DeliveryStatus.CANCELED, updated=now)
    email.status = EmailStatus.CANCELED
    email.save(update_fields=["status", "updated"])
    row = {"sent_email_id": email.pk, "kind": HistoryKind.CANCELED.value, "at": now, "delivery_ids": canceled}
    history_insert(rows=[row], email_ids={email.pk})
    return email
