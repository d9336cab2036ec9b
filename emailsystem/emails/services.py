"""Writes for templates and sends. Views and the admin call these; they never write models directly."""

import datetime
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from emailsystem.core.exceptions import ApplicationError, ConflictError, ForbiddenError, QuotaExceededError
from emailsystem.emails.attachments import attachments_insert
from emailsystem.emails.delivery.enqueue import outbox_enqueue
from emailsystem.emails.delivery.lanes import lane_for
from emailsystem.emails.models import EmailTemplate, IdempotencyRecord, Suppression
from emailsystem.emails.receipts import SendReceipt, receipts_from_record, receipts_record
from emailsystem.emails.recipients import recipients_resolve
from emailsystem.emails.recording import EmailToRecord, message_render, sent_emails_record
from emailsystem.emails.rendering import RenderError
from emailsystem.emails.sql import daily_send_count_add
from emailsystem.users.models import User


def sender_addresses(*, user: User) -> tuple[str, str]:
    """(From, Reply-To) for a user's email (docs/sending/sender-identity.md).

    A user's address is used only once it is verified (its owner followed the link mailed to it,
    or an admin granted it): registering is open and proves nothing, and From or Reply-To an
    unproved address would let anyone write as a colleague. So:
    - verified: From is the user's address; with EMAIL_FROM_ADDRESS, From is that and Reply-To the user;
    - not verified: From is EMAIL_FROM_ADDRESS alone, no Reply-To; without it, ForbiddenError (403).
    """
    if user.email_verified:
        if settings.EMAIL_FROM_ADDRESS:
            return settings.EMAIL_FROM_ADDRESS, user.email
        return user.email, ""
    if settings.EMAIL_FROM_ADDRESS:
        return settings.EMAIL_FROM_ADDRESS, ""
    raise ForbiddenError(
        f"Your address {user.email} is not verified, so email cannot be sent from it. Follow the link we mailed to "
        f"{user.email} (POST /api/v1/users/verify-email/ mails a new one), or ask an admin to verify it.",
        code="sender_not_verified",
    )


def _seconds_until_next_utc_day(now: datetime.datetime) -> int:
    tomorrow = (now + datetime.timedelta(days=1)).date()
    midnight = datetime.datetime.combine(tomorrow, datetime.time.min, tzinfo=datetime.UTC)
    return max(1, int((midnight - now).total_seconds()))


def send_quota_consume(*, user: User, count: int) -> None:
    """Count `count` recipients against the user's daily quota, or raise QuotaExceededError.

    One statement checks and increments. Call inside the send's transaction, so a failed send
    gives its quota back.
    """
    quota = user.daily_quota if user.daily_quota is not None else settings.SEND_DAILY_QUOTA
    now = timezone.now()
    day = now.astimezone(datetime.UTC).date()
    if count > quota or not daily_send_count_add(user_id=user.pk, day=day, count=count, quota=quota):
        raise QuotaExceededError(
            f"Daily quota of {quota} recipients reached; it resets at midnight UTC.",
            retry_after_seconds=_seconds_until_next_utc_day(now),
        )


