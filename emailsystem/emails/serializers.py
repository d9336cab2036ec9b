import datetime
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html
from rest_framework.utils.serializer_helpers import BoundField

from emailsender.addresses import LINE_BREAK, address_problem
from emailsystem.core.fields import StrictCharField
from emailsystem.core.plain_sql import instance_get
from emailsystem.emails.models import (
    SUBJECT_MAX_LENGTH,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    EmailStatus,
    EmailTemplate,
    SentEmail,
    Suppression,
)
from emailsystem.emails.rendering import validate_no_line_breaks
from emailsystem.users.models import normalize_email_address

SEND_ACCEPTED_MESSAGE = "Email sent. It might take a while to deliver."


class EmailTemplateSerializer(serializers.ModelSerializer):
    """Model validators run here too: a template that does not compile is refused with 400."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "subject", "body", "html_body", "allow_missing_variables", "created", "modified"]
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


class RecipientAddressField(serializers.CharField):
    """One recipient address, returned lowercased: one the sender can use (emailsender.addresses,
    the rule the sender applies too)."""

    def __init__(self, **kwargs: Any) -> None:
        # Keep whitespace for the check below: a trailing "\r\n" must be refused, not stripped.
        super().__init__(max_length=254, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if any(char in data for char in "\r\n\0"):
            raise serializers.ValidationError(LINE_BREAK, code="line_break")
        address = normalize_email_address(super().to_internal_value(data))
        problem = address_problem(address)
        if problem is not None:
            raise serializers.ValidationError(problem, code="invalid_email")
        return address


# No line breaks or NUL in a single-line value (ECMA and Python regex alike).
SINGLE_LINE_PATTERN = "^[^\\r\\n\\x00]*$"


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "format": "email", "maxLength": 254, "pattern": SINGLE_LINE_PATTERN},
    }
)
class RecipientListField(serializers.ListField):
    """A JSON list of addresses. In an HTML form (the browsable API) a textarea of addresses
    separated by commas or new lines, since HTML has no list input."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=RecipientAddressField(), style={"base_template": "textarea.html", "rows": 4}, **kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            return [
                item
                for value in dictionary.getlist(self.field_name)
                for item in _ADDRESS_SEPARATORS.split(value)
                if item
            ]
        return super().get_value(dictionary)


class RecipientLinesBoundField(BoundField):
    """Recipients as the browsable API's form shows them after a refused send: the addresses one
    per line (as typed, so one can be corrected and the form posted again), and each error
    naming its address instead of its position in the list."""

    def __init__(self, field: serializers.Field, value: Any, errors: Any, prefix: str = "") -> None:
        addresses = value if isinstance(value, list) else []
        if isinstance(value, list):
            value = "\n".join(str(address) for address in value)
        if isinstance(errors, dict):  # {position: [messages]} from the list's child field
            errors = [
                f"{addresses[position] if position < len(addresses) else f'Address {position + 1}'}: {message}"
                for position, messages in errors.items()
                for message in messages
            ]
        super().__init__(field, value, errors, prefix)


@extend_schema_field({"type": "object", "nullable": True, "additionalProperties": {}})
class ContextField(serializers.JSONField):
    """A JSON object (validate_context refuses anything else); documented as one.

    In a form the context arrives as text that DRF decodes with json.loads, which raises
    RecursionError (not ValueError, which DRF handles) on deep nesting.
    """

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except RecursionError:
            raise serializers.ValidationError(
                f"A context may nest objects and lists {CONTEXT_MAX_DEPTH} levels deep."
            ) from None


