"""Input and output shapes of webhooks/endpoints/ (docs/outbound-webhooks.md)."""

from typing import Any

from rest_framework import serializers

from emailsystem.outbound.models import SUBSCRIBABLE, WebhookAttempt, WebhookEndpoint


class EventsField(serializers.ListField):
    """A non-empty list of subscribable event types; a bad one is named in the 400."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.CharField(), allow_empty=False, max_length=len(SUBSCRIBABLE), **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        unknown = [value for value in values if value not in SUBSCRIBABLE]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event type {unknown[0]!r}; the types are: {', '.join(SUBSCRIBABLE)}."
            )
        return sorted(set(values), key=SUBSCRIBABLE.index)


class EndpointInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = EventsField(help_text=f"Event types to receive: {', '.join(SUBSCRIBABLE)}.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = EventsField(required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, help_text="true re-enables an endpoint that was disabled.")


class EndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "enabled", "disabled_reason", "created"]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    """The endpoint with its signing secret: the answer to create and rotate-secret only."""

    secret = serializers.CharField(help_text="whsec_... Keep it: it is shown only here.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="message.event_type")
    webhook_id = serializers.CharField(source="message.webhook_id")

    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "event_type",
            "webhook_id",
            "attempt",
            "status_code",
            "duration_ms",
            "error",
            "next_retry_at",
            "created",
        ]
        read_only_fields = fields


class QueuedSerializer(serializers.Serializer):
    webhook_id = serializers.CharField()
    event_type = serializers.CharField()
