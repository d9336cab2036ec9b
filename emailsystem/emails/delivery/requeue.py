"""Requeueing failed deliveries: an admin's "send it again"."""

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.delivery.enqueue import outbox_enqueue
from emailsystem.emails.delivery.history import requeues_record
from emailsystem.emails.delivery.lanes import lane_for
from emailsystem.emails.delivery.results import sent_email_status_refresh
from emailsystem.emails.models import Delivery, DeliveryStatus, SentEmail, Suppression


@transaction.atomic
def deliveries_requeue(*, delivery_ids: Iterable[int]) -> int:
    """Put failed deliveries back in the queue and hand them to the sender again.

    Only `failed` deliveries move; others are ignored, and so are recipients the email's
    sender has since suppressed (a send would skip them too). Returns how many were requeued.
    """
    suppressed = Suppression.objects.filter(
        user_id=OuterRef("sent_email__sender_id"), recipient_id=OuterRef("recipient_id")
    )
    failed = (
        Delivery.objects.select_for_update(of=("self",))
        .filter(pk__in=list(delivery_ids), status=DeliveryStatus.FAILED)
        .exclude(Exists(suppressed))
    )
    by_email: dict[int, list[int]] = defaultdict(list)
    for delivery_id, email_id in failed.values_list("pk", "sent_email_id"):
        by_email[email_id].append(delivery_id)
    if not by_email:
        raise ApplicationError(
            "None of the selected recipients has failed, or they are now suppressed; nothing to requeue."
        )
    now = timezone.now()
    requeued = Delivery.objects.filter(pk__in=[pk for pks in by_email.values() for pk in pks]).update(
        status=DeliveryStatus.QUEUED, reason="", attempts=0, updated=now
    )
    requeues_record(by_email=by_email, at=now)
    lane = lane_for(recipients=requeued)
    for email in SentEmail.objects.filter(pk__in=by_email):
        outbox_enqueue(sent_email=email, delivery_ids=by_email[email.pk], lane=lane)
    sent_email_status_refresh(email_ids=by_email)
    return requeued
