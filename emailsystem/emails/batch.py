"""Batch sends: many messages recorded in one transaction, with one quota check for them all.

Each message follows a single send's rules (services.sent_email_create); the batch writes
them with one INSERT per table instead of a round trip per message.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from emailsystem.core.exceptions import ApplicationError
from emailsystem.core.plain_sql import rows_insert
from emailsystem.emails.delivery.enqueue_many import outbox_enqueue_many
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, EmailTemplate, SentEmail
from emailsystem.emails.receipts import ReceiptRecipient, SendReceipt
from emailsystem.emails.rendering import RenderedEmail, RenderError, template_render
from emailsystem.emails.services import (
    recipients_resolve,
    send_quota_consume,
    sender_addresses,
    sent_email_tags_insert,
)
from emailsystem.users.models import User


class BatchRenderError(ApplicationError):
    """Messages of a batch that cannot be rendered: {index: (field, message)}. Nothing was written."""

    def __init__(self, errors: dict[int, tuple[str, str]]) -> None:
        super().__init__("Some messages cannot be rendered.", field="messages")
        self.errors = errors


@dataclass(frozen=True)
class _Prepared:
    template: EmailTemplate | None
    context: dict[str, Any]
    rendered: RenderedEmail
    recipients: list[str]
    tags: list[str]
    metadata: dict[str, str]
    sandbox: bool


def _render(message: dict[str, Any]) -> RenderedEmail:
    template = message.get("template")
    if template is None:
        return RenderedEmail(
            subject=message.get("subject", ""), body=message.get("body", ""), html_body=message.get("html_body", "")
        )
    return template_render(
        subject=template.subject,
        body=template.body,
        html_body=template.html_body,
        context=message.get("context") or {},
        allow_missing_variables=template.allow_missing_variables,
    )


@transaction.atomic
def sent_email_batch_create(*, user: User, messages: list[dict[str, Any]]) -> list[SendReceipt]:
    """Record every message of a batch, or none: their receipts, in order.

    `messages` hold what SentEmailCreateSerializer validated (recipients, and a template with
    its context or an ad hoc subject and bodies). Every message is rendered first; any that
    cannot be raises BatchRenderError naming each one, and nothing is written. The quota is
    charged once for every recipient of the batch that is not suppressed (QuotaExceededError,
    nothing written). The outbox hands each email to the sender after the commit.
    """
    prepared: list[_Prepared] = []
    errors: dict[int, tuple[str, str]] = {}
    for index, message in enumerate(messages):
        try:
            rendered = _render(message)
        except RenderError as error:
            errors[index] = (error.field, error.message)
            continue
        prepared.append(
            _Prepared(
                template=message.get("template"),
                context=message.get("context") or {},
                rendered=rendered,
                recipients=message["recipients"],
                tags=message.get("tags") or [],
                metadata=message.get("metadata") or {},
                sandbox=bool(message.get("sandbox")),
            )
        )
    if errors:
        raise BatchRenderError(errors)

    addresses = list(dict.fromkeys(address for item in prepared for address in item.recipients))
    resolved = recipients_resolve(user=user, addresses=addresses)
    from_email, reply_to = sender_addresses(user=user)
    now = timezone.now()
    emails = [
        SentEmail(
            sender=user,
            template=item.template,
            template_name=item.template.name if item.template else "",
            context=item.context,
            subject=item.rendered.subject,
            body=item.rendered.body,
            html_body=item.rendered.html_body,
            from_email=from_email,
            reply_to=reply_to,
            recipient_count=len(item.recipients),
            status=EmailStatus.SUPPRESSED
            if all(address in resolved.suppressed for address in item.recipients)
            else EmailStatus.QUEUED,
            created=now,
            tags=item.tags,
            metadata=item.metadata,
            sandbox=item.sandbox,
        )
        for item in prepared
    ]
    _emails_insert(emails)
    for email in emails:
        if email.tags:
            sent_email_tags_insert(sent_email_id=email.pk, tags=email.tags)
    statuses = [
        [
            DeliveryStatus.SUPPRESSED if address in resolved.suppressed else DeliveryStatus.QUEUED
            for address in item.recipients
        ]
        for item in prepared
    ]
    delivery_ids = iter(
        rows_insert(
            Delivery,
            [
                {
                    "sent_email_id": email.pk,
                    "recipient_id": resolved.ids[address],
                    "status": status.value,
                    "created": now,
                    "updated": now,
                }
                for email, item, email_statuses in zip(emails, prepared, statuses, strict=True)
                for address, status in zip(item.recipients, email_statuses, strict=True)
            ],
        )
    )
    receipts = []
    sends = []
    for email, item, email_statuses in zip(emails, prepared, statuses, strict=True):
        recipients = [
            ReceiptRecipient(address, next(delivery_ids), status.value)
            for address, status in zip(item.recipients, email_statuses, strict=True)
        ]
        receipts.append(SendReceipt(email_id=email.pk, status=email.status, created=now, recipients=recipients))
        queued = [
            (r.delivery_id, r.address)
            for r in recipients
            if r.status == DeliveryStatus.QUEUED and r.delivery_id is not None  # new receipts carry every id
        ]
        if queued:
            sends.append((email, queued))
    outbox_enqueue_many(sends=sends)
    # Last, so that the quota row's lock (which serialises the user's concurrent sends) is
    # held only until the commit that follows, not through the inserts; a refusal still
    # rolls everything back.
    # Sandbox messages reach no mailbox and are not charged, as a single sandbox send is not.
    to_send = sum(
        1 for item in prepared if not item.sandbox for address in item.recipients if address not in resolved.suppressed
    )
    if to_send:
        send_quota_consume(user=user, count=to_send)
    return receipts


def _emails_insert(emails: list[SentEmail]) -> None:
    """Insert new SentEmail instances in one statement and set their keys (as instance_insert does for one)."""
    fields = [field for field in SentEmail._meta.concrete_fields if not field.primary_key]
    rows = [{field.attname: field.pre_save(email, add=True) for field in fields} for email in emails]
    for email, pk in zip(emails, rows_insert(SentEmail, rows), strict=True):
        email.pk = pk
        email._state.adding = False
