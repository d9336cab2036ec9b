"""Building the work message the sender consumes (the contract is in emailsender.messages)."""

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence

from django.conf import settings

from emailsender.messages import WorkMessage, WorkRecipient, encode_work
from emailsender.options import Attachment, Options
from emailsystem.emails.attachments import attachments_for_work, attachments_for_work_many
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage, SentEmail
from emailsystem.emails.unsubscribe.links import UnsubscribeLink, unsubscribe_urls

logger = logging.getLogger(__name__)


def work_message_build(
    *,
    sent_email: SentEmail,
    deliveries: Iterable[tuple[int, str]],
    attachments: tuple[Attachment, ...] | None = None,
    recipient_ids: Mapping[int, int] | None = None,
) -> WorkMessage:
    """The message for `deliveries` ((delivery id, address) pairs) of one email.

    `attachments`: the email's, when the caller has them in memory (the send that stored
    them); None reads them from the database. An email with `unsubscribe` gives each delivery
    its one-click unsubscribe URL, which names the recipient: `recipient_ids` (delivery id ->
    recipient id) when the caller has them, else one query reads them.
    """
    pairs = list(deliveries)
    links = _unsubscribe_urls(sent_email, [delivery_id for delivery_id, _ in pairs], recipient_ids)
    return WorkMessage(
        email_id=sent_email.pk,
        from_email=sent_email.from_email,
        reply_to=sent_email.reply_to or None,
        subject=sent_email.subject,
        text=sent_email.body,
        html=sent_email.html_body or None,
        deliveries=tuple(
            WorkRecipient(id=delivery_id, to=address, unsubscribe=links.get(delivery_id))
            for delivery_id, address in pairs
        ),
        options=work_options(sent_email, attachments=attachments),
    )


def recipient_ids_for(*, delivery_ids: Collection[int]) -> dict[int, int]:
    """Delivery id -> recipient id, in one query: what unsubscribe links name."""
    if not delivery_ids:
        return {}
    return dict(Delivery.objects.filter(pk__in=delivery_ids).values_list("pk", "recipient_id"))


def _unsubscribe_urls(
    sent_email: SentEmail, delivery_ids: list[int], recipient_ids: Mapping[int, int] | None
) -> dict[int, str]:
    """Delivery id -> its one-click unsubscribe URL, for an email that offers them.

    The API refuses `unsubscribe` while PUBLIC_BASE_URL is unset; an email accepted before the
    operator unset it is sent without the links (and logged) rather than not at all.
    """
    if not sent_email.unsubscribe or not delivery_ids:
        return {}
    base_url = settings.PUBLIC_BASE_URL
    if not base_url:
        logger.warning(
            "PUBLIC_BASE_URL is unset: email sent without unsubscribe links", extra={"email_id": sent_email.pk}
        )
        return {}
    if recipient_ids is None:
        recipient_ids = recipient_ids_for(delivery_ids=delivery_ids)
    linked = [delivery_id for delivery_id in delivery_ids if delivery_id in recipient_ids]
    links = (UnsubscribeLink(sent_email.sender_id, recipient_ids[delivery_id], delivery_id) for delivery_id in linked)
    return dict(zip(linked, unsubscribe_urls(base_url=base_url, links=links), strict=True))


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
    rows = deliveries.order_by("pk").values_list("pk", "recipient__email", "recipient_id")
    return work_message_build(
        sent_email=outbox.sent_email,
        deliveries=[(pk, address) for pk, address, _ in rows],
        recipient_ids={pk: recipient_id for pk, _, recipient_id in rows},
    )


def work_messages_for_outbox(rows: Sequence[OutboxMessage]) -> dict[int, WorkMessage]:
    """work_message_for_outbox for many rows (with their sent_email loaded) in two queries (deliveries,
    attachments): outbox id -> message."""
    queued: dict[int, list[tuple[int, str]]] = defaultdict(list)
    recipient_ids: dict[int, int] = {}
    deliveries = Delivery.objects.filter(
        sent_email_id__in={row.sent_email_id for row in rows}, status=DeliveryStatus.QUEUED
    )
    for email_id, delivery_id, address, recipient_id in deliveries.order_by("pk").values_list(
        "sent_email_id", "pk", "recipient__email", "recipient_id"
    ):
        queued[email_id].append((delivery_id, address))
        recipient_ids[delivery_id] = recipient_id
    attachments = attachments_for_work_many(sent_email_ids=[row.sent_email_id for row in rows])
    messages = {}
    for row in rows:
        pairs = queued[row.sent_email_id]
        if row.delivery_ids is not None:
            wanted = set(row.delivery_ids)
            pairs = [pair for pair in pairs if pair[0] in wanted]
        messages[row.pk] = work_message_build(
            sent_email=row.sent_email,
            deliveries=pairs,
            attachments=attachments[row.sent_email_id],
            recipient_ids=recipient_ids,
        )
    return messages


def message_id_for(outbox_id: int, email_id: int) -> str:
    return f"email-{email_id}.outbox-{outbox_id}"


def encode(message: WorkMessage) -> bytes:
    return encode_work(message)
