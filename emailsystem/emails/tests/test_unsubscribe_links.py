"""One-click unsubscribe links: signed tokens that name user, recipient and delivery, read
without the database; each recipient's URL in the work message however it is built; the
system checks on PUBLIC_BASE_URL."""

import warnings

import pytest
from django.core import signing
from django.core.management import call_command

from emailsender.providers import providers_from_settings
from emailsender.testing.smtp_sink import SmtpSink
from emailsender.unsubscribe import is_unsubscribe_url
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.delivery.work import work_message_build, work_message_for_outbox, work_messages_for_outbox
from emailsystem.emails.models import Delivery, OutboxMessage
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.unsubscribe.links import (
    SALT,
    InvalidUnsubscribeToken,
    UnsubscribeLink,
    unsubscribe_link_read,
    unsubscribe_token,
    unsubscribe_url,
)

BASE = "https://mail.example.com"
LINK = UnsubscribeLink(user_id=7, recipient_id=31, delivery_id=101)


@pytest.fixture
def sink():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with SmtpSink() as server:
            yield server


def test_a_token_names_user_recipient_and_delivery_and_reads_back_without_the_database():
    token = unsubscribe_token(LINK)

    assert token.startswith("7.31.101:")
    assert unsubscribe_link_read(token) == LINK  # no django_db mark: a query would fail the test
    url = unsubscribe_url(base_url=BASE, link=LINK)
    assert url == f"{BASE}/u/{token}" and is_unsubscribe_url(url)
    assert len(url) < 100  # per recipient in the work message


def tampered_tokens() -> dict[str, str]:
    token = unsubscribe_token(LINK)
    value, _, signature = token.rpartition(":")
    return {
        "another recipient": token.replace("7.31.", "7.32.", 1),
        "another user": token.replace("7.", "8.", 1),
        "a changed signature": f"{value}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}",
        "cut short": token[:-1],
        "no signature": value,
        "empty": "",
        "the same value signed for another purpose": signing.Signer(salt="emailsystem.users").sign(value),
        "the same value signed with another key": signing.Signer(key="another-secret", salt=SALT).sign(value),
        "a signed value that is not a link's": signing.Signer(salt=SALT).sign("7.31"),
    }


@pytest.mark.parametrize("name", list(tampered_tokens()))
def test_a_token_this_service_did_not_sign_for_this_link_is_refused(name):
    with pytest.raises(InvalidUnsubscribeToken):
        unsubscribe_link_read(tampered_tokens()[name])


def test_a_token_signed_with_a_fallback_key_still_reads_after_the_key_is_rotated(settings):
    token = unsubscribe_token(LINK)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-rotated-key-" + "x" * 40

    assert unsubscribe_link_read(token) == LINK


@pytest.mark.django_db
def test_each_delivery_of_an_email_with_unsubscribe_gets_its_own_url_however_the_message_is_built(user, settings):
    settings.PUBLIC_BASE_URL = BASE
    email = sent_email(user=user, recipients=["a@example.com", "b@example.com"], unsubscribe=True)
    rows = list(Delivery.objects.filter(sent_email=email).order_by("pk").values_list("pk", "recipient_id"))
    [outbox] = OutboxMessage.objects.all()

    built = work_message_build(sent_email=email, deliveries=[(pk, "x@example.com") for pk, _ in rows])
    relayed = work_message_for_outbox(outbox)
    [batched] = work_messages_for_outbox(list(OutboxMessage.objects.select_related("sent_email"))).values()

    for message in (built, relayed, batched):
        links = [unsubscribe_link_read(d.unsubscribe.removeprefix(f"{BASE}/u/")) for d in message.deliveries]
        assert links == [UnsubscribeLink(user.pk, recipient_id, delivery_id) for delivery_id, recipient_id in rows]


@pytest.mark.django_db
def test_embedded_mode_over_smtp_mails_each_recipient_its_own_link(user, settings, sink, monkeypatch):
    settings.PUBLIC_BASE_URL = BASE
    monkeypatch.setenv("EMAIL_PROVIDERS", "smtp")
    monkeypatch.setenv("SMTP_URL", sink.url())
    config = sender_settings()
    email = sent_email(user=user, recipients=["a@example.com", "b@example.com"], unsubscribe=True)

    assert outbox_process(client=providers_from_settings(config), config=config) == 1

    assert sink.wait_until(lambda s: len(s.received) == 2)
    received = {r.recipients[0]: r.message for r in sink.received}
    for delivery in Delivery.objects.filter(sent_email=email).select_related("recipient"):
        message = received[delivery.recipient.email]
        token = message["List-Unsubscribe"].removeprefix(f"<{BASE}/u/").removesuffix(">")
        assert unsubscribe_link_read(token) == UnsubscribeLink(user.pk, delivery.recipient_id, delivery.pk)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.django_db
def test_an_email_without_unsubscribe_carries_no_url(user, settings):
    settings.PUBLIC_BASE_URL = BASE
    sent_email(user=user, recipients=["a@example.com"])

    [outbox] = OutboxMessage.objects.all()

    assert [d.unsubscribe for d in work_message_for_outbox(outbox).deliveries] == [None]


@pytest.mark.django_db
def test_an_email_accepted_before_public_base_url_was_unset_is_sent_without_the_urls(user, settings, caplog):
    settings.PUBLIC_BASE_URL = BASE
    email = sent_email(user=user, recipients=["a@example.com"], unsubscribe=True)
    settings.PUBLIC_BASE_URL = ""

    [outbox] = OutboxMessage.objects.all()

    assert [d.unsubscribe for d in work_message_for_outbox(outbox).deliveries] == [None]
    assert any(
        "PUBLIC_BASE_URL is unset" in r.getMessage() and getattr(r, "email_id", None) == email.pk
        for r in caplog.records
    )


def checked(capsys) -> str:
    call_command("check")
    return capsys.readouterr().err


def test_a_public_host_django_refuses_is_warned(settings, capsys):
    settings.PUBLIC_BASE_URL, settings.ALLOWED_HOSTS = BASE, ["localhost"]
    assert "emails.W003" in checked(capsys)

    settings.ALLOWED_HOSTS = ["localhost", "mail.example.com"]
    assert "emails.W003" not in checked(capsys)


def test_an_http_public_base_url_is_warned_outside_debug(settings, capsys):
    settings.ALLOWED_HOSTS = ["mail.example.com"]
    settings.DEBUG, settings.PUBLIC_BASE_URL = False, "http://mail.example.com"
    assert "emails.W004" in checked(capsys)

    settings.DEBUG = True  # make run's http://127.0.0.1:8000
    assert "emails.W004" not in checked(capsys)
    settings.DEBUG, settings.PUBLIC_BASE_URL = False, BASE
    assert "emails.W004" not in checked(capsys)
