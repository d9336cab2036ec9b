"""Handing many emails' deliveries to the sender at once (a batch send): one outbox row per
email, all inserted in one statement, each dispatched after the commit as `outbox_enqueue`
does for a single send (enqueue.py holds the rules)."""

from django.db import transaction
from django.utils import timezone

from emailsender.logs import current_request_id
from emailsender.options import Attachment
from emailsystem.core.plain_sql import rows_insert
from emailsystem.emails.delivery import outbox
from emailsystem.emails.delivery.broker import WorkPublish
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.embedded import wake_embedded_worker
from emailsystem.emails.delivery.lanes import lane_for
from emailsystem.emails.delivery.work import encode, message_id_for, recipient_ids_for, work_message_build
from emailsystem.emails.models import OutboxMessage, SentEmail


def outbox_enqueue_many(
    *, sends: list[tuple[SentEmail, list[tuple[int, str]], tuple[Attachment, ...] | None]]
) -> list[int]:
    """Record that each email's deliveries ((id, address) pairs) must reach the sender, and
    dispatch them once the transaction commits. Their outbox rows' ids, in order.

    Each email's attachments, as the sender takes them, come with it (None: read from the
    database, a query per email). Every row takes the lane of the whole request's recipients.

    Call inside the transaction that created the deliveries. One INSERT for every row, not a
    round trip per email: a batch of any size writes its emails, deliveries and outbox rows
    with one INSERT each (plain_sql.rows_insert splits one only past MAX_PARAMETERS values).
    """
    if not sends:
        return []
    broker_mode = outbox.broker_mode()
    now = timezone.now()
    request_id = current_request_id.get()
    lane = lane_for(recipients=sum(len(deliveries) for _email, deliveries, _attachments in sends))
    available_at = now + outbox.RELAY_GRACE if broker_mode else now
    row_ids = rows_insert(
        OutboxMessage,
        [
            {
                "sent_email_id": sent_email.pk,
                "delivery_ids": None,
                "created": now,
                "available_at": available_at,
                "request_id": request_id,
                "lane": lane,
            }
            for sent_email, _deliveries, _attachments in sends
        ],
    )
    if not broker_mode:
        transaction.on_commit(wake_embedded_worker)
        return row_ids
    # What the emails' unsubscribe links name, for all of them in one query.
    recipient_ids = recipient_ids_for(
        delivery_ids=[pk for email, deliveries, _attachments in sends if email.unsubscribe for pk, _ in deliveries]
    )
    messages = [
        (
            row_id,
            WorkPublish(
                encode(
                    work_message_build(
                        sent_email=email, deliveries=deliveries, attachments=attachments, recipient_ids=recipient_ids
                    )
                ),
                message_id_for(row_id, email.pk),
                request_id,
                lane,
            ),
        )
        for row_id, (email, deliveries, attachments) in zip(row_ids, sends, strict=True)
    ]

    def submit() -> None:
        for row_id, message in messages:
            dispatcher().submit(row_id, message)

    transaction.on_commit(submit)
    return row_ids