@extend_schema_field({"type": "string", "maxLength": SUBJECT_MAX_LENGTH, "pattern": SINGLE_LINE_PATTERN})
class SubjectField(StrictCharField):
    """An ad hoc subject: one header line, so no CR, LF or NUL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=SUBJECT_MAX_LENGTH, validators=[validate_no_line_breaks], **kwargs)


# Templates read a few levels at most; deeper contexts only cost time to store and render.
CONTEXT_MAX_DEPTH = 32


def _shape(value: Any) -> tuple[int, bool]:
    """(how deeply `value` nests dicts and lists, whether any key or string holds a NUL).

    Stops descending past the depth limit, so a hostile context costs little to inspect.
    """
    pending, deepest, nul = [(value, 1)], 0, False
    while pending:
        item, level = pending.pop()
        if isinstance(item, str):
            nul = nul or "\0" in item
        elif isinstance(item, dict | list) and level <= CONTEXT_MAX_DEPTH + 1:
            deepest = max(deepest, level)
            if isinstance(item, dict):
                nul = nul or any("\0" in key for key in item)
                children = item.values()
            else:
                children = item
            pending.extend((child, level + 1) for child in children)
    return deepest, nul


_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
# What the browsable API's forms pre-fill for an empty field; treated as "not given".
_UNSET = (None, "", {})


class TemplateField(serializers.PrimaryKeyRelatedField):
    """An email-template id, looked up with one plain SELECT.

    It runs on every send, where the ORM's `.get()` cost three times the query itself
    (bench/profiles/README.md); the queryset still lists the choices in the browsable API.
    """

    def to_internal_value(self, data: Any) -> EmailTemplate:
        try:
            if isinstance(data, bool):
                raise TypeError
            template = instance_get(EmailTemplate, data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if template is None:
            self.fail("does_not_exist", pk_value=data)
        return template


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
    context = ContextField(
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

    def __getitem__(self, key: str) -> BoundField:
        bound = super().__getitem__(key)
        if key == "recipients":  # only the browsable API's form reads fields this way
            return RecipientLinesBoundField(bound._field, bound.value, bound.errors, bound._prefix)
        return bound

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
        depth, nul = _shape(value)
        if depth > CONTEXT_MAX_DEPTH:
            raise serializers.ValidationError(f"A context may nest objects and lists {CONTEXT_MAX_DEPTH} levels deep.")
        if nul:
            raise serializers.ValidationError("Context keys and values must not contain NUL characters.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = {name: value for name, value in attrs.items() if value not in _UNSET}
        ad_hoc = [name for name in ("subject", "body", "html_body") if name in attrs]
        if attrs.get("template") is not None:
            if ad_hoc:
                raise serializers.ValidationError(
                    {name: ["Give either a template or an ad hoc subject and body, not both."] for name in ad_hoc}
                )
            return attrs
        errors = {
            name: ["This field is required without a template."] for name in ("subject", "body") if name not in attrs
        }
        if "context" in attrs:
            errors["context"] = ["A context only applies to a template; ad hoc content is sent as written."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DeliverySerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="recipient.email")

    class Meta:
        model = Delivery
        fields = ["email", "status", "attempts", "reason", "sent_at", "delivered_at", "updated"]


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

    class Meta:
        model = SentEmail
        fields = [
            "id",
            "url",
            "status",
            "subject",
            "template",
            "template_name",
            "from_email",
            "reply_to",
            "recipient_count",
            "recipients",
            "created",
            "updated",
        ]


class SentEmailSerializer(SentEmailListSerializer):
    recipients = DeliveryDetailSerializer(source="deliveries", many=True, read_only=True)

    class Meta(SentEmailListSerializer.Meta):
        fields = [*SentEmailListSerializer.Meta.fields, "body", "html_body", "context"]


class AcceptedRecipientSerializer(serializers.Serializer):
    email = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)


class SendAcceptedSerializer(serializers.Serializer):
    """The documented shape of the 202 answer (send_accepted_answer builds it)."""

    message = serializers.CharField(default=SEND_ACCEPTED_MESSAGE)
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    created = serializers.DateTimeField()
    recipients = AcceptedRecipientSerializer(many=True)


def send_accepted_answer(sent_email: SentEmail) -> dict[str, Any]:
    """The 202 answer to a send (also what an Idempotency-Key replay returns)."""
    return {
        "message": SEND_ACCEPTED_MESSAGE,
        "id": sent_email.pk,
        "status": sent_email.status,
        "created": serializers.DateTimeField().to_representation(sent_email.created),
        "recipients": [
            {"email": address, "status": DeliveryStatus(status).value}
            for address, _delivery_id, status in sent_email.created_deliveries  # type: ignore[attr-defined]
        ],
    }


def sent_email_log_page(
    rows: list[dict[str, Any]], deliveries: dict[int, list[dict]], *, url_for: Callable[[int], str]
) -> list[dict[str, Any]]:
    """The list view's items from plain rows, exactly as SentEmailListSerializer renders them.

    `url_for(id)` is an email's detail URL (the serializer's `url`).

    Building model instances and running nested serializers cost two thirds of a log request
    (bench/profiles/README.md). The fields and their order are the serializer's (a test holds
    the two to the same output); datetimes use DRF's own formatting.
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
