"""Email templates in the API."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers

from emailsystem.core.fields import StrictCharField
from emailsystem.emails.models import (
    EmailTemplate,
)
from emailsystem.emails.rendering import validate_no_line_breaks


class EmailTemplateSerializer(serializers.ModelSerializer):
    """Model validators run here too: a template that does not compile is refused with 400."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    class Meta:
        model = EmailTemplate
        fields = [
            "id",
            "name",
            "subject",
            "body",
            "html_body",
            "allow_missing_variables",
            "unsubscribe",
            "created",
            "modified",
        ]
        read_only_fields = ["id", "created", "modified"]
        # Bodies are kept exactly as written: DRF's default strip would drop a closing newline.
        extra_kwargs = {"body": {"trim_whitespace": False}, "html_body": {"trim_whitespace": False}}

    def validate_name(self, value: str) -> str:
        # A name is one line wherever it shows (the admin's lists, the log's template_name).
        try:
            validate_no_line_breaks(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None
        return value
