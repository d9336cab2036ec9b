"""Recording webhook messages in the transaction of the change they report (the outbox).

Three hook points call in: the send (email.queued, email.suppressed), the results process
(email.sent, email.failed, email.deferred) and the delivery events of SendGrid and the
one-click unsubscribe (delivered, bounced, opened...). Each first asks which of the users
concerned have an enabled endpoint: one indexed query (a partial index holds only enabled
endpoints), and when nobody has one, that query is all the hook costs.
"""

import datetime
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from emailsystem.emails.models import Delivery, DeliveryStatus, SentEmail
from emailsystem.outbound.models import EventType, WebhookEndpoint, WebhookMessage
from emailsystem.outbound.publishing import RELAY_GRACE, webhook_messages_publish_on_commit

# The event a recipient's new status is reported as; statuses not here are reported by none.
EVENT_FOR_STATUS: dict[str, EventType] = {
    DeliveryStatus.QUEUED: EventType.QUEUED,
    DeliveryStatus.SENT: EventType.SENT,
    DeliveryStatus.SANDBOXED: EventType.SENT,
    DeliveryStatus.FAILED: EventType.FAILED,
    DeliveryStatus.SUPPRESSED: EventType.SUPPRESSED,
    DeliveryStatus.DEFERRED: EventType.DEFERRED,
    DeliveryStatus.DELIVERED: EventType.DELIVERED,
    DeliveryStatus.OPENED: EventType.OPENED,
    DeliveryStatus.CLICKED: EventType.CLICKED,
    DeliveryStatus.BOUNCED: EventType.BOUNCED,
    DeliveryStatus.DROPPED: EventType.DROPPED,
    DeliveryStatus.UNSUBSCRIBED: EventType.UNSUBSCRIBED,
    DeliveryStatus.SPAM_REPORTED: EventType.SPAM_REPORTED,
}

Subscriptions = dict[int, list[tuple[int, frozenset[str]]]]  # user id -> [(endpoint id, its event types)]


@dataclass(frozen=True)
class Change:
    """One recipient's change, as a webhook event reports it."""

    event_type: str
    email_id: int | None  # None for endpoint.test
    recipient: str
    status: str
    reason: str
    tags: list[str]
    metadata: dict[str, Any]
    occurred_at: datetime.datetime


def subscriptions_for_users(user_ids: Iterable[int]) -> Subscriptions:
    """The enabled endpoints of these users, with the event types each takes: one query."""
    ids = set(user_ids)
    found: Subscriptions = defaultdict(list)
    if not ids:
        return found
    rows = WebhookEndpoint.objects.filter(user_id__in=ids, enabled=True).values_list("user_id", "pk", "events")
    for user_id, endpoint_id, events in rows:
        found[user_id].append((endpoint_id, frozenset(events)))
    return found