@transaction.atomic
def sent_email_create(
    *,
    user: User,
    recipients: list[str],
    template: EmailTemplate | None = None,
    context: dict[str, Any] | None = None,
    subject: str = "",
    body: str = "",
    html_body: str = "",
    send_at: datetime.datetime | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    sandbox: bool = False,
    attachments: list[dict[str, Any]] | None = None,
    unsubscribe: bool = False,
) -> SendReceipt:
    """Record a send: render it, charge the quota, store the email and one queued delivery per recipient.

    The deliveries reach the sender through the outbox once the transaction commits, never
    before, and never for a rolled-back send.

    `recipients` must already be validated, normalised and de-duplicated. With a template,
    its subject and bodies are rendered with `context`; without one, `subject`, `body` and
    `html_body` are sent as given. Recipients on the user's suppression list get a
    `suppressed` delivery, are never handed to the sender and do not count against the
    quota. With `send_at` the email is `scheduled` and handed on no earlier than then
    (delivery/schedule.py); the quota is charged now, on today's count. `tags` and `metadata`
    are stored with the email and travel to SendGrid as its categories and custom_args. A
    `sandbox` send goes all the way to SendGrid in its sandbox mode (which delivers nothing),
    and does not count against the quota. `attachments` (validated dicts: filename, type,
    disposition, content_id, content as bytes) are stored with the email and sent to every
    recipient. With `unsubscribe`, each recipient gets a one-click unsubscribe link (the API
    resolves an absent value to the template's; docs/sending/unsubscribe.md). Raises
    ForbiddenError (403) when the user may not send (sender_addresses), ApplicationError (400)
    when rendering fails and QuotaExceededError (429) past the daily quota; in each case
    nothing is written. Returns the email's receipt, its recipients in the request's order.
    """
    from_email, reply_to = sender_addresses(user=user)
    context = context or {}
    try:
        rendered = message_render(template=template, context=context, subject=subject, body=body, html_body=html_body)
    except RenderError as error:
        raise ApplicationError(error.message, field=error.field) from None

    resolved = recipients_resolve(user=user, addresses=recipients)
    to_send = len(recipients) - len(resolved.suppressed)
    if to_send and not sandbox:
        send_quota_consume(user=user, count=to_send)
    email = EmailToRecord(
        recipients=recipients,
        rendered=rendered,
        template=template,
        context=context,
        tags=tags or [],
        metadata=metadata or {},
        sandbox=sandbox,
        send_at=send_at,
        unsubscribe=unsubscribe,
    )
    [recorded] = sent_emails_record(
        sender=user, from_email=from_email, reply_to=reply_to, emails=[email], resolved=resolved
    )
    sent_email = recorded.sent_email
    work_attachments = attachments_insert(sent_email_id=sent_email.pk, attachments=attachments or [])
    queued = recorded.queued
    if queued:
        outbox_enqueue(
            sent_email=sent_email,
            deliveries=queued,
            send_at=send_at,
            attachments=work_attachments,
            lane=lane_for(recipients=len(queued)),
        )
    return recorded.receipt


IDEMPOTENCY_KEY_MAX_LENGTH = 255  # IdempotencyRecord.key


def idempotent_send(
    *, user: User, key: str | None, fingerprint: str, send: Callable[[], list[SendReceipt]]
) -> tuple[list[SendReceipt], bool]:
    """Run `send` at most once per (user, Idempotency-Key) within IDEMPOTENCY_KEY_TTL_HOURS.

    Returns (receipts, replayed). A repeat with the same request fingerprint gets the first
    send's receipts and sends nothing; a repeat with a different body raises ConflictError (409).
    The record is written in the same transaction as the send, so two racing requests with
    one key cannot both send: the loser hits the unique constraint, rolls back, and replays.
    """
    if key is None:
        return send(), False
    if not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or any(ord(char) < 32 for char in key):
        raise ApplicationError(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters.", field="Idempotency-Key"
        )
    cutoff = timezone.now() - datetime.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyRecord.objects.filter(user=user, key=key, created__lt=cutoff).delete()
    existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint), True
    try:
        with transaction.atomic():
            receipts = send()
            IdempotencyRecord.objects.create(
                user=user, key=key, fingerprint=fingerprint, response=receipts_record(receipts)
            )
    except IntegrityError:
        winner = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if winner is None:
            raise
        return _replay(winner, fingerprint), True
    return receipts, False


def _replay(record: IdempotencyRecord, fingerprint: str) -> list[SendReceipt]:
    if record.fingerprint != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was already used with a different request body.", code="idempotency_key_reused"
        )
    return receipts_from_record(record.response)


def suppression_delete(*, suppression: Suppression) -> None:
    """Take an address off a suppression list: later sends to it are attempted again."""
    suppression.delete()
