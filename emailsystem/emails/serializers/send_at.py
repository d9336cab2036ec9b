"""Scheduled sends: the send's `send_at` field (an ISO 8601 datetime with an offset, in the future,
within SEND_AT_MAX_DAYS), and the cancel's input (none)."""

import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from emailsystem.emails.delivery.schedule import send_at_problem


class SendAtField(serializers.DateTimeField):
    """DRF's DateTimeField, except that a time without an offset is refused rather than read as UTC:
    a reminder meant for 09:00 in Berlin must not silently go out at 09:00 UTC."""

    def to_internal_value(self, value: Any) -> datetime.datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError("Give the time with an offset (2026-11-22T09:30:00Z or +01:00).")
        moment = super().to_internal_value(value)
        problem = send_at_problem(moment, now=timezone.now(), max_days=settings.SEND_AT_MAX_DAYS)
        if problem:
            raise serializers.ValidationError(problem)
        return moment


class SentEmailCancelSerializer(serializers.Serializer):
    """Canceling takes no input: the browsable API's cancel page is its button alone."""
