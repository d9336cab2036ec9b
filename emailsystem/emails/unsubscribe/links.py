"""One-click unsubscribe links: `<PUBLIC_BASE_URL>/u/<token>`, one per recipient of an email.

The web side signs the tokens and puts each recipient's URL in the work message
(emailsender.messages, `deliveries[].unsubscribe`); the sender only copies it into the headers.
Signing in the sender instead would need a key shared with it, a second secret to distribute and
rotate, for a process that never imports Django. Every process that builds work messages (the
request, the relay, the embedded worker) is a Django one, with the key already. The cost is the
message size: about 100 bytes per recipient, 100 KB for the largest message (1,000 recipients).

A token is `<user id>.<recipient id>.<delivery id>:<signature>`: it names the sending user and
the recipient, so reading it needs no database, and the delivery, whose history records the
unsubscribe. It is signed with django.core.signing under its own salt: the HMAC key is derived
from DJANGO_SECRET_KEY for this use alone (Django's salted_hmac), so no signature made for
anything else (sessions, verification links) verifies here, and keys in SECRET_KEY_FALLBACKS
still do. Ids, not the address: the URL ends up in access logs.

No expiry: mailbox providers show their unsubscribe button on old mail too, and a link that
stopped working would leave the recipient a spam report as the only way out. A token can only
ever take one address off one user's sends.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.core import signing

# Used by no other signature in the project.
SALT = "emailsystem.emails.unsubscribe"
# The path under the site's root; emailsystem/urls.py routes it.
PATH_PREFIX = "u/"
_VALUE = re.compile(r"([1-9][0-9]{0,18})\.([1-9][0-9]{0,18})\.([1-9][0-9]{0,18})")


@dataclass(frozen=True)
class UnsubscribeLink:
    """Whom a link unsubscribes: the recipient, from the user's sends, found in this delivery."""

    user_id: int
    recipient_id: int
    delivery_id: int


class InvalidUnsubscribeToken(ValueError):
    """A token this service did not sign (altered, cut short, or signed with another key)."""


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def _signed(signer: signing.Signer, link: UnsubscribeLink) -> str:
    return signer.sign(f"{link.user_id}.{link.recipient_id}.{link.delivery_id}")


def unsubscribe_token(link: UnsubscribeLink) -> str:
    return _signed(_signer(), link)


def unsubscribe_urls(*, base_url: str, links: Iterable[UnsubscribeLink]) -> list[str]:
    """The links' URLs under `base_url` (PUBLIC_BASE_URL, no trailing slash), in order.

    One signer for them all: building one per link doubled the cost, to about 20 ms for
    1,000 links against 8-12 ms (the 2-core machine, three runs each).
    """
    signer = _signer()
    return [f"{base_url}/{PATH_PREFIX}{_signed(signer, link)}" for link in links]


def unsubscribe_url(*, base_url: str, link: UnsubscribeLink) -> str:
    [url] = unsubscribe_urls(base_url=base_url, links=[link])
    return url


def unsubscribe_link_read(token: str) -> UnsubscribeLink:
    """The link a token stands for; raises InvalidUnsubscribeToken unless this service signed it."""
    try:
        value = _signer().unsign(token)
    except signing.BadSignature:
        raise InvalidUnsubscribeToken("the signature does not match") from None
    match = _VALUE.fullmatch(value)
    if match is None:
        raise InvalidUnsubscribeToken("the signed value is not a link's")
    user_id, recipient_id, delivery_id = (int(group) for group in match.groups())
    return UnsubscribeLink(user_id=user_id, recipient_id=recipient_id, delivery_id=delivery_id)
