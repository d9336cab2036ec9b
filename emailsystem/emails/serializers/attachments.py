"""A send's `attachments`: files every recipient receives, given as base64, and how the log shows them.

Each is checked before anything is written: a filename that could name a path or break a
header, an executable type, content that is not base64, and the decoded total against
ATTACHMENTS_MAX_BYTES (the send endpoint takes bodies large enough for it: core.middleware).
"""

import base64
import binascii
import mimetypes
import re
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from emailsystem.core.fields import StrictCharField
from emailsystem.emails.models import Attachment

FILENAME_MAX_LENGTH = 255
CONTENT_ID_PATTERN = "^[A-Za-z0-9_.@$-]{1,100}$"
MIME_TYPE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
DEFAULT_TYPE = "application/octet-stream"
# Types mail filters quarantine and mail clients may run: refused by extension, and by type
# whatever the name says.
EXECUTABLE_EXTENSIONS = frozenset(
    {
        *(".exe", ".bat", ".cmd", ".com", ".js", ".jse", ".vbs", ".vbe", ".scr", ".msi", ".msp", ".jar"),
        *(".ps1", ".psm1", ".pif", ".cpl", ".hta", ".wsf", ".wsh", ".lnk", ".reg", ".dll", ".application"),
        *(".gadget", ".msc", ".scf", ".inf", ".sys"),
    }
)
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-ms-installer",
        "application/x-msi",
        "application/java-archive",
        "application/x-java-archive",
        "application/javascript",
        "text/javascript",
        "application/x-sh",
        "application/x-bat",
        "application/hta",
        "application/x-ms-shortcut",
        "application/vnd.microsoft.portable-executable",
    }
)
_FORBIDDEN_IN_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")
_CONTENT_ID = re.compile(CONTENT_ID_PATTERN)
_MIME_TYPE = re.compile(MIME_TYPE_PATTERN)


@extend_schema_field({"type": "string", "format": "byte", "minLength": 1})
class Base64Field(serializers.Field):
    """Base64 text, returned decoded (bytes); whitespace inside is ignored.

    Not a CharField: its NUL and surrogate validators walk the string in Python, about 150 ms
    for a 1 MiB file's base64, while the decoder refuses anything but base64's ASCII anyway.
    """

    default_error_messages = {
        "not_a_string": "Not a valid string.",
        "blank": "This field may not be blank.",
        "invalid": "Not valid base64.",
    }

    def to_internal_value(self, data: Any) -> bytes:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if not data:
            self.fail("blank")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            pass
        try:  # base64 folded into lines, as MIME writes it
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            self.fail("invalid")

    def to_representation(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")


class AttachmentSerializer(serializers.Serializer):
    filename = StrictCharField(
        max_length=FILENAME_MAX_LENGTH, trim_whitespace=False, help_text="No path separators, CR, LF or NUL."
    )
    content = Base64Field(help_text="The file's bytes, base64.")
    type = StrictCharField(
        required=False, max_length=255, help_text="A MIME type; guessed from the filename when absent."
    )
    disposition = serializers.ChoiceField(choices=["attachment", "inline"], default="attachment")
    content_id = StrictCharField(
        required=False, max_length=100, help_text="Required for inline: what html_body's cid: references."
    )

    def validate_filename(self, value: str) -> str:
        if _FORBIDDEN_IN_FILENAME.search(value) or value.strip() in ("", ".", ".."):
            raise serializers.ValidationError(
                f"{value!r}: a filename holds no path separators, control characters, CR, LF or NUL."
            )
        extension = PurePosixPath(value.lower().rstrip(". ")).suffix
        if extension in EXECUTABLE_EXTENSIONS:
            raise serializers.ValidationError(f"{value!r}: executable files ({extension}) are refused.")
        return value

    def validate_content(self, value: bytes) -> bytes:
        if not value:
            raise serializers.ValidationError("An attachment must not be empty.")
        return value

    def validate_type(self, value: str) -> str:
        if not _MIME_TYPE.match(value):
            raise serializers.ValidationError("Enter a MIME type such as application/pdf (no parameters).")
        return value.lower()

    def validate_content_id(self, value: str) -> str:
        if not _CONTENT_ID.match(value):
            raise serializers.ValidationError("A content_id holds 1 to 100 of letters, digits and _ . @ $ -.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["disposition"] == "inline" and not attrs.get("content_id"):
            raise serializers.ValidationError({"content_id": ["Required for an inline attachment."]})
        if attrs["disposition"] != "inline":
            attrs.pop("content_id", None)
        kind = attrs.get("type") or mimetypes.guess_type(attrs["filename"], strict=False)[0] or DEFAULT_TYPE
        if kind in EXECUTABLE_TYPES:
            raise serializers.ValidationError(
                {"type": [f"{attrs['filename']!r}: executable types ({kind}) are refused."]}
            )
        attrs["type"] = kind
        return attrs


@extend_schema_field(AttachmentSerializer(many=True))
class AttachmentListField(serializers.ListField):
    """Attachments, each validated on its own (errors keyed by position), then their decoded total."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=AttachmentSerializer(), **kwargs)

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        attachments = super().to_internal_value(data)
        total = sum(len(attachment["content"]) for attachment in attachments)
        if total > settings.ATTACHMENTS_MAX_BYTES:
            raise serializers.ValidationError(
                f"Attachments total {total} bytes once decoded; at most {settings.ATTACHMENTS_MAX_BYTES} per send."
            )
        content_ids = [a["content_id"] for a in attachments if a.get("content_id")]
        if len(set(content_ids)) != len(content_ids):
            raise serializers.ValidationError("Each inline attachment needs its own content_id.")
        return attachments


class AttachmentInfoSerializer(serializers.ModelSerializer):
    """An attachment as the log shows it: never its content."""

    class Meta:
        model = Attachment
        fields = ["filename", "type", "size", "disposition", "content_id"]
