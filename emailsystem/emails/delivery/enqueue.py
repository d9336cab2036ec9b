"""Handing deliveries to the sender: an outbox row written with the send, and after the commit
either a publish by this process's dispatcher (broker mode) or a wake-up of the in-process
worker (embedded mode). Nothing is handed on before the transaction commits, and nothing for a
rolled-back one.
"""

import datetime

from django.db import transaction

from emailsender.options import Attachment
from emailsystem.emails.delivery import outbox
from emailsystem.emails.delivery.broker import WorkPublish
from emailsystem.emails.delivery.dispatcher import dispatcher
from emailsystem.emails.delivery.embedded import wake_embedded_worker
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_build
from emailsystem.emails.models import Lane, OutboxMessage, SentEmail


def outbox_enqueue(
    *,
    sent_email: SentEmail,
    delivery_ids: list[int] | None = None,
    deliveries: list[tuple[int, str]] | None = None,
    send_at: datetime.datetime | None = None,
    attachments: tuple[Attachment, ...] | None = None,
    lane: Lane = Lane.NORMAL,
) -> OutboxMessage:
    """Record that these deliveries must reach the sender, and dispatch them once the transaction commits.

    Call inside the transaction that created (or requeued) the deliveries. `delivery_ids`
    None means every queued delivery of the email. `deliveries` ((id, address) pairs), when
    the caller has them in memory, spare the dispatch a query, and so do `attachments` (the
    email's, as the sender takes them; None reads them from the database). With `send_at` nothing is
    dispatched now: the row becomes available then, and the relay (broker mode) or the
    embedded worker's poll hands it on (delivery/schedule.py). `lane` (lanes.lane_for) is the
    work queue the message goes to, now or when the relay publishes it.
    """
    if send_at is not None:
        return outbox.outbox_insert(
            sent_email=sent_email,
            delivery_ids=delivery_ids,
            published_by_request=False,
            available_at=send_at,
            lane=lane,
        )
    broker_mode = outbox.broker_mode()
    # The body is built here, in the request, when the caller has the deliveries in memory.
    body = (
        encode(work_message_build(sent_email=sent_email, deliveries=deliveries, attachments=attachments))
        if broker_mode and deliveries is not None
        else None
    )
    row = outbox.outbox_insert(
        sent_email=sent_email, delivery_ids=delivery_ids, published_by_request=body is not None, lane=lane
    )
    if body is not None:
        message = WorkPublish(body, message_id_for(row.pk, sent_email.pk), row.request_id, lane)
        transaction.on_commit(lambda: dispatcher().submit(row.pk, message))
    elif broker_mode:
        transaction.on_commit(lambda: outbox.relay_one(row.pk, claim=True))
    else:
        transaction.on_commit(wake_embedded_worker)
    return row