def event_body(*, webhook_id: str, change: Change) -> str:
    del webhook_id  # the id travels in the webhook-id header, not the body
    return json.dumps(
        {
            "type": change.event_type,
            "timestamp": change.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": {
                "email_id": change.email_id,
                "recipient": change.recipient,
                "status": change.status,
                "reason": change.reason,
                "tags": change.tags,
                "metadata": change.metadata,
            },
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


def webhook_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


def webhook_messages_record(*, user_changes: Sequence[tuple[int, Change]], subscriptions: Subscriptions) -> int:
    """Insert one message per change per endpoint of its user that takes its type (one INSERT),
    published after the commit. Returns how many."""
    now = timezone.now()
    rows = [
        WebhookMessage(
            endpoint_id=endpoint_id,
            event_type=change.event_type,
            webhook_id=(webhook_id := webhook_id_new()),
            body=event_body(webhook_id=webhook_id, change=change),
            created=now,
            publish_after=now + RELAY_GRACE,
        )
        for user_id, change in user_changes
        for endpoint_id, events in subscriptions.get(user_id, ())
        if change.event_type in events
    ]
    if not rows:
        return 0
    WebhookMessage.objects.bulk_create(rows)
    webhook_messages_publish_on_commit([(row.pk, row.endpoint_id, row.webhook_id) for row in rows])
    return len(rows)


def send_events_record(*, user_id: int, emails: Sequence[tuple[SentEmail, Sequence[tuple[str, str]]]]) -> int:
    """email.queued / email.suppressed for each recipient of just-recorded emails ((email, [(address, status)]))."""
    subscriptions = subscriptions_for_users([user_id])
    if not subscriptions:
        return 0
    now = timezone.now()
    changes = [
        (
            user_id,
            Change(EVENT_FOR_STATUS[status], email.pk, address, status, "", email.tags, email.metadata, now),
        )
        for email, recipients in emails
        for address, status in recipients
        if status in EVENT_FOR_STATUS
    ]
    return webhook_messages_record(user_changes=changes, subscriptions=subscriptions)


def delivery_changes_record(
    *, changes: Sequence[tuple[int, str, str, datetime.datetime]], subscriptions: Subscriptions | None = None
) -> int:
    """Record (delivery id, new status, reason, when) changes: reads the deliveries' user, address,
    tags and metadata in one query, after the subscription check (one query) finds an endpoint."""
    if not changes:
        return 0
    delivery_ids = {delivery_id for delivery_id, *_rest in changes}
    rows = {
        row["pk"]: row
        for row in Delivery.objects.filter(pk__in=delivery_ids).values(
            "pk",
            "sent_email_id",
            "recipient__email",
            "sent_email__sender_id",
            "sent_email__tags",
            "sent_email__metadata",
        )
    }
    if subscriptions is None:
        subscriptions = subscriptions_for_users(row["sent_email__sender_id"] for row in rows.values())
    user_changes = []
    for delivery_id, status, reason, occurred_at in changes:
        row = rows.get(delivery_id)
        if row is None or status not in EVENT_FOR_STATUS:
            continue
        change = Change(
            EVENT_FOR_STATUS[status],
            row["sent_email_id"],
            row["recipient__email"],
            status,
            reason,
            row["sent_email__tags"],
            row["sent_email__metadata"],
            occurred_at,
        )
        user_changes.append((row["sent_email__sender_id"], change))
    return webhook_messages_record(user_changes=user_changes, subscriptions=subscriptions)


class ResultsWatch:
    """Around a batch of the sender's results: which subscribed recipients it changed.

    `results_watch` finds the batch's emails whose sender has an enabled endpoint (one query;
    None when there are none, the usual case, and then nothing else is read). Otherwise their
    deliveries are read and locked (in id order, as SendGrid's events lock them) before the
    batch is applied and read again after, and each difference is recorded: a new status as its
    event, a retry (still queued, one attempt more) as email.deferred.
    """

    def __init__(self, subscriptions: Subscriptions, delivery_ids: set[int]) -> None:
        self.subscriptions = subscriptions
        self.delivery_ids = delivery_ids
        self.before = self._read(lock=True)

    def _read(self, *, lock: bool) -> dict[int, tuple[str, int, str]]:
        rows = Delivery.objects.filter(pk__in=self.delivery_ids).order_by("pk")
        if lock:
            rows = rows.select_for_update(of=("self",))
        return {
            pk: (status, attempts, reason)
            for pk, status, attempts, reason in rows.values_list("pk", "status", "attempts", "reason")
        }

    def record(self) -> int:
        """Record the batch's changes (call after applying it, in its transaction); how many messages."""
        now = timezone.now()
        changes = []
        for pk, (status, attempts, reason) in self._read(lock=False).items():
            old_status, old_attempts, _old_reason = self.before.get(pk, (status, attempts, reason))
            if status != old_status:
                changes.append((pk, status, reason, now))
            elif status == DeliveryStatus.QUEUED and attempts > old_attempts:
                changes.append((pk, DeliveryStatus.DEFERRED, reason, now))
        return delivery_changes_record(changes=changes, subscriptions=self.subscriptions)


def results_watch(*, deliveries_by_email: dict[int, list[int]]) -> ResultsWatch | None:
    """A ResultsWatch over the deliveries of the subscribed emails among these, or None."""
    # No endpoint enabled at all: one lookup on the partial index answers, 1-2 ms for a 500-result
    # batch where the semi-join below takes 9-20 ms (docs/outbound-webhooks.md, "Cost on the results path").
    if not deliveries_by_email or not WebhookEndpoint.objects.filter(enabled=True).exists():
        return None
    subscribed_users = WebhookEndpoint.objects.filter(enabled=True).values("user_id")
    senders = dict(
        SentEmail.objects.filter(pk__in=deliveries_by_email, sender_id__in=subscribed_users).values_list(
            "pk", "sender_id"
        )
    )
    if not senders:
        return None
    subscriptions = subscriptions_for_users(senders.values())
    delivery_ids = {pk for email_id in senders for pk in deliveries_by_email[email_id]}
    return ResultsWatch(subscriptions, delivery_ids)
