"""The transactional outbox: enqueue with the send, dispatch after commit, relay what is left.

Broker mode: after the commit the request hands the message to this process's dispatcher
thread (dispatcher.py), which publishes it with confirms and deletes its outbox row. A row is
created `RELAY_GRACE` in the future, so the relay only ever sees rows whose publish failed or
whose process died: it publishes those once the broker is back. Duplicates are possible only
when a process dies between the broker's confirm and the row's delete (README, "What a crash
can duplicate").

Embedded mode: the row is available at once and the in-process worker claims it.
"""

import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from emailsender.logs import current_request_id, request_id_bound
from emailsystem.core.metrics import QUEUE_PUBLISH_FAILURES
from emailsystem.core.plain_sql import instance_insert
from emailsystem.emails.delivery.broker import PublishError, publisher
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_build, work_message_for_outbox
from emailsystem.emails.models import HistoryKind, OutboxMessage, SentEmail, SentEmailHistory

logger = logging.getLogger(__name__)

# Longer than any immediate publish can take (connect timeout 2 s, twice), so the relay and
# the request never publish the same row.
RELAY_GRACE = datetime.timedelta(seconds=15)
# A claimed row comes back after this if its claimer died before finishing.
CLAIM_LEASE = datetime.timedelta(seconds=60)


def broker_mode() -> bool:
    return bool(settings.RABBITMQ_URL)


def outbox_enqueue(
    *, sent_email: SentEmail, delivery_ids: list[int] | None = None, deliveries: list[tuple[int, str]] | None = None
) -> OutboxMessage:
    """Record that these deliveries must reach the sender, and dispatch them once the transaction commits.

    Call inside the transaction that created (or requeued) the deliveries. `delivery_ids`
    None means every queued delivery of the email. `deliveries` ((id, address) pairs), when
    the caller has them in memory, spare the dispatch a query.
    """
    now = timezone.now()
    publish_from_memory = broker_mode() and deliveries is not None
    # Stored with the row (a column of the same insert), so the relay and the embedded worker,
    # which handle it after this request, still log and carry it.
    request_id = current_request_id.get()
    outbox = instance_insert(
        OutboxMessage(
            sent_email=sent_email,
            delivery_ids=delivery_ids,
            created=now,
            # The request publishes it itself; the relay waits its turn.
            available_at=now + RELAY_GRACE if publish_from_memory else now,
            request_id=request_id,
        )
    )
    if broker_mode():
        if publish_from_memory:
            body = encode(work_message_build(sent_email=sent_email, deliveries=deliveries))
            transaction.on_commit(lambda: _publish_after_commit(outbox.pk, sent_email.pk, body, request_id))
        else:
            transaction.on_commit(lambda: _relay_one(outbox.pk, claim=True))
    else:
        from emailsystem.emails.delivery.embedded import wake_embedded_worker

        transaction.on_commit(wake_embedded_worker)
    return outbox


def _publish_after_commit(outbox_id: int, email_id: int, body: bytes, request_id: str | None) -> None:
    from emailsystem.emails.delivery.dispatcher import dispatcher

    dispatcher().submit(outbox_id, message_id_for(outbox_id, email_id), body, request_id)


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


def outbox_delete(*, outbox_ids: list[int]) -> None:
    """Delete published rows with plain SQL, recording each as `published` in its email's history.

    Runs once per dispatched batch, often a batch of one; Django's QuerySet.delete() (its
    collector and transaction) cost several times the statement (bench/profiles/README.md).
    On PostgreSQL the history rows come from the DELETE's RETURNING in the same statement (a
    data-modifying CTE), so recording the publish costs no extra round trip; elsewhere (SQLite
    has no such CTE) it is an INSERT ... SELECT before the DELETE, in one transaction.
    """
    quote = connection.ops.quote_name
    outbox_table = quote(OutboxMessage._meta.db_table)
    ids = ", ".join(["%s"] * len(outbox_ids))  # placeholders only; the ids travel as parameters
    delete = f"DELETE FROM {outbox_table} WHERE id IN ({ids})"  # noqa: S608
    columns = ", ".join(quote(SentEmailHistory._meta.get_field(name).column) for name in _PUBLISHED_COLUMNS)
    insert = f"INSERT INTO {quote(SentEmailHistory._meta.db_table)} ({columns})"
    email, deliveries = (quote(OutboxMessage._meta.get_field(name).column) for name in ("sent_email", "delivery_ids"))
    # The outbox row's email and deliveries, the kind and time as parameters, the attempt's columns empty.
    selected = f"SELECT {email}, %s, %s, {deliveries}, NULL, '', NULL, ''"
    published = [HistoryKind.PUBLISHED.value, connection.ops.adapt_datetimefield_value(timezone.now())]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"WITH published AS ({delete} RETURNING {email}, {deliveries}) {insert} {selected} FROM published"
            cursor.execute(sql, [*outbox_ids, *published])
            return
        with transaction.atomic():
            cursor.execute(f"{insert} {selected} FROM {outbox_table} WHERE id IN ({ids})", [*published, *outbox_ids])
            cursor.execute(delete, outbox_ids)


_PUBLISHED_COLUMNS = ("sent_email", "kind", "at", "delivery_ids", "attempt", "outcome", "status_code", "reason")


def _relay_one(outbox_id: int, *, claim: bool) -> bool:
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
        message_id = message_id_for(outbox.pk, outbox.sent_email_id)
        fields = {"message_id": message_id, "email_id": outbox.sent_email_id}
        try:
            publisher().publish(encode(message), message_id=message_id, request_id=outbox.request_id)
        except PublishError as error:
            QUEUE_PUBLISH_FAILURES.labels("relay").inc()
            OutboxMessage.objects.filter(pk=outbox.pk).update(
                attempts=outbox.attempts + 1, last_error=str(error)[:1000], available_at=timezone.now() + RELAY_GRACE
            )
            logger.warning("relay could not publish %s: %s", message_id, error, extra=fields)
            return False
        logger.info("relayed %s (%d recipients)", message_id, len(message.deliveries), extra=fields)
        outbox_delete(outbox_ids=[outbox.pk])
        return True
    outbox.delete()  # nothing left to send (every delivery moved on): not a publish
    return True


def outbox_relay(*, limit: int = 100) -> int:
    """Publish up to `limit` rows whose immediate publish did not happen. Returns how many were published.

    Stops at the first broker failure: the rest would fail the same way.
    """
    published = 0
    for outbox_id in outbox_available(limit=limit):
        if not outbox_claim(outbox_id=outbox_id):
            continue
        if not _relay_one(outbox_id, claim=False):
            break
        published += 1
    return published
