"""The one rule for an address this service sends to, used by the API and by the sender alike.

The API refuses what this refuses, so the sender never meets an address it cannot use in a
message it built from the API; a message from elsewhere that holds one fails only that
recipient. The rule is RFC 5321's mailbox, narrowed to what goes into a header safely:

- at most 254 characters (RFC 5321's path limit less the angle brackets), one "@";
- a local part of at most 64 ASCII characters: a dot-atom (`first.last+tag`), or a quoted
  string of visible characters (`"john..doe"`), with no space, tab or control character even
  escaped (a quoted-pair `\\ ` passes RFC 5322 but no header or SendGrid takes it);
- a domain of dot-separated labels of letters, digits and hyphens (an internationalised
  domain is checked in its ASCII form, `ascii_domain`), ending in a label of two or more
  characters that is not all digits, or `localhost`; no address literal (`[192.0.2.1]`);
- no RFC 2047 encoded word that decodes to a line break (headers.py).
"""

from __future__ import annotations

import re

import idna

from emailsender.headers import has_encoded_line_break

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
# Visible ASCII but '"' and '\', or a backslash before a visible character.
_QUOTED = re.compile(r'"(?:[!#-\[\]-~]|\\[!-~])+"')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{2,63}(?<!-)")

INVALID = "Enter a valid email address."
NON_ASCII_LOCAL_PART = (
    "Only the domain may hold non-ASCII characters (anna@bücher.example); the part before the @ must be ASCII."
)
LINE_BREAK = "Email addresses must not contain line breaks or NUL characters."


def ascii_domain(domain: str) -> str | None:
    """`domain` in its one ASCII spelling, lowercase, or None if it has none.

    An internationalised domain is written in IDNA 2008 A-labels (RFC 5891) after UTS #46's
    mapping, so its Unicode and punycode spellings come out as one: `Café.example` and
    `xn--caf-dma.example` are both `xn--caf-dma.example`. A punycode label must decode to a
    valid IDNA 2008 label: `xn--caf-pia` (`cafÉ`, with a capital) has no ASCII spelling.
    Not the standard library's `idna` codec: it is IDNA 2003, which turns `faß.de` into
    `fass.de`, another domain under IDNA 2008 (`xn--fa-hia.de`), and checks no punycode.
    A domain of ASCII labels none of which is punycode is only lowercased: the address rule
    checks its letters.
    """
    lowered = domain.lower()
    if domain.isascii() and not any(label.startswith("xn--") for label in lowered.split(".")):
        return lowered
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def ascii_address(address: str) -> str:
    """`address` with its domain in its ASCII spelling (ascii_domain), as DNS, SMTP without
    SMTPUTF8 and SendGrid take it; unchanged when the domain has none."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}{at}{ascii_domain(domain) or domain}"


def _valid_domain(domain: str) -> bool:
    spelled = ascii_domain(domain)
    if spelled is None or len(spelled) > 253:
        return False
    if spelled.lower() == "localhost":
        return True
    *labels, top = spelled.split(".")
    return (
        bool(labels)
        and all(_LABEL.fullmatch(label) for label in labels)
        and bool(_TOP_LABEL.fullmatch(top))
        and not top.isdigit()
    )


def address_problem(address: object) -> str | None:
    """Why `address` cannot be sent to (a message for the person who gave it), or None if it can."""
    if not isinstance(address, str) or not address:
        return INVALID
    if any(char in address for char in "\r\n\0"):
        return LINE_BREAK
    local, at, domain = address.rpartition("@")
    if not local.isascii():
        return NON_ASCII_LOCAL_PART
    if (
        not at
        or len(address) > MAX_ADDRESS_LENGTH
        or len(local) > MAX_LOCAL_PART_LENGTH
        or not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local))
        or not _valid_domain(domain)
        or has_encoded_line_break(address)
    ):
        return INVALID
    return None
