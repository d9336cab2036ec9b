"""One-click unsubscribe (RFC 8058): the headers a recipient's message carries, from the URL the
web side put in the work message (`deliveries[].unsubscribe`, messages.py).

The sender only copies the URL: the web side signs the token in it (emailsystem/emails/unsubscribe/),
so no signing key reaches the sender. The check here keeps a malformed URL out of a header.
"""

from __future__ import annotations

import re

# A header line holds at most 998 characters (RFC 5322), and this value has no space to fold at:
# "List-Unsubscribe: <" and ">" leave room for a URL of 900.
URL_MAX_LENGTH = 900
# http(s), then visible ASCII without the characters that end or split a List-Unsubscribe value
# (angle brackets, commas, quotes; RFC 2369).
_URL = re.compile(r"https?://[!#-+\--;=?-~]+")

# The body of a one-click POST (RFC 8058 section 3.1) is this one form field: its name and value.
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


def is_unsubscribe_url(value: object) -> bool:
    """An http(s) URL of visible ASCII that a List-Unsubscribe header can carry as it is."""
    return isinstance(value, str) and len(value) <= URL_MAX_LENGTH and _URL.fullmatch(value) is not None


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The two headers of RFC 8058's one-click unsubscribe: where to POST, and that one POST does it."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}"}
