"""Building the work message the sender consumes (the contract is in emailsender.messages)."""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from emailsender.messages import WorkMessage, WorkRecipient, encode_work
from emailsender.options import Attachment, Options
from emailsystem.emails.attachments import attachments_for_work, attachments_for_work_many
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage, SentEmail


def work_message_build(
    *,
    sent_email: SentEmail,
    deliveries: Iterable[tuple[int, str]],
    attachments: tuple[Attachment, ...] | None = None,
) -> WorkMessage:
    """The message for `deliveries` ((delivery id, address) pairs) of one email.

    `attachments`: the email's, when the caller has them in memory (the send that stored
    them); None reads them from the database.
    """
    return WorkMessage(
        email_id=sent_email.pk,
        from_email=sent_email.from_email,
        reply_to=sent_email.reply_to or None,
        subject=sent_email.subject,
        text=sent_email.body,
        html=sent_email.html_body or None,
        deliveries=tuple(WorkRecipient(id=delivery_id, to=address) for delivery_id, address in deliveries),
        options=work_options(sent_email, attachments=attachments),
    )


def work_options(sent_email: SentEmail, *, attachments: tuple[Attachment, ...] | None = None) -> Options:
    """The email's tags, metadata, sandbox flag and attachments (`attachments`, or None: read from
    the database) as the sender takes them."""
    if attachments is None:
        attachments = attachments_for_work(sent_email_id=sent_email.pk)
    return Options(
        tags=tuple(sent_email.tags),
        metadata=tuple(sent_email.metadata.items()),
        sandbox=sent_email.sandbox,
        attachments=attachments,
    )


def work_message_for_outbox(outbox: OutboxMessage) -> WorkMessage:
    """Rebuild an outbox row's message from the database: its deliveries that are still queued."""
    deliveries = Delivery.objects.filter(sent_email_id=outbox.sent_email_id, status=DeliveryStatus.QUEUED)
    if outbox.delivery_ids is not None:
        deliveries = deliveries.filter(pk__in=outbox.delivery_ids)
    pairs = deliveries.order_by("pk").values_list("pk", "recipient__email")
    return work_message_build(sent_email=outbox.sent_email, deliveries=list(pairs))


def work_messages_for_outbox(rows: Sequence[OutboxMessage]) -> dict[int, WorkMessage]:
    """work_message_for_outbox for many rows (with their sent_email loaded) in two queries (deliveries,
    attachments): outbox id -> message."""
    queued: dict[int, list[tuple[int, str]]] = defaultdict(list)
    deliveries = Delivery.objects.filter(
        sent_email_id__in={row.sent_email_id for row in rows}, status=DeliveryStatus.QUEUED
    )
    for email_id, delivery_id, address in deliveries.order_by("pk").values_list(
        "sent_email_id", "pk", "recipient__email"
    ):
        queued[email_id].append((delivery_id, address))
    attachments = attachments_for_work_many(sent_email_ids=[row.sent_email_id for row in rows])
    messages = {}
    for row in rows:
        pairs = queued[row.sent_email_id]
        if row.delivery_ids is not None:
            wanted = set(row.delivery_ids)
            pairs = [pair for pair in pairs if pair[0] in wanted]
        messages[row.pk] = work_message_build(
            sent_email=row.sent_email, deliveries=pairs, attachments=attachments[row.sent_email_id]
        )
    return messages


def message_id_for(outbox_id: int, email_id: int) -> str:
    return f"email-{email_id}.outbox-{outbox_id}"


def encode(message: WorkMessage) -> bytes:
    return encode_work(message)
