"""What SendGrid's v3 mail/send accepts: the fake answers 400 with SendGrid's own errors for anything else."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAIL_SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's documented limit for one mail/send request
MAX_PERSONALIZATIONS = 1000
# Headers SendGrid sets itself and refuses in a request's `headers` (lower-cased).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)


def bearer_key_present(authorization: str) -> bool:
    """Whether an Authorization header carries a bearer key: SendGrid answers 401 otherwise
    ("None" too, what a client sends for a key that was never set)."""
    return authorization.startswith("Bearer ") and authorization[len("Bearer ") :].strip() not in ("", "None")


# SendGrid's own wording, so error handling is tested against realistic bodies.
TO_REQUIRED = (
    "The to array is required for all personalization objects, "
    "and must have at least one email object with a valid email address."
)
SUBJECT_REQUIRED = (
    "The subject is required. You can get around this requirement if you use a template "
    "with a subject defined or if every personalization has a subject defined."
)
CONTENT_REQUIRED = (
    "Unless a valid template_id is provided, the content parameter is required. There must be at least one "
    "defined content block. We typically suggest both text/plain and text/html blocks are included, "
    "but only one block is required."
)


def validate(payload: Any) -> list[dict[str, Any]]:
    """SendGrid-style errors for a mail/send payload; empty when it would be accepted."""
    if not isinstance(payload, dict):
        return [{"message": "Bad Request", "field": None, "help": None}]
    errors: list[dict[str, Any]] = []

    def error(message: str, field_name: str | None) -> None:
        errors.append({"message": message, "field": field_name, "help": None})

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= MAX_PERSONALIZATIONS:
        error(
            f"The personalizations field is required and must have between 1 and {MAX_PERSONALIZATIONS} items.",
            "personalizations",
        )
        personalizations = []
    for i, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(t, dict) and "@" in str(t.get("email", "")) for t in to)
        ):
            error(
                TO_REQUIRED,
                f"personalizations.{i}.to",
            )
        args = item.get("custom_args", {}) if isinstance(item, dict) else {}
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            error("Custom args must be string values.", f"personalizations.{i}.custom_args")
        headers = item.get("headers", {}) if isinstance(item, dict) else {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            error("Headers must be string values.", f"personalizations.{i}.headers")
        elif RESERVED_HEADERS & {str(name).lower() for name in headers}:
            error("Some headers cannot be set by you.", f"personalizations.{i}.headers")
    sender = payload.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        error(
            "The from object must be provided for every email send. It is an object that requires an email parameter.",
            "from.email",
        )
    if not payload.get("subject") and not (
        personalizations and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    ):
        error(
            SUBJECT_REQUIRED,
            "subject",
        )
    content = payload.get("content")
    if (
        not isinstance(content, list)
        or not content
        or not all(
            isinstance(c, dict) and c.get("type") and isinstance(c.get("value"), str) and c["value"] for c in content
        )
    ):
        error(
            CONTENT_REQUIRED,
            "content",
        )
    elif len(content) > 1 and any(c["type"] == "text/plain" for c in content) and content[0]["type"] != "text/plain":
        error("If present, text/plain content must be first, followed by text/html.", "content")
    _validate_extras(payload, error)
    return errors


MAX_CATEGORIES = 10
CATEGORY_MAX_LENGTH = 255
CUSTOM_ARGS_MAX_BYTES = 10_000  # per personalization, its own and the top-level ones together
ATTACHMENTS_MAX_BYTES = 30 * 1024 * 1024  # the whole request, as SendGrid documents it


def _validate_extras(payload: dict[str, Any], error: Any) -> None:
    """categories, top-level custom_args, mail_settings.sandbox_mode and attachments."""
    categories = payload.get("categories", [])
    if (
        not isinstance(categories, list)
        or len(categories) > MAX_CATEGORIES
        or not all(isinstance(c, str) and 1 <= len(c) <= CATEGORY_MAX_LENGTH for c in categories)
    ):
        error(f"Categories must be an array of up to {MAX_CATEGORIES} strings of 1 to 255 characters.", "categories")
    elif len(set(categories)) != len(categories):
        error("Categories must be unique.", "categories")
    args = payload.get("custom_args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        error("Custom args must be string values.", "custom_args")
    else:
        for i, item in enumerate(payload.get("personalizations") or []):
            own = item.get("custom_args", {}) if isinstance(item, dict) else {}
            merged = {**args, **own} if isinstance(own, dict) else args
            if len(json.dumps(merged).encode()) > CUSTOM_ARGS_MAX_BYTES:
                error("Custom args must total less than 10,000 bytes.", f"personalizations.{i}.custom_args")
    settings = payload.get("mail_settings", {})
    sandbox = settings.get("sandbox_mode", {}) if isinstance(settings, dict) else None
    if not isinstance(sandbox, dict) or not isinstance(sandbox.get("enable", False), bool):
        error("The sandbox_mode enable value must be a boolean.", "mail_settings.sandbox_mode.enable")
    attachments = payload.get("attachments", [])
    if not isinstance(attachments, list):
        error("The attachments field must be an array.", "attachments")
        return
    for i, item in enumerate(attachments):
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str) or not item.get("filename"):
            error("The attachment filename parameter is required.", f"attachments.{i}.filename")
            continue
        try:
            base64.b64decode(item.get("content") or "", validate=True)
        except (TypeError, ValueError, binascii.Error):
            error("The attachment content must be base64 encoded.", f"attachments.{i}.content")
        if not item.get("content"):
            error("The attachment content is required.", f"attachments.{i}.content")
        if item.get("disposition", "attachment") not in ("attachment", "inline"):
            error("The disposition must be attachment or inline.", f"attachments.{i}.disposition")
        if item.get("disposition") == "inline" and not item.get("content_id"):
            error("The content_id parameter is required for inline attachments.", f"attachments.{i}.content_id")
        if "type" in item and (not isinstance(item["type"], str) or ";" in item["type"] or not item["type"]):
            error("The attachment type must be a MIME type without ';'.", f"attachments.{i}.type")


def is_sandboxed(payload: Any) -> bool:
    """Whether a (valid) payload asks for SendGrid's sandbox mode: accepted, never delivered."""
    settings = payload.get("mail_settings", {}) if isinstance(payload, dict) else {}
    return bool(isinstance(settings, dict) and settings.get("sandbox_mode", {}).get("enable") is True)
