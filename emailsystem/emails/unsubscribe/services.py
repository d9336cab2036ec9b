"""What a one-click unsubscribe writes: the same records as SendGrid's own `unsubscribe` event."""

import logging

from django.db import transaction
from django.utils import timezone

from emailsystem.emails.models import DeliveryStatus, Recipient, Suppression, SuppressionReason
from emailsystem.emails.unsubscribe.links import UnsubscribeLink
from emailsystem.emails.webhooks.parsing import ParsedEvent
from emailsystem.emails.webhooks.services import delivery_events_apply, suppressions_add
from emailsystem.users.models import User

logger = logging.getLogger(__name__)

# The delivery event's name and detail: SendGrid's name for an unsubscribe, and where it came from.
EVENT = "unsubscribe"
DETAIL = "one-click unsubscribe (List-Unsubscribe-Post, RFC 8058)"


def one_click_event_id(delivery_id: int) -> str:
    """The event's id (DeliveryEvent.sg_event_id): one per delivery, so a repeated POST records nothing
    new. SendGrid's ids are base64 text, which has no colon, so none can be mistaken for one of these."""
    return f"one-click:{delivery_id}"


@transaction.atomic
def recipient_unsubscribe(*, link: UnsubscribeLink) -> None:
    """Take the link's recipient off its user's sends; a repeat changes nothing.

    Recorded as SendGrid's `unsubscribe` event is (webhooks.services.delivery_events_apply): a
    delivery event in the recipient's history, the recipient's status `unsubscribed`, and the
    address on the user's suppression list with reason `unsubscribe`. When the email was deleted
    since, the suppression is still added, from the ids the link names; when the user or the
    address is gone too, there is nothing left to unsubscribe from.
    """
    event = ParsedEvent(
        sg_event_id=one_click_event_id(link.delivery_id),
        event=EVENT,
        status=DeliveryStatus.UNSUBSCRIBED,
        delivery_id=link.delivery_id,
        email_id=None,
        occurred_at=timezone.now(),
        detail=DETAIL,
        suppress=SuppressionReason.UNSUBSCRIBE,
    )
    applied = delivery_events_apply(events=[event])
    if not applied.known and _exist(link):
        entry = Suppression(user_id=link.user_id, recipient_id=link.recipient_id, reason=SuppressionReason.UNSUBSCRIBE)
        suppressions_add(entries=[entry])
    logger.info(
        "one-click unsubscribe",
        extra={"user_id": link.user_id, "delivery_id": link.delivery_id, "first": bool(applied.new)},
    )


def _exist(link: UnsubscribeLink) -> bool:
    return User.objects.filter(pk=link.user_id).exists() and Recipient.objects.filter(pk=link.recipient_id).exists()
