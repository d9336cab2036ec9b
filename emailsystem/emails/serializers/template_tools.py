"""Trying a template out: a preview's input and output, and a template check's."""

from rest_framework import serializers

from emailsystem.core.fields import StrictCharField
from emailsystem.emails.rendering import SUBJECT_MAX_LENGTH, validate_no_line_breaks
from emailsystem.emails.serializers.fields import ContextField
from emailsystem.emails.serializers.sending import SentEmailCreateSerializer


class TemplatePreviewSerializer(serializers.Serializer):
    """The context a send would give the template."""

    # SerializerMetaclass takes declared fields off the class, so `context` stays the serializer's property.
    context = ContextField(  # type: ignore[assignment]
        required=False,
        allow_null=True,
        initial={},
        style={"base_template": "textarea.html", "rows": 3},
        help_text='Values for the template\'s {{ placeholders }}, a JSON object such as {"name": "Ada"}.',
    )

    # The send's own rule: a JSON object, nested at most CONTEXT_MAX_DEPTH levels, no NUL.
    validate_context = SentEmailCreateSerializer.validate_context


class RenderedEmailSerializer(serializers.Serializer):
    """The template rendered as a send would store and send it."""

    subject = serializers.CharField()
    body = serializers.CharField()
    html_body = serializers.CharField()


class TemplateSourceSerializer(serializers.Serializer):
    """A template's text to check, as the template endpoints take it."""

    subject = StrictCharField(max_length=SUBJECT_MAX_LENGTH, validators=[validate_no_line_breaks])
    # Kept exactly as written, as the template endpoints keep them.
    body = StrictCharField(trim_whitespace=False, style={"base_template": "textarea.html"})
    html_body = StrictCharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, style={"base_template": "textarea.html"}
    )


class TemplateVariablesSerializer(serializers.Serializer):
    """The context variables a template uses (see the docs for what "uses" means)."""

    variables = serializers.ListField(
        child=serializers.CharField(), help_text="Every part's variables by dotted path, sorted."
    )
    parts = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="subject, body and html_body: each part's variables, sorted.",
    )
