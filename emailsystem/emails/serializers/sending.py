"""A send's input and its 202 answer."""

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BoundField

from emailsystem.core.fields import RAW_DATA_ONLY_STYLE, StrictCharField
from emailsystem.emails.models import (
    DeliveryStatus,
    EmailStatus,
    EmailTemplate,
)
from emailsystem.emails.serializers.attachments import AttachmentListField
from emailsystem.emails.serializers.fields import (
    CONTEXT_MAX_DEPTH,
    UNSET_VALUES,
    ContextField,
    JSONBoxBoundField,
    RecipientLinesBoundField,
    RecipientListField,
    SubjectField,
    TagsBoundField,
    TemplateDefaultBooleanField,
    TemplateField,
    context_shape,
)
from emailsystem.emails.serializers.labels import MetadataField, TagListField
from emailsystem.emails.serializers.send_at import SendAtField

SEND_ACCEPTED_MESSAGE = "Email sent. It might take a while to deliver."
# A link mailed to people must name the host they reach; the API request's own host may be an
# internal name (docs/sending/unsubscribe.md).
UNSUBSCRIBE_NEEDS_BASE_URL = (
    "Unsubscribe links need the service's public address, and PUBLIC_BASE_URL is not set: ask the operator "
    'to set it, or send with "unsubscribe": false.'
)

# The browsable API's form shows these lists and dicts in one box each.
_FORM_BOXES: dict[str, type[BoundField]] = {
    "recipients": RecipientLinesBoundField,
    "tags": TagsBoundField,
    "metadata": JSONBoxBoundField,
}


class SentEmailCreateSerializer(serializers.Serializer):
    """A send: recipients plus either a template (with context) or an ad hoc subject and body."""

    recipients = RecipientListField(
        allow_empty=False,
        help_text="In JSON a list of addresses; in this form one per line or separated by commas. "
        "Duplicates (in any letter case) are sent to once.",
    )
    template = TemplateField(
        queryset=EmailTemplate.objects.all(), required=False, allow_null=True, help_text="An email-template id."
    )
    # SerializerMetaclass takes declared fields off the class, so `context` stays the serializer's property.
    context = ContextField(  # type: ignore[assignment]
        required=False,
        allow_null=True,
        initial={},
        style={"base_template": "textarea.html", "rows": 3},
        help_text='Values for the template\'s {{ placeholders }}, a JSON object such as {"name": "Ada"}.',
    )
    subject = SubjectField(required=False, allow_blank=True, help_text="Ad hoc only; one line.")
    # Bodies are sent exactly as written: DRF's default strip would drop a closing newline.
    body = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="Ad hoc only.",
    )
    html_body = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="Ad hoc only.",
    )
    send_at = SendAtField(
        required=False,
        allow_null=True,
        # A text box: the browser's datetime-local input sends no offset, which is refused.
        style={"input_type": "text", "placeholder": "2026-11-23T09:00:00+01:00"},
        help_text="Send no earlier than this: ISO 8601 with an offset, in the future, at most SEND_AT_MAX_DAYS "
        "(default 30) ahead. Until then the email is `scheduled` and can be canceled. Empty: now.",
    )
    tags = TagListField(
        required=False, help_text="Up to 10 labels of letters, digits and _ . : - to find the email by (?tag=)."
    )
    metadata = MetadataField(
        required=False, help_text="Up to 10 string keys to string values, stored and passed to SendGrid."
    )

    sandbox = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Validate, render, store and hand the email to SendGrid in its sandbox mode, which delivers "
        "nothing: recipients end `sandboxed`, and the daily quota is not charged.",
    )

    attachments = AttachmentListField(
        required=False,
        style=RAW_DATA_ONLY_STYLE,
        help_text="Files every recipient receives: filename, content (base64), type, disposition, content_id.",
    )

    unsubscribe = TemplateDefaultBooleanField(
        required=False,
        help_text="Give each recipient a one-click unsubscribe link (List-Unsubscribe and List-Unsubscribe-Post "
        "headers, RFC 8058); a recipient who uses it joins your suppression list. Absent or null: the template's "
        "setting (no link for ad hoc content). Needs the service's PUBLIC_BASE_URL.",
    )

    def __getitem__(self, key: str) -> BoundField:
        bound = super().__getitem__(key)
        # Only the browsable API's form reads fields this way.
        kind = _FORM_BOXES.get(key)
        return kind(bound._field, bound.value, bound.errors, bound._prefix) if kind else bound

    def validate_recipients(self, value: list[str]) -> list[str]:
        unique = list(dict.fromkeys(value))
        if len(unique) > settings.SEND_MAX_RECIPIENTS:
            raise serializers.ValidationError(
                f"At most {settings.SEND_MAX_RECIPIENTS} recipients per send (got {len(unique)})."
            )
        return unique

    def validate_context(self, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError(
                f'Expected a JSON object such as {{"name": "Ada"}} but got type "{type(value).__name__}".'
            )
        depth, nul = context_shape(value)
        if depth > CONTEXT_MAX_DEPTH:
            raise serializers.ValidationError(f"A context may nest objects and lists {CONTEXT_MAX_DEPTH} levels deep.")
        if nul:
            raise serializers.ValidationError("Context keys and values must not contain NUL characters.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = {name: value for name, value in attrs.items() if value not in UNSET_VALUES}
        ad_hoc = [name for name in ("subject", "body", "html_body") if name in attrs]
        template = attrs.get("template")
        if template is not None:
            if ad_hoc:
                raise serializers.ValidationError(
                    {name: ["Give either a template or an ad hoc subject and body, not both."] for name in ad_hoc}
                )
        else:
            errors = {
                name: ["This field is required without a template."]
                for name in ("subject", "body")
                if name not in attrs
            }
            if "context" in attrs:
                errors["context"] = ["A context only applies to a template; ad hoc content is sent as written."]
            if errors:
                raise serializers.ValidationError(errors)
        # Always a bool from here on: the send's own value, else the template's.
        attrs["unsubscribe"] = attrs.get("unsubscribe", template is not None and template.unsubscribe)
        if attrs["unsubscribe"] and not settings.PUBLIC_BASE_URL:
            raise serializers.ValidationError({"unsubscribe": [UNSUBSCRIBE_NEEDS_BASE_URL]})
        return attrs


class AcceptedRecipientSerializer(serializers.Serializer):
    email = serializers.CharField(source="address")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)


class SendAcceptedSerializer(serializers.Serializer):
    """The 202 answer to a send, built from its SendReceipt (a replay's too)."""

    message = serializers.CharField(default=SEND_ACCEPTED_MESSAGE)
    id = serializers.IntegerField(source="email_id")
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    created = serializers.DateTimeField()
    recipients = AcceptedRecipientSerializer(many=True)
