"""The transactional outbox's rows: inserted with the send (enqueue.py), claimed, deleted once
published, and relayed when the request could not publish them.

Broker mode: after the commit the request hands the message to this process's dispatcher
thread (dispatcher.py), which publishes it with confirms and deletes its outbox row. A row is
created `RELAY_GRACE` in the future, so the relay only ever sees rows whose publish failed or
whose process died: it publishes those once the broker is back. Duplicates are possible only
when a process dies between the broker's confirm and the row's delete (docs/delivery/crash-windows.md).

Embedded mode: the row is available at once and the in-process worker claims it.
"""

import datetime
import logging
import time

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from emailsender.logs import current_request_id, request_id_bound
from emailsender.messages import WorkMessage
from emailsystem.core.metrics import QUEUE_PUBLISH_FAILURES
from emailsystem.core.plain_sql import instance_insert
from emailsystem.emails.delivery.broker import PublishError, WorkPublish, publisher
from emailsystem.emails.delivery.work import (
    encode,
    message_id_for,
    work_message_for_outbox,
    work_messages_for_outbox,
)
from emailsystem.emails.models import Lane, OutboxMessage, SentEmail
from emailsystem.emails.sql import outbox_published_delete

logger = logging.getLogger(__name__)

# Longer than any immediate publish can take (connect timeout 2 s, twice), so the relay and
# the request never publish the same row.
RELAY_GRACE = datetime.timedelta(seconds=15)
# After a publish whose confirms went unanswered (PublishError.uncertain) the copy may be in the
# queue: the relay waits this long, so that copy is sent and its result recorded first and the
# relay finds nothing left to send. It covers a broker restart (about 15 s here) plus a sender's
# longest reconnect wait (30 s).
UNCERTAIN_RELAY_GRACE = datetime.timedelta(seconds=60)
# A claimed row comes back after this if its claimer died before finishing.
CLAIM_LEASE = datetime.timedelta(seconds=60)
# Rows the relay claims per pass: publishing this many takes well under CLAIM_LEASE, and a
# crash before the pass's DELETE re-publishes at most this many.
RELAY_BATCH = 100


class RelayInterrupted(DatabaseError):
    """The database failed in outbox_relay after its claim: `unpublished` rows wait for
    outbox_release, `published` ones for outbox_delete (without either, for CLAIM_LEASE)."""

    def __init__(self, *, unpublished: list[int], published: list[int]) -> None:
        super().__init__(f"relay pass interrupted: {len(unpublished)} unpublished, {len(published)} published")
        self.unpublished = unpublished
        self.published = published


def broker_mode() -> bool:
    return bool(settings.RABBITMQ_URL)


def outbox_insert(
    *,
    sent_email: SentEmail,
    delivery_ids: list[int] | None,
    published_by_request: bool,
    available_at: datetime.datetime | None = None,
    lane: Lane = Lane.NORMAL,
) -> OutboxMessage:
    """The outbox row for these deliveries (None: every queued delivery of the email).

    A row the request publishes itself becomes available to the relay only after RELAY_GRACE;
    a scheduled one at `available_at` (its send_at); any other row at once.
    """
    now = timezone.now()
    if available_at is None:
        available_at = now + RELAY_GRACE if published_by_request else now
    return instance_insert(
        OutboxMessage(
            sent_email=sent_email,
            delivery_ids=delivery_ids,
            created=now,
            available_at=available_at,
            # Stored with the row, so the relay and the embedded worker, which handle it after
            # this request, still log and carry it.
            request_id=current_request_id.get(),
            lane=lane,
        )
    )


def outbox_claim(*, outbox_id: int, lease: datetime.timedelta = CLAIM_LEASE) -> bool:
    """Take a row for processing, if it is available now. Atomic on any database: one conditional UPDATE."""
    now = timezone.now()
    return bool(OutboxMessage.objects.filter(pk=outbox_id, available_at__lte=now).update(available_at=now + lease))


