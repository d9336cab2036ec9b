"""Batch sends: many messages recorded in one transaction, with one quota check for them all.

Each message follows a single send's rules (services.sent_email_create) and is recorded by the
same code (recording.sent_emails_record), which writes a batch with one INSERT per table
instead of a round trip per message.
"""

from typing import Any

from django.db import transaction

from emailsystem.core.exceptions import ApplicationError
from emailsystem.emails.delivery.enqueue_many import outbox_enqueue_many
from emailsystem.emails.receipts import SendReceipt
from emailsystem.emails.recipients import recipients_resolve
from emailsystem.emails.recording import EmailToRecord, message_render, sent_emails_record
from emailsystem.emails.rendering import RenderError
from emailsystem.emails.services import send_quota_consume, sender_addresses
from emailsystem.users.models import User


class BatchRenderError(ApplicationError):
    """Messages of a batch that cannot be rendered: {index: (field, message)}. Nothing was written."""

    def __init__(self, errors: dict[int, tuple[str, str]]) -> None:
        super().__init__("Some messages cannot be rendered.", field="messages")
        self.errors = errors


@transaction.atomic
def sent_email_batch_create(*, user: User, messages: list[dict[str, Any]]) -> list[SendReceipt]:
    """Record every message of a batch, or none: their receipts, in order.

    `messages` hold what SentEmailCreateSerializer validated (recipients, and a template with
    its context or an ad hoc subject and bodies). Every message is rendered first; any that
    cannot be raises BatchRenderError naming each one, and nothing is written. The quota is
    charged once for every recipient of the batch that is not suppressed (QuotaExceededError,
    nothing written). The outbox hands each email to the sender after the commit.
    """
    emails: list[EmailToRecord] = []
    errors: dict[int, tuple[str, str]] = {}
    for index, message in enumerate(messages):
        context = message.get("context") or {}
        try:
            rendered = message_render(
                template=message.get("template"),
                context=context,
                subject=message.get("subject", ""),
                body=message.get("body", ""),
                html_body=message.get("html_body", ""),
            )
        except RenderError as error:
            errors[index] = (error.field, error.message)
            continue
        emails.append(
            EmailToRecord(
                recipients=message["recipients"],
                rendered=rendered,
                template=message.get("template"),
                context=context,
                tags=message.get("tags") or [],
                metadata=message.get("metadata") or {},
                sandbox=bool(message.get("sandbox")),
                unsubscribe=bool(message.get("unsubscribe")),
            )
        )
    if errors:
        raise BatchRenderError(errors)

    addresses = list(dict.fromkeys(address for email in emails for address in email.recipients))
    resolved = recipients_resolve(user=user, addresses=addresses)
    from_email, reply_to = sender_addresses(user=user)
    recorded = sent_emails_record(
        sender=user, from_email=from_email, reply_to=reply_to, emails=emails, resolved=resolved
    )
    # A batch message has no attachments (serializers.batch.BATCH_UNSUPPORTED): () spares a query per email.
    outbox_enqueue_many(sends=[(item.sent_email, item.queued, ()) for item in recorded if item.queued])
    # Last, so that the quota row's lock (which serialises the user's concurrent sends) is
    # held only until the commit that follows, not through the inserts; a refusal still
    # rolls everything back.
    # Sandbox messages reach no mailbox and are not charged, as a single sandbox send is not.
    to_send = sum(
        1 for email in emails if not email.sandbox for address in email.recipients if address not in resolved.suppressed
    )
    if to_send:
        send_quota_consume(user=user, count=to_send)
    return [item.receipt for item in recorded]
