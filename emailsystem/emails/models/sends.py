"""The record of a send: the email, its recipients and one delivery per recipient, with their statuses."""

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.utils import timezone

from emailsystem.emails.models.templates import EmailTemplate
from emailsystem.emails.rendering import SUBJECT_MAX_LENGTH


class Recipient(models.Model):
    """An address, stored once (lowercased) and shared by every email sent to it."""

    email = models.CharField(max_length=254, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class EmailStatus(models.TextChoices):
    """An email's status, derived from its deliveries (delivery.results.sent_email_status_derive)."""

    SCHEDULED = "scheduled", "Scheduled"  # has a send_at and no sender result yet (delivery/schedule.py)
    CANCELED = "canceled", "Canceled"  # canceled while scheduled: never handed on
    QUEUED = "queued", "Queued"  # at least one recipient not yet handed to SendGrid
    SENT = "sent", "Sent"  # every recipient accepted by SendGrid
    DELIVERED = "delivered", "Delivered"  # every recipient's mail server accepted it (or better)
    PARTIAL = "partial", "Partially failed"  # all settled, some reached and some failed
    FAILED = "failed", "Failed"  # all settled, none reached
    SUPPRESSED = "suppressed", "Suppressed"  # every recipient was on the suppression list
    SANDBOXED = "sandboxed", "Sandboxed"  # a sandbox send: SendGrid accepted and delivered nothing


class DeliveryStatus(models.TextChoices):
    """A recipient's status. Their order (delivery.statuses.RANK) decides which update wins."""

    QUEUED = "queued", "Queued"  # accepted, not yet accepted by SendGrid (retries stay here)
    SENT = "sent", "Sent"  # SendGrid answered 2xx
    FAILED = "failed", "Failed"  # SendGrid refused it, or every attempt failed; `reason` says why
    SUPPRESSED = "suppressed", "Suppressed"  # on the sender's suppression list: never attempted
    CANCELED = "canceled", "Canceled"  # its scheduled send was canceled: never attempted
    SANDBOXED = "sandboxed", "Sandboxed"  # a sandbox send SendGrid accepted (2xx); it delivers nothing
    # From SendGrid's Event Webhook (emails/webhooks/):
    PROCESSED = "processed", "Processed"  # SendGrid queued it for delivery
    DEFERRED = "deferred", "Deferred"  # the receiving server asked SendGrid to try later
    DELIVERED = "delivered", "Delivered"  # the receiving server accepted it
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"  # the receiving server refused it; `reason` says why
    DROPPED = "dropped", "Dropped"  # SendGrid did not send it (its own suppression lists); `reason` says why
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    SPAM_REPORTED = "spam_reported", "Reported as spam"


# Statuses only recipients have (an email's derived status is never one of them): the log's
# `status` filter finds the emails with a recipient in one through Delivery's partial index.
RECIPIENT_ONLY_STATUSES = [value for value in DeliveryStatus.values if value not in EmailStatus.values]


class SentEmail(models.Model):
    """The record of one send: what was rendered, by whom, to whom. Never rewritten by template edits."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_emails")
    template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_emails"
    )
    template_name = models.CharField(max_length=200, blank=True, help_text="The template's name at send time.")
    context = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH)
    body = models.TextField()
    html_body = models.TextField(blank=True, default="")
    from_email = models.CharField(max_length=254)
    reply_to = models.CharField(max_length=254, blank=True, default="")
    status = models.CharField(max_length=16, choices=EmailStatus.choices, default=EmailStatus.QUEUED)
    recipient_count = models.PositiveIntegerField()
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)
    recipients = models.ManyToManyField(Recipient, through="Delivery", related_name="sent_emails")
    send_at = models.DateTimeField(null=True, blank=True, help_text="Not handed to SendGrid before this; empty: now.")
    # The caller's labels (SendGrid categories) and key-value pairs (SendGrid custom_args);
    # SentEmailTag indexes the tags for the log's `tag` filter. The database defaults serve
    # inserts that name no such column: a web process still on the previous release during a
    # rolling deploy, and bench/seed.py.
    tags = models.JSONField(default=list, db_default=Value([], output_field=models.JSONField()), blank=True)
    metadata = models.JSONField(default=dict, db_default=Value({}, output_field=models.JSONField()), blank=True)
    sandbox = models.BooleanField(
        default=False, db_default=False, help_text="Sent in SendGrid's sandbox mode: delivered nothing."
    )
    unsubscribe = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Each recipient got a one-click unsubscribe link (List-Unsubscribe headers, RFC 8058).",
    )

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # The log: one sender's emails newest first, optionally within a time window.
            models.Index(fields=["sender", "-created", "-id"], name="sentemail_sender_created"),
            models.Index(fields=["sender", "status", "-created"], name="sentemail_sender_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class SentEmailTag(models.Model):
    """One tag of one email: what the log's `tag` filter looks up (a JSON list has no portable index)."""

    sent_email = models.ForeignKey(SentEmail, on_delete=models.CASCADE, related_name="+")
    tag = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "sent_email"], name="sentemailtag_tag_email")]

    def __str__(self) -> str:
        return f"{self.tag} on email #{self.sent_email_id}"


class AttachmentDisposition(models.TextChoices):
    ATTACHMENT = "attachment", "Attachment"
    INLINE = "inline", "Inline"  # shown in the HTML body where it references `cid:<content_id>`


class Attachment(models.Model):
    """A file every recipient of an email receives. Its content is kept with the email, so the
    relay and the embedded worker rebuild the work message from the database like the rest."""

    sent_email = models.ForeignKey(SentEmail, on_delete=models.CASCADE, related_name="attachments")
    position = models.PositiveSmallIntegerField(help_text="Its place in the send's list, from 0.")
    filename = models.CharField(max_length=255)
    type = models.CharField(max_length=255, help_text="MIME type.")
    disposition = models.CharField(max_length=16, choices=AttachmentDisposition.choices)
    content_id = models.CharField(max_length=100, blank=True, default="", help_text="Inline only.")
    size = models.PositiveIntegerField(help_text="Bytes, decoded.")
    content = models.BinaryField()

    class Meta:
        ordering = ["sent_email", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sent_email", "position"], name="attachment_email_position"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} on email #{self.sent_email_id}"


class Delivery(models.Model):
    """One recipient of one email, with its own status. Its id travels to SendGrid in custom_args."""

    sent_email = models.ForeignKey(SentEmail, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    reason = models.TextField(blank=True, default="", help_text="Why the last attempt failed.")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Kept apart from `status`: a delivery reported after an open still records when it happened.
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The provider that accepted it (EMAIL_PROVIDERS: sendgrid, smtp, eml); empty until sent.
    provider = models.CharField(max_length=20, blank=True, default="", db_default="")

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sent_email", "recipient"], name="delivery_unique_recipient"),
        ]
        indexes = [
            # The log's `recipient` filter: from an address to the emails sent to it.
            models.Index(fields=["recipient", "sent_email"], name="delivery_recipient_email"),
            # The log's `status` filter on a recipient-only status (bounced, opened...): its
            # emails without reading every delivery. Partial: the queued, sent and delivered
            # rows, most of the table, are not in it.
            models.Index(
                fields=["status", "sent_email"],
                name="delivery_status_email",
                condition=Q(status__in=RECIPIENT_ONLY_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        # Callers that list deliveries select_related("recipient").
        return f"{self.recipient.email} (email #{self.sent_email_id})"
