"""What a send is checked against: the sender's suppression list, daily quota and idempotency keys."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from emailsystem.emails.models.sends import Delivery, Recipient


class SuppressionReason(models.TextChoices):
    BOUNCE = "bounce", "Hard bounce"
    SPAM_REPORT = "spamreport", "Spam report"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class Suppression(models.Model):
    """An address a user's sends skip: it hard-bounced, reported spam or unsubscribed.

    Per sending user, not global (docs/delivery/suppression.md): one team's unsubscribe must not
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
