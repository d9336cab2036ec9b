"""The emails app's serializers: templates, sending, and the log."""

from emailsystem.emails.serializers.log import (
    SENT_EMAIL_DETAIL_VIEW,
    DeliveryDetailSerializer,
    DeliveryEventSerializer,
    DeliverySerializer,
    SentEmailListSerializer,
    SentEmailSerializer,
    SuppressionSerializer,
    sent_email_log_page,
)
from emailsystem.emails.serializers.send_at import SentEmailCancelSerializer
from emailsystem.emails.serializers.sending import (
    SEND_ACCEPTED_MESSAGE,
    SendAcceptedSerializer,
    SentEmailCreateSerializer,
)
from emailsystem.emails.serializers.templates import EmailTemplateSerializer

__all__ = [
    "SEND_ACCEPTED_MESSAGE",
    "SENT_EMAIL_DETAIL_VIEW",
    "DeliveryDetailSerializer",
    "DeliveryEventSerializer",
    "DeliverySerializer",
    "EmailTemplateSerializer",
    "SendAcceptedSerializer",
    "SentEmailCancelSerializer",
    "SentEmailCreateSerializer",
    "SentEmailListSerializer",
    "SentEmailSerializer",
    "SuppressionSerializer",
    "sent_email_log_page",
]
