"""RFC 2047 encoded words that decode to line breaks: found, and neutralised.

Python's email package before 3.11.10 / 3.12.5 (CVE-2024-6923) decodes an encoded word such as
`=?utf-8?q?Hi=0D=0ABcc=3A_x=40y?=` when it parses a header value and writes the decoded line
break back out raw when it folds the header, so a subject or address could add headers to a
message. The API refuses such values; the sender neutralises what reaches it anyway, and
mime.py never hands a header value to the package's parser.

Decoding follows the package's own reading (email._encoded_words): any charset, `q` or `b`
in either case, base64 with or without padding, and the raw bytes are checked as well as the
decoded text, so no charset hides a line break.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# What str.splitlines() (and so the email package) treats as the end of a line, and NUL.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")
_BYTE_BREAKS = frozenset(b"\r\n\x00")
# =?charset[*language]?encoding?text?= ; the text may hold anything but "?=".
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([^?]*)\?(.*?)\?=", re.DOTALL)


def _b_bytes(text: bytes) -> bytes | None:
    missing = -len(text) % 4
    for candidate, validate in ((text + b"=" * missing, True), (text, False), (text + b"==", False)):
        try:
            return base64.b64decode(candidate, validate=validate)
        except (binascii.Error, ValueError):
            continue
    return None


def _q_bytes(text: bytes) -> bytes:
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda match: bytes([int(match[1], 16)]), text.replace(b"_", b" "))


def _decoded(match: re.Match[str]) -> tuple[str, bool] | None:
    """(the text an encoded word stands for, whether it breaks a line), or None when it is not
    an encoded word the package would decode."""
    charset, encoding, text = match[1].partition("*")[0], match[2].lower(), match[3]
    if not text.isascii():
        return None
    if encoding == "q":
        data: bytes | None = _q_bytes(text.encode("ascii"))
    elif encoding == "b":
        data = _b_bytes(text.encode("ascii"))
    else:
        data = None
    if data is None:
        return None
    try:
        decoded = data.decode(codecs.lookup(charset).name, errors="replace")
    except (LookupError, ValueError):
        decoded = data.decode("latin-1")
    return decoded, bool(_BYTE_BREAKS & set(data) or LINE_BREAKS & set(decoded))


def _breaks_a_line(match: re.Match[str]) -> bool:
    decoded = _decoded(match)
    return decoded is not None and decoded[1]


def _neutralised(match: re.Match[str]) -> str:
    decoded = _decoded(match)
    if decoded is None or not decoded[1]:
        return match[0]
    return "".join(char if char.isprintable() else " " for char in decoded[0])


def has_encoded_line_break(value: str) -> bool:
    """Whether `value` holds an RFC 2047 encoded word that decodes to a line break or NUL."""
    return "=?" in value and any(_breaks_a_line(match) for match in _ENCODED_WORD.finditer(value))


def neutralise_encoded_words(value: str) -> str:
    """`value` with every encoded word that decodes to a line break or NUL replaced by its decoded
    text, line breaks and other control characters as spaces. Other text, other encoded words included, is kept.

    Repeated until none is left: a decoded text may itself spell an encoded word. Each pass
    shortens the value (an encoded word is longer than what it decodes to), so this ends.
    """
    while has_encoded_line_break(value):
        value = _ENCODED_WORD.sub(_neutralised, value)
    return value
