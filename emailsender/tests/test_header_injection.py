"""RFC 2047 encoded words that decode to line breaks never become headers (CVE-2024-6923).

Python's email package before 3.11.10 / 3.12.5 writes such a decoded line break out raw when
it folds a header; these tests hold on any version. Each path a message takes out of the
service: the .eml outbox (mime.build_mime, which an SMTP provider uses too), and SendGrid.
"""

from __future__ import annotations

import base64
import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsender.clients import EmlFolderClient, SendGridClient
from emailsender.handler import build_payload, handle
from emailsender.headers import has_encoded_line_break
from emailsender.messages import encode_work
from emailsender.mime import build_mime
from emailsender.outcomes import OutcomeKind
from emailsender.settings import Settings
from emailsender.tests.support import work_message

SETTINGS = Settings(max_attempts=5, retry_base_seconds=2, retry_max_seconds=600)
INJECTED = b"Hi\r\nBcc: evil@attacker.test\r\nX-Injected: yes"
ATTACKS = {
    "q": "=?utf-8?q?Hi=0D=0ABcc=3A_evil=40attacker=2Etest=0D=0AX-Injected=3A_yes?=",
    "b": f"=?utf-8?b?{base64.b64encode(INJECTED).decode()}?=",
    "Q-inside-text": "Order =?UTF-8?Q?Hi=0ABcc=3A_evil=40attacker=2Etest?= shipped",
}
HEADERS = {"from", "to", "reply-to", "subject", "date", "message-id", "x-email-id", "x-delivery-id", "mime-version"}
HEADERS |= {"content-type", "content-transfer-encoding"}


def assert_no_injected_header(raw: bytes) -> email.message.EmailMessage:
    lines = raw.split(b"\n\n", 1)[0].split(b"\n")
    assert not [line for line in lines if line.lower().startswith((b"bcc:", b"x-injected:"))]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]
    return parsed


@pytest.mark.parametrize("subject", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_outbox_writes_no_header_from_an_encoded_subject(tmp_path, subject):
    message = work_message(subject=subject, reply_to="bob@example.com", html="<p>hi</p>")

    outcome = handle(encode_work(message), 0, EmlFolderClient(tmp_path), SETTINGS)

    assert outcome.kind is OutcomeKind.SENT
    [eml] = tmp_path.glob("*.eml")
    parsed = assert_no_injected_header(eml.read_bytes())
    assert "Bcc: evil@attacker.test" in parsed["Subject"]  # kept as text, on the subject's line
    assert parsed["To"] == message.deliveries[0].to and parsed["Reply-To"] == "bob@example.com"


@pytest.mark.parametrize("subject", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_outbox_is_safe_even_for_a_payload_that_skipped_parsing(tmp_path, subject):
    # build_payload of a message built in memory: nothing neutralised the subject before mime.py.
    EmlFolderClient(tmp_path).send(build_payload(work_message(subject=subject)))

    [eml] = tmp_path.glob("*.eml")
    assert_no_injected_header(eml.read_bytes())


@pytest.mark.parametrize("subject", ATTACKS.values(), ids=ATTACKS.keys())
def test_sendgrid_is_never_given_an_encoded_word_that_decodes_to_a_line_break(fake, subject):
    message = work_message(subject=subject)

    outcome = handle(encode_work(message), 0, SendGridClient("SG.key", fake.url, timeout=5), SETTINGS)

    assert outcome.kind is OutcomeKind.SENT
    sent_subject = fake.requests[0].body["subject"]
    assert not has_encoded_line_break(sent_subject)
    assert "Bcc: evil@attacker.test" in sent_subject and "\n" not in sent_subject


def test_smtp_line_endings_are_checked_the_same_way():
    raw = build_mime(
        from_email="a@example.com", to=["b@example.com"], subject=ATTACKS["q"], text="hi", html=None, linesep="\r\n"
    )

    assert b"\r\nBcc:" not in raw and b"\r\nX-Injected:" not in raw
    assert all(line.endswith(b"\r") or not line for line in raw.split(b"\r\n\r\n")[0].split(b"\n")[:-1])


encoded_words = st.builds(
    lambda charset, kind, data: (
        f"=?{charset}?{kind}?"
        + (base64.b64encode(data).decode() if kind in "bB" else "".join(f"={byte:02X}" for byte in data))
        + "?="
    ),
    st.sampled_from(["utf-8", "UTF-8", "latin-1", "utf-16", "us-ascii*en"]),
    st.sampled_from("qQbB"),
    st.binary(max_size=30) | st.sampled_from([INJECTED, b"\n", b"\r", b"\x00", b"a\nX-Y: z"]),
)
header_text = st.lists(encoded_words | st.text(max_size=20), max_size=6).map(" ".join)


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(subject=header_text, extra=header_text)
def test_whatever_the_subject_every_header_line_is_one_of_ours(subject, extra):
    if any("\ud800" <= char <= "\udfff" for char in subject + extra):
        subject, extra = subject.encode("utf-8", "replace").decode(), extra.encode("utf-8", "replace").decode()
    raw = build_mime(
        from_email="a@example.com",
        to=["b@example.com"],
        subject=subject,
        text="hi",
        html="<p>hi</p>",
        headers=[("X-Email-Id", extra)],
    )

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert {name.lower() for name in parsed} <= HEADERS
    assert parsed.get_body(("plain",)).get_content().strip() == "hi"
