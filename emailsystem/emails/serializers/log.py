"""The log of sent emails and the suppression list, as the API returns them."""

import datetime
from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from emailsystem.emails.models import (
    Delivery,
    DeliveryEvent,
    SentEmail,
    Suppression,
)
from emailsystem.emails.serializers.attachments import AttachmentInfoSerializer


class DeliverySerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="recipient.email")

    class Meta:
        model = Delivery
        fields = ["email", "status", "attempts", "reason", "sent_at", "delivered_at", "updated", "provider"]


class DeliveryEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryEvent
        fields = ["event", "occurred_at", "detail"]


class DeliveryDetailSerializer(DeliverySerializer):
    """A recipient on the detail page: its status plus SendGrid's events about it, oldest first."""

    events = DeliveryEventSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "events"]


SENT_EMAIL_DETAIL_VIEW = "emails:sent-email-detail"


class SentEmailListSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name=SENT_EMAIL_DETAIL_VIEW)
    recipients = DeliverySerializer(source="deliveries", many=True, read_only=True)
    attachments = AttachmentInfoSerializer(many=True, read_only=True)

    class Meta:
        model = SentEmail
        fields = [
            "id",
            "url",
            "status",
            "send_at",
            "subject",
            "template",
            "template_name",
            "from_email",
            "reply_to",
            "recipient_count",
            "recipients",
            "created",
            "updated",
            "tags",
            "metadata",
            "sandbox",
            "unsubscribe",
            "attachments",
        ]


class SentEmailSerializer(SentEmailListSerializer):
    recipients = DeliveryDetailSerializer(source="deliveries", many=True, read_only=True)

    class Meta(SentEmailListSerializer.Meta):
        fields = [*SentEmailListSerializer.Meta.fields, "body", "html_body", "context"]


def sent_email_log_page(
    rows: list[dict[str, Any]],
    deliveries: dict[int, list[dict]],
    *,
    url_for: Callable[[int], str],
    attachments: dict[int, list[dict]] | None = None,
) -> list[dict[str, Any]]:
    """The list view's items from plain rows, exactly as SentEmailListSerializer renders them.

    `url_for(id)` is an email's detail URL (the serializer's `url`).

    Model instances and nested serializers took 12 ms of a 17 ms log page (in-process, median);
    from rows the page takes 7.5 ms of CPU. The fields and their order are the serializer's (a
    test holds the two to the same output); datetimes use DRF's own formatting.
    """
    moment = serializers.DateTimeField().to_representation

    def value(data: dict[str, Any], name: str) -> Any:
        item = data[name]
        return moment(item) if isinstance(item, datetime.datetime) else item

    def recipient(delivery: dict[str, Any]) -> dict[str, Any]:
        return {
            name: value(delivery, "recipient__email" if name == "email" else name)
            for name in DeliverySerializer.Meta.fields
        }

    def item(row: dict[str, Any], name: str) -> Any:
        if name == "recipients":
            return [recipient(delivery) for delivery in deliveries[row["id"]]]
        if name == "url":
            return url_for(row["id"])
        if name == "attachments":
            return (attachments or {}).get(row["id"], [])
        return value(row, name)

    return [{name: item(row, name) for name in SentEmailListSerializer.Meta.fields} for row in rows]


class SuppressionSerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="recipient.email", read_only=True)
    # The email whose event added the entry; null when that email was deleted (or an admin added it).
    email_id = serializers.IntegerField(source="delivery.sent_email_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Suppression
        fields = ["id", "email", "reason", "email_id", "created"]
        read_only_fields = fields
