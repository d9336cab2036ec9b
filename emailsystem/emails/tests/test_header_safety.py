"""Headers cannot be injected through RFC 2047 encoded words (CVE-2024-6923), nor through an
address, and one address the sender cannot use fails only its own recipient.

The API refuses such subjects, context values and addresses with a 400 naming the field; what
was queued before reaches the outbox (the MIME an SMTP provider sends too) and SendGrid safe.
"""

import base64
import email
import email.policy

import pytest

from emailsender.clients import EmlFolderClient, SendGridClient
from emailsender.headers import has_encoded_line_break
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import DeliveryStatus, EmailStatus, EmailTemplate, OutboxMessage, SentEmail
from emailsystem.emails.rendering import ENCODED_LINE_BREAK_MESSAGE
from emailsystem.emails.tests.factories import EmailTemplateFactory, sent_email

SENDS = "/api/v1/emails/sent-email/"
TEMPLATES = "/api/v1/emails/email-template/"
pytestmark = pytest.mark.django_db

ATTACKS = {
    "q": "=?utf-8?q?Hi=0D=0ABcc=3A_evil=40attacker=2Etest=0D=0AX-Injected=3A_yes?=",
    "b": "=?utf-8?b?" + base64.b64encode(b"Hi\r\nBcc: evil@attacker.test\r\nX-Injected: yes").decode() + "?=",
}
RENDERED_MESSAGE = (
    "The rendered subject holds an RFC 2047 encoded word (=?charset?q?...?=) that decodes to a line break."
)


def nothing_written() -> bool:
    return not SentEmail.objects.exists() and not OutboxMessage.objects.exists()


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_an_ad_hoc_subject_whose_encoded_word_decodes_to_a_line_break_is_refused(user_client, attack):
    response = user_client.post(SENDS, {"recipients": ["a@example.com"], "subject": attack, "body": "b"}, format="json")

    assert response.status_code == 400
    assert response.json()["subject"] == [ENCODED_LINE_BREAK_MESSAGE]
    assert nothing_written()


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_context_value_that_puts_such_an_encoded_word_into_the_subject_is_refused(user_client, attack):
    template = EmailTemplateFactory(subject="Hello {{ name }}", body="Hi {{ name }}", html_body="")

    response = user_client.post(
        SENDS, {"recipients": ["a@example.com"], "template": template.pk, "context": {"name": attack}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["context"] == [RENDERED_MESSAGE]
    assert nothing_written()


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_template_subject_holding_such_an_encoded_word_is_refused_when_saved(admin_client_api, attack):
    response = admin_client_api.post(TEMPLATES, {"name": "t", "subject": attack, "body": "b"}, format="json")

    assert response.status_code == 400
    assert response.json()["subject"] == [ENCODED_LINE_BREAK_MESSAGE]
    assert not EmailTemplate.objects.exists()


def test_encoded_words_without_line_breaks_are_sent_as_written(user_client):
    subject = "=?utf-8?q?caf=C3=A9?= for two"

    response = user_client.post(
        SENDS, {"recipients": ["a@example.com"], "subject": subject, "body": "b"}, format="json"
    )

    assert response.status_code == 202
    assert SentEmail.objects.get().subject == subject


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_queued_email_with_such_a_subject_reaches_the_outbox_without_extra_headers(settings, tmp_path, attack):
    # Recorded as a send queued before the API refused these would be.
    sent_email(recipients=["a@example.com"], subject=attack)

    outbox_process(client=EmlFolderClient(tmp_path), config=sender_settings())

    [eml] = tmp_path.rglob("*.eml")
    raw = eml.read_bytes()
    header_lines = raw.split(b"\n\n", 1)[0].split(b"\n")
    assert not [line for line in header_lines if line.startswith((b"Bcc:", b"X-Injected:"))]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert parsed["Subject"] == "Hi  Bcc: evil@attacker.test  X-Injected: yes"


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_queued_email_with_such_a_subject_reaches_sendgrid_neutralised(settings, fake, attack):
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = fake.url
    sent_email(recipients=["a@example.com"], subject=attack)

    outbox_process(client=SendGridClient("SG.test-key", fake.url, timeout=5), config=sender_settings())

    [request] = fake.requests
    assert not has_encoded_line_break(request.body["subject"])
    assert request.body["subject"] == "Hi  Bcc: evil@attacker.test  X-Injected: yes"


@pytest.mark.parametrize(
    "address",
    ['"a\\ b"@example.com', '"a b"@example.com', '"a\tb"@example.com', '"a\u0007b"@example.com', "a@[127.0.0.1]"],
    ids=["escaped-space", "space", "tab", "control", "address-literal"],
)
def test_an_address_the_sender_cannot_use_is_refused_naming_the_recipient(user_client, address):
    response = user_client.post(
        SENDS, {"recipients": ["ok@example.com", address], "subject": "s", "body": "b"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["recipients"] == {"1": ["Enter a valid email address."]}
    assert nothing_written()


def test_a_quoted_local_part_of_visible_characters_is_accepted(user_client):
    response = user_client.post(
        SENDS, {"recipients": ['"john..doe"@example.com'], "subject": "s", "body": "b"}, format="json"
    )

    assert response.status_code == 202


def test_a_queued_recipient_whose_address_cannot_be_used_fails_alone(settings, tmp_path):
    # Recorded as a send queued before the API refused this address would be.
    queued = sent_email(recipients=["a@example.com", '"a\\ b"@example.com', "c@example.com"])

    outbox_process(client=EmlFolderClient(tmp_path), config=sender_settings())

    written = sorted(email.message_from_bytes(path.read_bytes())["To"] for path in tmp_path.rglob("*.eml"))
    assert written == ["a@example.com", "c@example.com"]
    statuses = {d.recipient.email: (d.status, d.reason) for d in queued.deliveries.select_related("recipient")}
    assert statuses == {
        "a@example.com": (DeliveryStatus.SENT, ""),
        '"a\\ b"@example.com': (DeliveryStatus.FAILED, "unusable address: Enter a valid email address."),
        "c@example.com": (DeliveryStatus.SENT, ""),
    }
    queued.refresh_from_db()
    assert queued.status == EmailStatus.PARTIAL
    assert not OutboxMessage.objects.exists()
