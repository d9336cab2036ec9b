"""The email that proves an address: mailed by the service itself, through the normal pipeline.

The users app asks for it with the `email_verification_requested` signal (users never imports
emails); `EmailsConfig.ready` connects `verification_email_on_request` to it.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.html import format_html

from emailsystem.emails.delivery.enqueue import outbox_enqueue
from emailsystem.emails.models import SentEmail
from emailsystem.emails.recipients import recipients_resolve
from emailsystem.emails.recording import EmailToRecord, sent_emails_record
from emailsystem.emails.rendering import RenderedEmail
from emailsystem.users.models import User
from emailsystem.users.services import system_user_get_or_create, verification_link_lifetime

logger = logging.getLogger(__name__)

VERIFICATION_SUBJECT = "Confirm your email address"
# Good enough for the local outbox of `make run`; SendGrid refuses it (a system check warns).
LOCAL_SYSTEM_FROM_ADDRESS = "no-reply@localhost"


def system_from_address() -> str:
    """The From of the service's own emails: SYSTEM_FROM_ADDRESS, else EMAIL_FROM_ADDRESS (a sender the
    operator already verified with SendGrid), else no-reply@localhost."""
    return settings.SYSTEM_FROM_ADDRESS or settings.EMAIL_FROM_ADDRESS or LOCAL_SYSTEM_FROM_ADDRESS


def verification_email_render(*, user: User, url: str) -> tuple[str, str, str]:
    """(subject, plain body, HTML body) of the email that carries `url` to the user's address."""
    body = (
        f"Hello {user.username},\n\n"
        f"To send email from {user.email}, confirm that the address is yours by opening this link "
        f"within {verification_link_lifetime()}:\n\n{url}\n\n"
        "Until you do, your emails go from the service's own address, or are refused where it has none.\n"
        "If you did not register, ignore this email: nothing is sent from your address without this link.\n"
    )
    html_body = format_html(
        "<p>Hello {},</p><p>To send email from {}, confirm that the address is yours by opening "
        '<a href="{}">this link</a> within {}:</p><p>{}</p>'
        "<p>Until you do, your emails go from the service's own address, or are refused where it has none.</p>"
        "<p>If you did not register, ignore this email: nothing is sent from your address without this link.</p>",
        user.username,
        user.email,
        url,
        verification_link_lifetime(),
        url,
    )
    return VERIFICATION_SUBJECT, body, str(html_body)


@transaction.atomic
def verification_email_send(*, user: User, url: str) -> SentEmail:
    """Record the email carrying a verification link to the user's address, and queue it like any send.

    It goes through the outbox, broker and sender as every email does (under `make run`, an .eml
    file in OUTBOX_DIR), From `system_from_address()`: the service is speaking, and the user's address
    is not proved yet. It is recorded as sent by the system account, not by the user, whose log
    would otherwise show them the link without their having the mailbox; it charges no quota
    (asking for links is throttled per IP instead). An address on the system account's
    suppression list (it bounced before) gets a suppressed delivery and is not attempted.
    """
    system = system_user_get_or_create()
    subject, body, html_body = verification_email_render(user=user, url=url)
    resolved = recipients_resolve(user=system, addresses=[user.email])
    email = EmailToRecord(
        recipients=[user.email], rendered=RenderedEmail(subject=subject, body=body, html_body=html_body)
    )
    [recorded] = sent_emails_record(
        sender=system, from_email=system_from_address(), reply_to="", emails=[email], resolved=resolved
    )
    sent_email = recorded.sent_email
    queued = recorded.queued
    if queued:
        outbox_enqueue(sent_email=sent_email, deliveries=queued, attachments=())
    # Never the link: it is as good as the mailbox until it is used.
    logger.info("verification email queued", extra={"email_id": sent_email.pk, "user_id": user.pk})
    return sent_email


def verification_email_on_request(sender: Any, *, user: User, url: str, **kwargs: Any) -> None:
    """Receiver of users.signals.email_verification_requested."""
    verification_email_send(user=user, url=url)
