"""Outbound webhooks: users' endpoints, the messages recorded for them, and each delivery attempt."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventType(models.TextChoices):
    """What a message reports. `endpoint.test` comes only from the test action; the others are subscribable."""

    QUEUED = "email.queued"
    SENT = "email.sent"
    DELIVERED = "email.delivered"
    DEFERRED = "email.deferred"
    BOUNCED = "email.bounced"
    DROPPED = "email.dropped"
    FAILED = "email.failed"
    SUPPRESSED = "email.suppressed"
    OPENED = "email.opened"
    CLICKED = "email.clicked"
    SPAM_REPORTED = "email.spam_reported"
    UNSUBSCRIBED = "email.unsubscribed"
    TEST = "endpoint.test"


SUBSCRIBABLE = [value for value in EventType.values if value != EventType.TEST]


class WebhookEndpoint(models.Model):
    """A URL of a user's that receives the events it subscribes to, signed with its secret.

    The secrets are stored encrypted (outbound/signing.py): the service must keep them to sign.
    After a rotation the previous secret signs too until `previous_secret_expires`.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    events = models.JSONField(default=list, help_text="The event types sent to this endpoint.")
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, default="")
    # The first failed attempt since the last success; None while the endpoint answers.
    failing_since = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user"], name="whendpoint_enabled_user", condition=Q(enabled=True))]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"


class MessageState(models.TextChoices):
    PENDING = "pending", "Pending"  # not delivered yet: waiting for an attempt or a retry
    DELIVERED = "delivered", "Delivered"  # an attempt got a 2xx
    FAILED = "failed", "Failed"  # every attempt failed
    SKIPPED = "skipped", "Skipped"  # its endpoint was disabled before it could be delivered


class WebhookMessage(models.Model):
    """One event for one endpoint: its signed body, and the outbox of messages not yet published.

    Written in the transaction of the change it reports. `publish_after` is the outbox: set while
    the message still has to reach RabbitMQ, NULL once the broker has it. The process that commits
    publishes it at once; the relay publishes rows left over after `publish_after` (outbound/publishing.py).
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    # Standard Webhooks' webhook-id: the same on every attempt of this message.
    webhook_id = models.CharField(max_length=40, unique=True)
    body = models.TextField(help_text="The JSON body, exactly as signed and sent.")
    state = models.CharField(max_length=16, choices=MessageState.choices, default=MessageState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    publish_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(
                fields=["publish_after"], name="whmessage_unpublished", condition=Q(publish_after__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt to deliver a message: what the endpoint answered, or why nothing came back."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempt_rows")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first attempt of the message.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no retry follows this attempt.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["endpoint", "-created", "-id"], name="whattempt_endpoint_created")]

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.message_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
