"""The work message's optional parts (messages.py): tags, metadata, sandbox and attachments.

    "tags": ["invoice", ...]                     # SendGrid categories; absent = none
    "metadata": {"order": "42", ...}             # SendGrid custom_args beside our ids; absent = none
    "sandbox": true                              # SendGrid's sandbox mode; absent = false
    "attachments": [{"filename": "a.pdf", "type": "application/pdf", "disposition": "attachment"
                     | "inline", "content_id": null | "logo", "content": "<base64>"}, ...]

Every key is optional and absent when empty, so a message without them is a plain version 1
message and a sender that ignores unknown keys still reads it. The web side validates them
(emailsystem.emails.serializers); the checks here keep a malformed message from reaching SendGrid.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

# SendGrid's limits: 10 categories of at most 255 characters each.
MAX_CATEGORIES = 10
CATEGORY_MAX_LENGTH = 255
DISPOSITIONS = ("attachment", "inline")


@dataclass(frozen=True)
class Attachment:
    filename: str
    type: str
    disposition: str
    content_id: str | None
    content: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "type": self.type,
            "disposition": self.disposition,
            "content_id": self.content_id,
            "content": base64.b64encode(self.content).decode("ascii"),
        }


@dataclass(frozen=True)
class Options:
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()  # pairs, in the caller's order (hashable, unlike a dict)
    sandbox: bool = False
    attachments: tuple[Attachment, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The keys to add to a work message: only those with a value."""
        data: dict[str, Any] = {}
        if self.tags:
            data["tags"] = list(self.tags)
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        if self.sandbox:
            data["sandbox"] = True
        if self.attachments:
            data["attachments"] = [attachment.to_dict() for attachment in self.attachments]
        return data


NO_OPTIONS = Options()


def _text(value: Any) -> bool:
    return isinstance(value, str) and "\0" not in value


def parse_options(data: dict[str, Any]) -> Options:
    """The optional parts of a decoded work message. Raises ValueError with a short reason."""
    tags = data.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_CATEGORIES
        or not all(_text(tag) and 1 <= len(tag) <= CATEGORY_MAX_LENGTH for tag in tags)
        or len(set(tags)) != len(tags)
    ):
        raise ValueError(f"tags must be a list of up to {MAX_CATEGORIES} distinct strings of 1..255 characters")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict) or not all(_text(value) for value in metadata.values()):
        raise ValueError("metadata must be an object of string values")
    sandbox = data.get("sandbox", False)
    if not isinstance(sandbox, bool):
        raise ValueError("sandbox must be a boolean")
    raw_attachments = data.get("attachments", [])
    if not isinstance(raw_attachments, list):
        raise ValueError("attachments must be a list")
    attachments = tuple(_attachment(index, item) for index, item in enumerate(raw_attachments))
    return Options(tuple(tags), tuple(metadata.items()), sandbox, attachments)


def _attachment(index: int, item: Any) -> Attachment:
    if not isinstance(item, dict):
        raise ValueError(f"attachments[{index}] must be an object")
    filename, kind, disposition, content_id = (
        item.get(key) for key in ("filename", "type", "disposition", "content_id")
    )
    if not (_text(filename) and filename and _text(kind) and kind and disposition in DISPOSITIONS):
        raise ValueError(f"attachments[{index}] needs a filename, a type and a disposition")
    if content_id is not None and not _text(content_id):
        raise ValueError(f"attachments[{index}].content_id must be null or a string")
    if disposition == "inline" and not content_id:
        raise ValueError(f"attachments[{index}] is inline without a content_id")
    raw_content = item.get("content")
    if not isinstance(raw_content, str):
        raise ValueError(f"attachments[{index}].content is not base64")
    try:
        content = base64.b64decode(raw_content, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"attachments[{index}].content is not base64") from None
    return Attachment(filename, kind, disposition, content_id, content)


def is_sandbox(payload: dict[str, Any]) -> bool:
    """Whether a mail/send payload asks for SendGrid's sandbox mode."""
    return payload.get("mail_settings", {}).get("sandbox_mode", {}).get("enable") is True


def attachments_from_payload(payload: dict[str, Any]) -> tuple[Attachment, ...]:
    """A mail/send payload's attachments, decoded (for the .eml outbox, which writes what SendGrid would send)."""
    return tuple(
        Attachment(
            filename=item["filename"],
            type=item.get("type", "application/octet-stream"),
            disposition=item.get("disposition", "attachment"),
            content_id=item.get("content_id"),
            content=base64.b64decode(item["content"]),
        )
        for item in payload.get("attachments", ())
    )


def payload_add_options(payload: dict[str, Any], options: Options) -> None:
    """Add `options` to a SendGrid mail/send payload.

    Metadata goes in the top-level custom_args, which SendGrid merges into every
    personalization's (where our ids are) and returns in its events; tags become categories.
    """
    if options.tags:
        payload["categories"] = list(options.tags)
    if options.metadata:
        payload["custom_args"] = dict(options.metadata)
    if options.sandbox:
        payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
    if options.attachments:
        payload["attachments"] = [
            {
                key: value
                for key, value in attachment.to_dict().items()
                if value is not None and not (key == "content_id" and attachment.disposition != "inline")
            }
            for attachment in options.attachments
        ]
