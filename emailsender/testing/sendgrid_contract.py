"""What SendGrid's v3 mail/send accepts: the fake answers 400 with SendGrid's own errors for anything else."""

from __future__ import annotations

from typing import Any

MAX_PERSONALIZATIONS = 1000

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
    return errors
