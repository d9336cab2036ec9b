"""The transactional outbox: deliveries waiting to be handed to the sender."""

from django.db import models
from django.utils import timezone

from emailsender import topology
from emailsystem.emails.models.sends import SentEmail


class Lane(models.TextChoices):
    """The work queue a row's message is published to: its routing key (emailsender.topology).
    The rule that picks one is in delivery/lanes.py."""

    NORMAL = topology.WORK_KEY, "Normal"
    BULK = topology.BULK_KEY, "Bulk"


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
    # worker handles later still logs and carries it (docs/observability.md, "Request ids"). None for rows
    # written outside a request: NULL, like the context variable it is read from, rather than "".
    request_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # Chosen with the send and kept, so the relay and a scheduled send publish to the same lane.
    # The database default lets a web process that predates the column go on inserting rows.
    lane = models.CharField(max_length=8, choices=Lane.choices, default=Lane.NORMAL, db_default=Lane.NORMAL)

    class Meta:
        indexes = [models.Index(fields=["available_at"], name="outbox_available_at")]

    def __str__(self) -> str:
        return f"outbox #{self.pk} for email #{self.sent_email_id}"
