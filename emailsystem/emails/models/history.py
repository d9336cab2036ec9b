"""What happened to a sent email after its acceptance: SendGrid's events and our own steps."""

from django.db import models
from django.utils import timezone

from emailsystem.emails.models.sends import Delivery, SentEmail


class DeliveryEvent(models.Model):
    """One event about one delivery: the recipient's history. SendGrid's events, and the recipient's
    one-click unsubscribes (`sg_event_id` `one-click:<delivery id>`). `sg_event_id` makes redelivery harmless."""

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
