"""The one place this service turns a message into RFC 5322 bytes: EmlFolderClient's .eml files use it, and
so must any provider that speaks SMTP.

Header values never pass through the email package's header parser, which decodes RFC 2047
encoded words and, before Python 3.11.10 / 3.12.5 (CVE-2024-6923), writes a decoded line break
back out raw. Instead:

- every value first loses the encoded words that decode to a line break (headers.py);
- a value of visible ASCII without `=?` is written as it is, folded at its spaces; anything
  else is written as RFC 2047 encoded words (base64 or quoted-printable of its UTF-8), which
  cannot carry a raw line break;
- addresses are written with their domain in IDNA form;
- the package only builds the body parts, from fixed header values;
- whatever is written, every header line is checked before the bytes are returned: a line
  that starts neither a field nor a continuation, a bare CR or LF, or a NUL raises
  `UnsafeHeader`, whatever the Python version.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid
from typing import Any

from emailsender.addresses import ascii_address
from emailsender.headers import neutralise_encoded_words
from emailsender.options import Attachment, attachments_from_payload

# RFC 5322's recommended line length; folding keeps header lines to it where spaces allow.
_FOLD_AT = 78
_FIELD_START = re.compile(rb"[!-9;-~]+:")
_PLAIN = re.compile(r"[ -~]*")


class UnsafeHeader(ValueError):
    """A header would have been written with a line break or NUL in its value."""


def check_header_block(block: bytes, linesep: bytes) -> None:
    """Raise UnsafeHeader unless every line of `block` starts a field or continues one."""
    for number, line in enumerate(block.split(linesep)):
        if not line:
            continue
        if b"\r" in line or b"\n" in line or b"\0" in line:
            raise UnsafeHeader("a header holds a line break or NUL")
        if line[:1] in (b" ", b"\t") and number:
            continue
        if not _FIELD_START.match(line):
            raise UnsafeHeader(f"a header line starts no field: {line[:40]!r}")


class _CheckedGenerator(BytesGenerator):
    """The package's generator, checking each header it folds (the body parts' headers)."""

    def _write_headers(self, msg: Message) -> None:
        policy = self.policy
        assert policy is not None  # flatten() sets it before writing any header
        fp = self._fp  # type: ignore[attr-defined]  # the generator's output file; private, not in typeshed
        linesep = policy.linesep.encode("ascii")
        for name, value in msg.raw_items():
            folded = policy.fold_binary(name, value)
            check_header_block(folded.removesuffix(linesep), linesep)
            fp.write(folded)
        fp.write(linesep)


def _fold_plain(name: str, value: str, linesep: str) -> str:
    lines, current = [], f"{name}:"
    for word in re.split(r"(?= )", f" {value}") if value else [""]:
        if len(current) + len(word) > _FOLD_AT and current.strip() not in ("", f"{name}:"):
            lines.append(current)
            current = word
        else:
            current += word
    lines.append(current)
    return linesep.join(lines)


def header_line(name: str, value: str, *, linesep: str = "\n") -> str:
    """One header field, folded, without its final line separator; safe for any `value`."""
    value = neutralise_encoded_words(value)
    if _PLAIN.fullmatch(value) and "=?" not in value:
        return _fold_plain(name, value, linesep)
    encoded = Header(value, "utf-8", header_name=name).encode(linesep=linesep)
    return f"{name}: {encoded}"


def _body(text: str | None, html: str | None, linesep: str, attachments: Iterable[Attachment] = ()) -> bytes:
    part = EmailMessage()
    if text:
        part.set_content(text)
        if html:
            part.add_alternative(html, subtype="html")
    else:
        part.set_content(html or "", subtype="html")
    for attachment in attachments:  # each makes the message multipart/mixed, the bodies its first part
        maintype, _, subtype = attachment.type.partition("/")
        if maintype in ("multipart", "message") or not subtype:  # not a leaf part the package can hold
            maintype, subtype = "application", "octet-stream"
        part.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            disposition=attachment.disposition,
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    out = io.BytesIO()
    _CheckedGenerator(out, policy=email_policy.default.clone(linesep=linesep)).flatten(part)
    return out.getvalue()


def build_mime(
    *,
    from_email: str,
    to: Iterable[str],
    subject: str,
    text: str | None,
    html: str | None,
    reply_to: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    linesep: str = "\n",
    attachments: Iterable[Attachment] = (),
) -> bytes:
    """An RFC 5322 message: From, To, Reply-To, Subject, then `headers` (Date, Message-ID, ...)
    in order, then the text and HTML bodies as multipart/alternative (or whichever is given);
    with `attachments`, those bodies are the first part of a multipart/mixed and each
    attachment a base64 part after them (inline ones with their Content-ID).

    `linesep` is "\\n" for files and "\\r\\n" on the wire (SMTP). Raises UnsafeHeader if any
    header line would not be one.
    """
    fields = [("From", ascii_address(from_email)), ("To", ", ".join(ascii_address(address) for address in to))]
    if reply_to:
        fields.append(("Reply-To", ascii_address(reply_to)))
    fields.append(("Subject", subject))
    fields.extend(headers)
    top = "".join(header_line(name, value, linesep=linesep) + linesep for name, value in fields).encode("ascii")
    separator = linesep.encode("ascii")
    check_header_block(top, separator)
    body = _body(text, html, linesep, attachments)
    check_header_block(body.partition(separator * 2)[0], separator)
    return top + body


def payload_mime(
    payload: dict[str, Any],
    personalization: dict[str, Any],
    *,
    domain: str,
    attachments: tuple[Attachment, ...] | None = None,
) -> bytes:
    """The message one personalization of a SendGrid v3 payload (one recipient) receives, as the
    .eml folder writes it and the SMTP provider sends it. `domain` ends the Message-ID;
    `attachments`, already decoded, spare decoding the payload's once per recipient. The
    personalization's `headers` (its one-click unsubscribe headers) follow the service's own."""
    if attachments is None:
        attachments = attachments_from_payload(payload)
    args = personalization.get("custom_args", {})
    contents = {c["type"]: c["value"] for c in payload["content"]}
    return build_mime(
        from_email=payload["from"]["email"],
        to=[to["email"] for to in personalization["to"]],
        reply_to=payload.get("reply_to", {}).get("email"),
        subject=personalization.get("subject", payload.get("subject", "")),
        text=contents.get("text/plain"),
        html=contents.get("text/html"),
        headers=[
            ("Date", format_datetime(datetime.now(UTC))),
            ("Message-ID", make_msgid(domain=domain)),
            ("X-Email-Id", str(args.get("email_id", ""))),
            ("X-Delivery-Id", str(args.get("delivery_id", ""))),
            *((str(name), str(value)) for name, value in personalization.get("headers", {}).items()),
        ],
        attachments=attachments,
    )
