"""SSRF: which URLs an endpoint may have, checked at save and again at every connection."""

import ipaddress

import pytest

from emailsystem.outbound.delivery import attempt_post
from emailsystem.outbound.targets import TargetRefused, address_blocked, target_check
from emailsystem.outbound.tests.receiver import Receiver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.100.100.200",  # CGNAT (Alibaba's metadata)
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",  # AWS's IPv6 metadata
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::",
    ],
)
def test_non_public_addresses_are_blocked(address):
    assert address_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_not(address):
    assert not address_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://localhost/hook", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://user:pw@example.com/hook", "user name"),
        ("ftp://example.com/", "https"),
    ],
)
def test_refused_urls_say_why(settings, url, reason):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False

    with pytest.raises(TargetRefused, match=reason):
        target_check(url)


def test_allow_private_lifts_both_rules(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True

    target_check("http://127.0.0.1:9/hook")


def test_the_connection_checks_again_so_a_saved_private_target_gets_nothing(settings):
    """An endpoint saved while its name was public and pointing at a private address now (rebinding) is refused
    when the attempt resolves it: no request reaches the receiver."""
    with Receiver() as receiver:
        settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
        assert attempt_post(url=receiver.url, secrets=[], webhook_id="msg_ok", body="{}").succeeded
        settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False

        result = attempt_post(url=receiver.url.replace("http:", "https:"), secrets=[], webhook_id="msg_x", body="{}")
        refused_http = attempt_post(url=receiver.url, secrets=[], webhook_id="msg_y", body="{}")

        assert result.status_code is None and "not a public address" in result.error
        assert refused_http.status_code is None and "https" in refused_http.error
        assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_ok"]


def test_redirects_are_not_followed(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    with Receiver([302]) as receiver:
        result = attempt_post(url=receiver.url, secrets=[], webhook_id="msg_r", body="{}")

    assert result.status_code == 302 and not result.succeeded
    assert len(receiver.received) == 1
