"""A send's labels: `tags` (SendGrid categories) and `metadata` (SendGrid custom_args).

Their limits sit inside SendGrid's: at most 10 categories of at most 255 characters, and
custom_args of string values within 10,000 bytes per personalization (10 keys of 50 plus
values of 500 stay far below it, beside the ids the service adds).
"""

import json
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from emailsystem.core.fields import StrictCharField

TAGS_MAX = 10
TAG_MAX_LENGTH = 50
TAG_PATTERN = "^[A-Za-z0-9_.:-]+$"
METADATA_MAX_KEYS = 10
METADATA_KEY_MAX_LENGTH = 50
METADATA_VALUE_MAX_LENGTH = 500
# The ids the sender puts in every personalization's custom_args; metadata cannot shadow them.
RESERVED_METADATA_KEYS = frozenset({"email_id", "delivery_id"})

_TAG = re.compile(TAG_PATTERN)
_TAG_SEPARATORS = re.compile(r"[\s,]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TagField(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=TAG_MAX_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not _TAG.match(value):
            raise serializers.ValidationError(
                "A tag holds only letters, digits and _ . : - (no spaces).", code="invalid_tag"
            )
        return value


@extend_schema_field(
    {
        "type": "array",
        "maxItems": TAGS_MAX,
        "items": {"type": "string", "minLength": 1, "maxLength": TAG_MAX_LENGTH, "pattern": TAG_PATTERN},
    }
)
class TagListField(serializers.ListField):
    """Up to TAGS_MAX tags; a repeated tag counts once. In an HTML form (the browsable API) one
    text box of tags separated by commas or spaces, which no tag holds."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("style", {"base_template": "input.html"})
        super().__init__(child=TagField(), max_length=TAGS_MAX, **kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            tags = [tag for value in dictionary.getlist(self.field_name) for tag in _TAG_SEPARATORS.split(value) if tag]
            return tags or empty
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> list[str]:
        return list(dict.fromkeys(super().to_internal_value(data)))


class MetadataValueField(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=METADATA_VALUE_MAX_LENGTH, trim_whitespace=False, allow_blank=True, **kwargs)


class FormJSON(str):
    """JSON text typed into an HTML form's box: decoded by the field, and shown again as typed."""

    is_json_string = True  # what DRF's JSONBoundField reads to show the text unchanged


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX_LENGTH},
    }
)
class MetadataField(serializers.DictField):
    """Up to METADATA_MAX_KEYS string keys (1 to METADATA_KEY_MAX_LENGTH characters, no control
    characters, not a reserved id name) to strings of at most METADATA_VALUE_MAX_LENGTH. In an
    HTML form (the browsable API) a box of JSON, as the send's context is."""

    # Braces doubled: DRF formats error messages with str.format.
    default_error_messages = {"not_json": 'Enter a JSON object such as {{"order": "A-1"}}.'}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("style", {"base_template": "textarea.html", "rows": 3})
        super().__init__(child=MetadataValueField(), **kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            text = dictionary.get(self.field_name)
            return FormJSON(text) if text.strip() else empty
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, FormJSON):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):  # RecursionError: nesting too deep for Python's decoder
                self.fail("not_json")
        value = super().to_internal_value(data)
        if len(value) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys (got {len(value)}).")
        errors = {key: [problem] for key in value if (problem := _key_problem(key))}
        if errors:
            raise serializers.ValidationError(errors)
        return value


def _key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= METADATA_KEY_MAX_LENGTH:
        return f"A metadata key has 1 to {METADATA_KEY_MAX_LENGTH} characters."
    if _CONTROL.search(key) or any("\ud800" <= char <= "\udfff" for char in key):
        return "A metadata key holds no control characters."
    if key in RESERVED_METADATA_KEYS:
        return f"{key!r} is reserved: the service sends its own ids under it."
    return None
