"""A batch send's input and its 202 answer."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from emailsystem.emails.serializers.sending import SendAcceptedSerializer, SentEmailCreateSerializer


class BatchMessagesField(serializers.ListField):
    """A list of sends; the limits are read per request, so settings changes apply at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=SentEmailCreateSerializer(), allow_empty=False, **kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and len(data) > settings.BATCH_MAX_MESSAGES:
            raise serializers.ValidationError(
                f"At most {settings.BATCH_MAX_MESSAGES} messages per batch (got {len(data)})."
            )
        return super().to_internal_value(data)


class BatchSendSerializer(serializers.Serializer):
    """Many sends in one request: each message is a send's body. Any invalid message refuses
    the whole batch, with its errors under its index (`{"messages": {"3": {"recipients": [...]}}}`)."""

    messages = BatchMessagesField(help_text="1 to BATCH_MAX_MESSAGES sends, each as POST sent-email/ takes it.")


class BatchAcceptedSerializer(serializers.Serializer):
    """The 202 answer to a batch: each message's send answer, in the request's order."""

    results = SendAcceptedSerializer(many=True)
