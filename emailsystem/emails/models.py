from django.conf import settings
from django.db import models
from django.db.models import Value
from django.utils import timezone

from emailsystem.emails.rendering import SUBJECT_MAX_LENGTH, validate_no_line_breaks, validate_template_syntax


class EmailTemplate(models.Model):
    """An admin-managed message. Subject and bodies are Django template syntax, rendered per send."""

    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(
        max_length=SUBJECT_MAX_LENGTH, validators=[validate_template_syntax, validate_no_line_breaks]
    )
    body = models.TextField(validators=[validate_template_syntax], help_text="Plain-text body.")
    html_body = models.TextField(
        blank=True, default="", validators=[validate_template_syntax], help_text="Optional HTML body."
    )
    allow_missing_variables = models.BooleanField(
        default=False,
        help_text="Off: a send whose context lacks a variable the template prints is refused (400). "
        "On: missing variables render as empty text.",
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
        ]

    def __str__(self) -> str:
        # Callers that list deliveries select_related("recipient").
        return f"{self.recipient.email} (email #{self.sent_email_id})"


class DeliveryEvent(models.Model):
    """One SendGrid event about one delivery: the recipient's history. `sg_event_id` makes redelivery harmless."""

    sg_event_id = models.CharField(max_length=100, unique=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=32, help_text="SendGrid's event name: delivered, open, bounce...")
    occurred_at = models.DateTimeField(help_text="When SendGrid says it happened.")
    received_at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=1000, blank=True, default="", help_text="Reason, response or URL.")

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["delivery", "occurred_at"], name="deliveryevent_delivery")]

    def __str__(self) -> str:
        return f"{self.event} for delivery #{self.delivery_id}"


class HistoryKind(models.TextChoices):
    """What happened to a sent email on our side, between its acceptance and SendGrid's events."""

    PUBLISHED = "published", "Published to the broker"  # its outbox row was confirmed by RabbitMQ
    TAKEN = "taken", "Taken by the in-process worker"  # embedded mode: first claim of its outbox row
    ATTEMPT = "attempt", "Delivery attempt"  # one call to SendGrid and its outcome (a sender's result)
    REQUEUED = "requeued", "Requeued"  # an admin put failed recipients back in the queue
    CANCELED = "canceled", "Canceled"  # its sender canceled it while it was scheduled


class SentEmailHistory(models.Model):
    """One step of a sent email's way to SendGrid, for its timeline in the admin.

    Acceptance is the email's `created`, and SendGrid's events are DeliveryEvent rows; this
    records what lies between. Each row covers the deliveries in `delivery_ids` (None: every
    delivery still queued at the time), so an attempt for 1,000 recipients is one row.
    """

    sent_email = models.ForeignKey(SentEmail, on_delete=models.CASCADE, related_name="history")
    kind = models.CharField(max_length=16, choices=HistoryKind.choices)
    at = models.DateTimeField(default=timezone.now, help_text="Attempts: the sender's clock when SendGrid answered.")
    delivery_ids = models.JSONField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Attempts: which one (1 = first).")
    outcome = models.CharField(max_length=16, blank=True, default="", help_text="Attempts: sent, retrying or failed.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Attempts: SendGrid's HTTP status.")
    reason = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "sent email history"
        ordering = ["at", "id"]
        constraints = [
            # A result redelivered to the results process has the same email, time and attempt:
            # its insert skips the row. Rows without an attempt (NULL) never conflict. Also the
            # index the timeline reads one email's rows by.
            models.UniqueConstraint(fields=["sent_email", "at", "attempt"], name="sentemailhistory_attempt_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of email #{self.sent_email_id} at {self.at.isoformat()}"


class SuppressionReason(models.TextChoices):
    BOUNCE = "bounce", "Hard bounce"
    SPAM_REPORT = "spamreport", "Spam report"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class Suppression(models.Model):
    """An address a user's sends skip: it hard-bounced, reported spam or unsubscribed.

    Per sending user, not global (README, "Suppression list"): one team's unsubscribe must not
    silence another team's password resets, and no user learns about another's recipients.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suppressions")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="suppressions")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="What caused it."
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            # Also the index the send path's suppression check uses (recipients.recipients_resolve).
            models.UniqueConstraint(fields=["user", "recipient"], name="suppression_user_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient.email} for user {self.user_id} ({self.reason})"


class DailySendCount(models.Model):
    """Recipients a user has sent to on one UTC day; the quota is checked against it atomically."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="dailysendcount_user_day")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.day}: {self.count}"


class IdempotencyRecord(models.Model):
    """The first answer to a send made with an Idempotency-Key, replayed for repeats within the TTL."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    response = models.JSONField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key}"


class OutboxMessage(models.Model):
    """Deliveries waiting to be handed to the sender: the transactional outbox.

    Written in the same transaction as the send (or the admin's requeue), so a committed
    send always has a row here until the broker confirmed it (or, in embedded mode, until
    the in-process worker finished it). `available_at` is when a relay or worker may claim
    it; claiming pushes it into the future (a lease), so a crashed claimer's row comes back.
    """

    sent_email = models.ForeignKey(SentEmail, on_delete=models.CASCADE, related_name="+")
    # None: every delivery of the email still queued. A list: just these (a requeue).
    delivery_ids = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed sends (embedded mode).")
    last_error = models.TextField(blank=True, default="")
    # The API request (or admin action) that wrote the row, so a send the relay or the embedded
    # worker handles later still logs and carries it (README, "Request ids"). None for rows
    # written outside a request: NULL, like the context variable it is read from, rather than "".
    request_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001

    class Meta:
        indexes = [models.Index(fields=["available_at"], name="outbox_available_at")]

    def __str__(self) -> str:
        return f"outbox #{self.pk} for email #{self.sent_email_id}"
