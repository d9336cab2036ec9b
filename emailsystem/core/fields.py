"""Serializer fields shared by the apps."""

from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes a string only.

    DRF's CharField turns a JSON number into its text (`"password": 12345678` becomes
    "12345678"); the API's schema says these fields are strings, and a client sending a
    number has a bug worth hearing about. Form data is always text, so forms are unaffected.
    """

    default_error_messages = {"not_a_string": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictEmailField(StrictCharField, serializers.EmailField):
    """An email address given as a string."""


# A field that only JSON can carry (files as base64, lists of objects): the browsable API's HTML
# form shows a note pointing to its Raw data tab in place of DRF's "not supported in HTML input".
RAW_DATA_ONLY_TEMPLATE = "core/forms/raw_data_only.html"
RAW_DATA_ONLY_STYLE = {"template": RAW_DATA_ONLY_TEMPLATE}