def outbox_available(*, limit: int) -> list[int]:
    return list(
        OutboxMessage.objects.filter(available_at__lte=timezone.now())
        .order_by("available_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_hand_back(*, interrupted: RelayInterrupted, claimed_at: float) -> None:
    """After an interrupted relay pass (claimed at time.monotonic() `claimed_at`): delete the rows
    it published, and make those it did not available again at once, while its claim holds (past
    CLAIM_LEASE another claimer may have taken them)."""
    if interrupted.published:
        outbox_delete(outbox_ids=interrupted.published)
    released = 0
    if interrupted.unpublished and time.monotonic() - claimed_at < CLAIM_LEASE.total_seconds():
        released = OutboxMessage.objects.filter(pk__in=interrupted.unpublished).update(available_at=timezone.now())
    logger.info(
        "relay: after a database error, deleted %d published rows and released %d claimed ones",
        len(interrupted.published),
        released,
    )


def outbox_delete(*, outbox_ids: list[int]) -> None:
    """Delete published rows, recording each as `published` in its email's history (one statement
    on PostgreSQL: sql.outbox_published_delete)."""
    outbox_published_delete(outbox_ids=outbox_ids)


def outbox_publish_failed(*, outbox_ids: list[int], error: PublishError | str) -> None:
    """Record a failed publish on the rows and hand them to the relay: after RELAY_GRACE, or
    UNCERTAIN_RELAY_GRACE when the broker may have stored them anyway."""
    grace = UNCERTAIN_RELAY_GRACE if isinstance(error, PublishError) and error.uncertain else RELAY_GRACE
    OutboxMessage.objects.filter(pk__in=outbox_ids).update(
        attempts=F("attempts") + 1, last_error=str(error)[:1000], available_at=timezone.now() + grace
    )


def relay_one(outbox_id: int, *, claim: bool) -> bool:
    """Publish one outbox row; False when the broker refused it (the row stays, delayed)."""
    if claim and not outbox_claim(outbox_id=outbox_id):
        return True  # someone else has it, or it is already gone
    outbox = OutboxMessage.objects.select_related("sent_email").filter(pk=outbox_id).first()
    if outbox is None:
        return True
    with request_id_bound(outbox.request_id):
        return _publish_row(outbox)


def _publish_row(outbox: OutboxMessage) -> bool:
    """Publish a claimed row with the request id it was written with, then delete it."""
    message = work_message_for_outbox(outbox)
    if message.deliveries:
        if not _publish(outbox, message):
            return False
        outbox_delete(outbox_ids=[outbox.pk])
        return True
    outbox.delete()  # nothing left to send (every delivery moved on): not a publish
    return True


def outbox_claim_batch(*, limit: int, lease: datetime.timedelta = CLAIM_LEASE) -> list[int]:
    """Take up to `limit` available rows, oldest first, in one transaction: SELECT ... FOR UPDATE
    SKIP LOCKED, then one UPDATE moving their `available_at` to the end of the lease.

    Rows another transaction holds (a cancel deleting one, another claimer) are skipped rather
    than waited for; a cancel that comes after the claim finds `available_at` moved and refuses
    (schedule.py). SQLite ignores the row lock: there one relay process at a time is assumed.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(available_at__lte=now)
            .order_by("available_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            OutboxMessage.objects.filter(pk__in=ids).update(available_at=now + lease)
    return ids


def outbox_relay(*, limit: int = RELAY_BATCH) -> int:
    """Publish up to `limit` available rows: those whose immediate publish did not happen, and
    scheduled sends come due. Returns how many were published.

    One claim, one read of the rows and one of their deliveries, one confirmed batch for every
    message (publisher.publish_many: one wait for the broker's confirms), and one DELETE for what
    it stored: a thousand scheduled sends due at one second take ten passes, not a thousand
    (docs/sending/scheduled.md). When the broker fails the whole batch waits RELAY_GRACE,
    as one failed row did. A crash after the confirms and before the DELETE re-publishes the
    batch once its claim lapses (docs/delivery/crash-windows.md).
    """
    claimed = outbox_claim_batch(limit=limit)
    if not claimed:
        return 0
    published: list[int] = []
    try:
        return _relay_claimed(claimed, published)
    except DatabaseError as error:
        # The database went away mid-pass (a failover, a restart): the caller hands these back
        # when it is reachable again instead of leaving them claimed for CLAIM_LEASE.
        unpublished = [pk for pk in claimed if pk not in set(published)]
        raise RelayInterrupted(unpublished=unpublished, published=published) from error


def _relay_claimed(claimed: list[int], published: list[int]) -> int:
    """outbox_relay's work on its claimed rows; appends to `published` as soon as the broker has them."""
    rows = list(OutboxMessage.objects.select_related("sent_email").filter(pk__in=claimed).order_by("pk"))
    messages = work_messages_for_outbox(rows)
    # Nothing left to send (every delivery moved on): not a publish.
    empty = [row.pk for row in rows if not messages[row.pk].deliveries]
    if empty:
        OutboxMessage.objects.filter(pk__in=empty).delete()
    due = {message_id_for(row.pk, row.sent_email_id): row for row in rows if messages[row.pk].deliveries}
    if not due:
        return 0
    batch = [
        WorkPublish(encode(messages[row.pk]), message_id, row.request_id, row.lane) for message_id, row in due.items()
    ]
    error: PublishError | str
    try:
        unroutable = set(publisher().publish_many(batch))
        error = "the broker could not route it to the work queue"
    except PublishError as failure:
        unroutable, error = set(due), failure
    published += [row.pk for message_id, row in due.items() if message_id not in unroutable]
    if published:
        outbox_delete(outbox_ids=published)
    for message_id, row in due.items():
        fields = {"message_id": message_id, "email_id": row.sent_email_id}
        with request_id_bound(row.request_id):
            if message_id in unroutable:
                logger.warning("relay could not publish %s: %s", message_id, error, extra=fields)
            else:
                logger.info("relayed %s (%d recipients)", message_id, len(messages[row.pk].deliveries), extra=fields)
    if unroutable:
        QUEUE_PUBLISH_FAILURES.labels("relay").inc(len(unroutable))
        outbox_publish_failed(outbox_ids=[due[message_id].pk for message_id in unroutable], error=error)
    return len(published)


def _publish(outbox: OutboxMessage, message: WorkMessage) -> bool:
    """Publish one claimed row's message; on a broker failure record it on the row, delayed by RELAY_GRACE."""
    message_id = message_id_for(outbox.pk, outbox.sent_email_id)
    fields = {"message_id": message_id, "email_id": outbox.sent_email_id}
    try:
        publisher().publish(encode(message), message_id=message_id, request_id=outbox.request_id, lane=outbox.lane)
    except PublishError as error:
        QUEUE_PUBLISH_FAILURES.labels("relay").inc()
        outbox_publish_failed(outbox_ids=[outbox.pk], error=error)
        logger.warning("relay could not publish %s: %s", message_id, error, extra=fields)
        return False
    logger.info("relayed %s (%d recipients)", message_id, len(message.deliveries), extra=fields)
    return True
