"""One ASCII spelling per domain (addresses.ascii_domain), by which the web stores addresses and
the sender sends them; the address rule checks internationalised domains in that spelling."""

from __future__ import annotations

import email
from dataclasses import replace

import pytest

from emailsender.addresses import INVALID, address_problem, ascii_address, ascii_domain
from emailsender.handler import build_payload
from emailsender.messages import WorkRecipient, encode_work, parse_work
from emailsender.mime import payload_mime
from emailsender.tests.support import work_message


@pytest.mark.parametrize(
    "spelling",
    ["café.example", "CAFÉ.Example", "xn--caf-dma.example", "XN--CAF-DMA.EXAMPLE", "cafe\u0301.example"],
)
def test_the_unicode_and_punycode_spellings_of_a_domain_have_one_ascii_form(spelling):
    # The last is "e" followed by a combining accent: UTS #46's mapping composes it (NFC).
    assert ascii_domain(spelling) == "xn--caf-dma.example"


def test_idna_2008_keeps_the_sharp_s_a_domain_of_its_own():
    assert ascii_domain("faß.de") == ascii_domain("xn--fa-hia.de") == "xn--fa-hia.de"
    assert ascii_domain("fass.de") == "fass.de"


def test_an_ascii_domain_is_only_lowercased():
    assert ascii_domain("Mail.Example.COM") == "mail.example.com"
    assert ascii_domain("localhost") == "localhost"


@pytest.mark.parametrize(
    "domain",
    [
        "xn--caf-pia.example",  # decodes to "cafÉ": a capital is no IDNA 2008 label
        "xn--.example",  # no punycode after the prefix
        "xn--zz-.example",  # a label may not end with a hyphen
        "\u2603.example",  # a snowman is no IDNA 2008 letter
        "caf\u00e9..example",  # an empty label
    ],
)
def test_a_domain_with_no_ascii_spelling_is_none_and_its_address_invalid(domain):
    assert ascii_domain(domain) is None
    assert address_problem(f"anna@{domain}") == INVALID


def test_both_spellings_are_addresses_the_rule_accepts():
    assert address_problem("anna@café.example") is None
    assert address_problem("anna@xn--caf-dma.example") is None


def test_ascii_address_keeps_the_local_part_and_converts_the_domain():
    assert ascii_address("Anna.B+tag@Café.example") == "Anna.B+tag@xn--caf-dma.example"
    assert ascii_address("not-an-address") == "not-an-address"


def test_a_queued_message_with_unicode_domains_goes_to_sendgrid_and_smtp_in_ascii():
    queued = replace(
        work_message(reply_to="bob@bücher.example"),
        from_email="alice@café.example",
        deliveries=(WorkRecipient(id=7, to="anna@café.example"),),
    )

    message = parse_work(encode_work(queued))
    payload = build_payload(message)
    mime = email.message_from_bytes(payload_mime(payload, payload["personalizations"][0], domain="example.com"))

    assert payload["personalizations"][0]["to"] == [{"email": "anna@xn--caf-dma.example"}]
    assert payload["from"] == {"email": "alice@xn--caf-dma.example"}
    assert payload["reply_to"] == {"email": "bob@xn--bcher-kva.example"}
    assert (mime["From"], mime["To"], mime["Reply-To"]) == (
        "alice@xn--caf-dma.example",
        "anna@xn--caf-dma.example",
        "bob@xn--bcher-kva.example",
    )
    assert parse_work(encode_work(message)) == message
