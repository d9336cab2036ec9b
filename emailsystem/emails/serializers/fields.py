"""The send's input fields: recipients, context, subject and template, as JSON and as the browsable API's form."""

import re
from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import iter_options
from rest_framework.utils import html
from rest_framework.utils.serializer_helpers import BoundField, JSONBoundField

from emailsender.addresses import LINE_BREAK, address_problem
from emailsystem.core.fields import StrictCharField
from emailsystem.core.plain_sql import instance_get
from emailsystem.emails.models import EmailTemplate
from emailsystem.emails.rendering import SUBJECT_MAX_LENGTH, validate_no_line_breaks
from emailsystem.users.models import normalize_email_address


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


class ListAsTextBoundField(BoundField):
    """A list field as the browsable API's form shows it in one box: the items joined by
    `separator` (as typed after a refused send, so one can be corrected and the form posted
    again), and each error naming its item instead of its position in the list (`item` and the
    position number when the position is past the list)."""

    separator = "\n"
    item = "Item"

    def __init__(self, field: serializers.Field, value: Any, errors: Any, prefix: str = "") -> None:
        items = value if isinstance(value, list) else []
        if isinstance(value, list):
            value = self.separator.join(str(one) for one in value)
        if isinstance(errors, dict):  # {position: [messages]} from the list's child field
            errors = [
                f"{items[position] if position < len(items) else f'{self.item} {position + 1}'}: {message}"
                for position, messages in errors.items()
                for message in messages
            ]
        super().__init__(field, value, errors, prefix)


class RecipientLinesBoundField(ListAsTextBoundField):
    """Recipients one per line."""

    item = "Address"


class TagsBoundField(ListAsTextBoundField):
    """Tags in one line, separated by commas."""

    separator = ", "
    item = "Tag"


class JSONBoxBoundField(JSONBoundField):
    """A dict field as the browsable API's form shows it: a box of JSON (as typed when it was
    refused), and each error naming its key, where DRF's form would print only the keys."""

    def __init__(self, field: serializers.Field, value: Any, errors: Any, prefix: str = "") -> None:
        if isinstance(errors, dict):  # {key: [messages]}
            errors = [f"{key}: {message}" for key, messages in errors.items() for message in messages]
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


def context_shape(value: Any) -> tuple[int, bool]:
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
            children: Iterable[Any]
            if isinstance(item, dict):
                nul = nul or any("\0" in key for key in item)
                children = item.values()
            else:
                children = item
            pending.extend((child, level + 1) for child in children)
    return deepest, nul


_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
# What the browsable API's forms pre-fill for an empty field; treated as "not given".
UNSET_VALUES: tuple[Any, ...] = (None, "", {})


class TemplateField(serializers.PrimaryKeyRelatedField):
    """An email-template id, looked up with one plain SELECT.

    It runs on every send: the ORM's `.get()` takes 0.37-0.42 ms, the plain SELECT 0.11-0.12 ms.
    The queryset still lists the choices in the browsable API.
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


class TemplateDefaultBooleanField(serializers.BooleanField):
    """true, false, or null (or absent): the template's value. In the browsable API's form a
    select of ----, Yes and No, since a checkbox cannot say "as the template"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, default=None, style={"base_template": "select.html"}, **kwargs)

    def iter_options(self) -> Any:
        return iter_options({True: "Yes", False: "No"})
