"""The system checks of emails.checks: the webhook key by where the process runs, and the From of verification links."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def checked(capsys) -> str:
    call_command("check")
    return capsys.readouterr().err


def test_make_run_gets_no_webhook_key_warning_because_no_webhook_can_reach_it(settings, capsys):
    settings.DEBUG, settings.RABBITMQ_URL, settings.SENDGRID_WEBHOOK_PUBLIC_KEY = True, "", ""

    assert "emails.W001" not in checked(capsys)


@pytest.mark.parametrize(
    ("debug", "rabbitmq_url"),
    [(False, ""), (False, "amqp://guest:guest@127.0.0.1:5672/"), (True, "amqp://guest:guest@127.0.0.1:5672/")],
    ids=["production-embedded", "production", "make-run-stack"],
)
def test_every_other_process_without_a_key_is_warned(settings, capsys, debug, rabbitmq_url):
    settings.DEBUG, settings.RABBITMQ_URL, settings.SENDGRID_WEBHOOK_PUBLIC_KEY = debug, rabbitmq_url, ""

    assert "emails.W001" in checked(capsys)


def test_an_unusable_key_is_an_error_under_make_run_too(settings):
    settings.DEBUG, settings.RABBITMQ_URL = True, ""
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = "bm90IGEga2V5"  # base64 of "not a key"

    with pytest.raises(SystemCheckError, match=r"emails\.E001"):
        call_command("check")


@pytest.mark.parametrize(
    ("sendgrid_key", "system_from", "email_from", "warned"),
    [
        ("SG.key", "", "", True),
        ("SG.key", "", "mailer@example.org", False),
        ("SG.key", "accounts@example.org", "", False),
        ("", "", "", False),  # the local outbox takes any From
    ],
    ids=["sendgrid-no-sender", "sendgrid-email-from", "sendgrid-system-from", "outbox"],
)
def test_sendgrid_without_a_sender_for_verification_links_is_warned(
    settings, capsys, sendgrid_key, system_from, email_from, warned
):
    settings.SENDGRID_API_KEY, settings.SYSTEM_FROM_ADDRESS, settings.EMAIL_FROM_ADDRESS = (
        sendgrid_key,
        system_from,
        email_from,
    )

    assert ("emails.W002" in checked(capsys)) is warned
