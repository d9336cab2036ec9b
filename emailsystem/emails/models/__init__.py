"""The emails app's models, one module per job; every model and choice is importable from here."""

from emailsystem.emails.models.history import DeliveryEvent, HistoryKind, SentEmailHistory
from emailsystem.emails.models.outbox import Lane, OutboxMessage
from emailsystem.emails.models.safeguards import DailySendCount, IdempotencyRecord, Suppression, SuppressionReason
from emailsystem.emails.models.sends import (
    RECIPIENT_ONLY_STATUSES,
    Attachment,
    AttachmentDisposition,
    Delivery,
    DeliveryStatus,
    EmailStatus,
    Recipient,
    SentEmail,
    SentEmailTag,
)
from emailsystem.emails.models.templates import EmailTemplate

__all__ = [
    "RECIPIENT_ONLY_STATUSES",
    "Attachment",
    "AttachmentDisposition",
    "DailySendCount",
    "Delivery",
    "DeliveryEvent",
    "DeliveryStatus",
    "EmailStatus",
    "EmailTemplate",
    "HistoryKind",
    "IdempotencyRecord",
    "Lane",
    "OutboxMessage",
    "Recipient",
    "SentEmail",
    "SentEmailHistory",
    "SentEmailTag",
    "Suppression",
    "SuppressionReason",
]
