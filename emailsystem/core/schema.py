"""Shapes the OpenAPI schema (/api/schema/) needs beyond what drf-spectacular infers.

The error answers are written here once, so that every view documents the same shapes the
exception handler (core/exceptions.py) and DRF actually produce. The schema is checked in two
ways: `make lint` generates it with warnings as errors, and emailsystem/core/tests/test_fuzz_api.py
fuzzes the real app from it and fails on any answer the schema does not describe.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """{"detail": "...", "code": "..."}: authentication, permission, not found, conflict, size, throttle."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False, help_text="Present on the service's own refusals.")


# A bad request names each field at fault: {"field": ["message", ...]}. A list field's messages
# are keyed by the item's index ({"recipients": {"0": ["..."]}}), a refusal not tied to one
# field is under "non_field_errors", and the service's own refusals add a "code" string.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Messages per request field.",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {}},
            {"type": "string"},
        ]
    },
}

_ERROR_DESCRIPTIONS = {
    401: "Not logged in, or the token or API key is unknown or revoked.",
    403: "Logged in without the permission, or with an API key whose scope leaves this out "
    "(or a browser session without its CSRF token).",
    404: "Not found (or not yours), or a page past the end.",
    409: "The Idempotency-Key was used before with a different request body.",
    413: "The request body is larger than REQUEST_MAX_BYTES.",
    415: "The Content-Type is not JSON, form or multipart data, or is malformed.",
    429: "Throttled (register, login) or past the daily quota (send); see Retry-After.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error answers for `codes`: 400 with field messages, the rest with `detail`."""
    responses = {}
    for code in codes:
        if code == 400:
            responses[code] = OpenApiResponse(
                response=VALIDATION_ERROR_SCHEMA,
                description="Bad input: a message per field; nothing was changed.",
            )
        else:
            responses[code] = OpenApiResponse(response=ErrorSerializer, description=_ERROR_DESCRIPTIONS[code])
    return responses
