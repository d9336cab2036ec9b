"""The rows of recorded sends: each email, its tags and one delivery per recipient, and its receipt.

A single send (services.sent_email_create), a batch (batch.py) and the service's verification
email (verification.py) all record here: one INSERT per table for any number of emails.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from emailsystem.core.plain_sql import rows_insert
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, EmailTemplate, SentEmail, SentEmailTag
from emailsystem.emails.receipts import ReceiptRecipient, SendReceipt
from emailsystem.emails.recipients import ResolvedRecipients
from emailsystem.emails.rendering import RenderedEmail, template_render
from emailsystem.outbound.events import send_events_record
from emailsystem.users.models import User


def message_render(
    *, template: EmailTemplate | None, context: dict[str, Any], subject: str = "", body: str = "", html_body: str = ""
) -> RenderedEmail:
    """A send's subject and bodies: the template rendered with `context`, or without one the ad hoc
    parts as given. Raises rendering.RenderError."""
    if template is None:
        return RenderedEmail(subject=subject, body=body, html_body=html_body)
    return template_render(
        subject=template.subject,
        body=template.body,
        html_body=template.html_body,
        context=context,
        allow_missing_variables=template.allow_missing_variables,
    )


@dataclass(frozen=True)
class EmailToRecord:
    """One email of a send, rendered, with its validated, normalised and de-duplicated recipients."""

    recipients: list[str]
    rendered: RenderedEmail
    template: EmailTemplate | None = None
    context: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    sandbox: bool = False
    send_at: datetime.datetime | None = None
    unsubscribe: bool = False


@dataclass(frozen=True)
class RecordedEmail:
    """An email just recorded: its row (for the outbox and the work message) and its receipt."""

    sent_email: SentEmail
    receipt: SendReceipt

    @property
    def queued(self) -> list[tuple[int, str]]:
        """(delivery id, address) of the recipients to hand to the sender: all but the suppressed."""
        return [
            (recipient.delivery_id, recipient.address)
            for recipient in self.receipt.recipients
            if recipient.status == DeliveryStatus.QUEUED and recipient.delivery_id is not None
        ]


def sent_emails_record(
    *, sender: User, from_email: str, reply_to: str, emails: list[EmailToRecord], resolved: ResolvedRecipients
) -> list[RecordedEmail]:
    """Insert the emails, their tags and their deliveries (three statements at most, whatever the
    number of emails); each email's row and receipt, in order.

    A recipient in `resolved.suppressed` gets a `suppressed` delivery, the others a `queued` one.
    An email is `suppressed` when every recipient is, else `scheduled` with a `send_at`, else
    `queued`. Charges no quota and hands nothing to the sender: the caller does both. Records
    the outbound webhook messages of the new recipients (email.queued, email.suppressed).
    """
    now = timezone.now()
    suppressed, queued = DeliveryStatus.SUPPRESSED, DeliveryStatus.QUEUED
    statuses = [
        [suppressed if address in resolved.suppressed else queued for address in email.recipients] for email in emails
    ]
    rows = [
        SentEmail(
            sender=sender,
            template=email.template,
            template_name=email.template.name if email.template else "",
            context=email.context,
            subject=email.rendered.subject,
            body=email.rendered.body,
            html_body=email.rendered.html_body,
            from_email=from_email,
            reply_to=reply_to,
            recipient_count=len(email.recipients),
            status=_initial_status(statuses=email_statuses, send_at=email.send_at),
            created=now,
            send_at=email.send_at,
            tags=email.tags,
            metadata=email.metadata,
            sandbox=email.sandbox,
            unsubscribe=email.unsubscribe,
        )
        for email, email_statuses in zip(emails, statuses, strict=True)
    ]
    _sent_emails_insert(rows)
    tags = [{"sent_email_id": row.pk, "tag": tag} for row in rows for tag in row.tags]
    if tags:  # the tags index the log's `tag` filter reads
        rows_insert(SentEmailTag, tags)
    delivery_ids = iter(
        _deliveries_insert(
            sent_email_ids=[row.pk for row, email in zip(rows, emails, strict=True) for _address in email.recipients],
            recipient_ids=[resolved.ids[address] for email in emails for address in email.recipients],
            statuses=[status for email_statuses in statuses for status in email_statuses],
            created=now,
        )
    )
    recorded = []
    for row, email, email_statuses in zip(rows, emails, statuses, strict=True):
        recipients = [
            ReceiptRecipient(address, next(delivery_ids), status.value)
            for address, status in zip(email.recipients, email_statuses, strict=True)
        ]
        receipt = SendReceipt(email_id=row.pk, status=row.status, created=now, recipients=recipients)
        recorded.append(RecordedEmail(sent_email=row, receipt=receipt))
    # email.queued and email.suppressed, when the sender has a webhook endpoint (one query if not).
    send_events_record(
        user_id=sender.pk,
        emails=[(item.sent_email, [(r.address, r.status) for r in item.receipt.recipients]) for item in recorded],
    )
    return recorded


def _initial_status(*, statuses: list[DeliveryStatus], send_at: datetime.datetime | None) -> EmailStatus:
    if all(status == DeliveryStatus.SUPPRESSED for status in statuses):
        return EmailStatus.SUPPRESSED
    return EmailStatus.SCHEDULED if send_at is not None else EmailStatus.QUEUED


def _sent_emails_insert(emails: list[SentEmail]) -> None:
    """Insert new SentEmail instances in one statement and set their keys, as plain_sql.instance_insert does for one."""
    fields = [field for field in SentEmail._meta.concrete_fields if not field.primary_key]
    rows = [{field.attname: field.pre_save(email, add=True) for field in fields} for email in emails]
    for email, pk in zip(emails, rows_insert(SentEmail, rows), strict=True):
        email.pk = pk
        email._state.adding = False
        email._state.db = connection.alias


def _deliveries_insert(
    *, sent_email_ids: list[int], recipient_ids: list[int], statuses: list[DeliveryStatus], created: datetime.datetime
) -> list[int]:
    """Insert one delivery per (email, recipient, status) in a single statement; their ids, in order.

    The send's hottest write: with a model instance per recipient a 10-recipient send took
    5.6 ms of CPU instead of 4.8, and a 1,000-recipient one 123 ms instead of about 80.
    """
    return rows_insert(
        Delivery,
        [
            {
                "sent_email_id": sent_email_id,
                "recipient_id": recipient_id,
                "status": status.value,
                "created": created,
                "updated": created,
            }
            for sent_email_id, recipient_id, status in zip(sent_email_ids, recipient_ids, statuses, strict=True)
        ],
    )
