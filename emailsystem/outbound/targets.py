"""Where an endpoint may point: https URLs whose host resolves only to public addresses.

Checked when an endpoint is saved and again at every connection, where the connection goes to
the address that was checked (delivery.py), so a name that resolves to a public address at
save time and to 169.254.169.254 later (DNS rebinding) is refused then.
OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=1 lifts both rules: http and any address.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Not covered by `is_global` in every Python version: shared address space (RFC 6598), used by
# carriers and by some clouds' metadata services (100.100.100.200).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """A URL the service will not call; the message says why."""


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_blocked(address.ipv4_mapped)
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
    )


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL the service may call at all; raises TargetRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused(f"not a valid URL: {error}") from None
    allowed = ("https", "http") if settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE else ("https",)
    if parts.scheme not in allowed:
        raise TargetRefused("must be an https:// URL")
    if not parts.hostname:
        raise TargetRefused("must name a host")
    if parts.username or parts.password:
        raise TargetRefused("must not carry a user name or password")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def target_resolve(host: str, port: int) -> str:
    """The address to connect to for `host`: resolved once, refused if any of its addresses is
    not public (unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE). Raises TargetRefused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"the host {host!r} does not resolve ({error})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    if not settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if address_blocked(ipaddress.ip_address(address.split("%")[0])):
                raise TargetRefused(f"{host!r} resolves to {address}, which is not a public address")
    return addresses[0]


def target_check(url: str) -> None:
    """Raise TargetRefused unless the service may call `url` now."""
    _scheme, host, port = url_parts(url)
    target_resolve(host, port)
