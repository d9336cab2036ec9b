"""Embedded mode (`make run`) delivering through SMTP: EMAIL_PROVIDERS=smtp, a real SMTP server in the test."""

import warnings

import pytest

from emailsender.providers import providers_from_settings
from emailsender.testing.smtp_sink import SmtpSink
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import DeliveryStatus, EmailStatus
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with SmtpSink() as server:
            yield server


def test_embedded_mode_sends_one_message_per_recipient_over_smtp_and_records_the_provider(sink, monkeypatch):
    monkeypatch.setenv("EMAIL_PROVIDERS", "smtp")
    monkeypatch.setenv("SMTP_URL", sink.url())
    config = sender_settings()
    email = sent_email(recipients=["a@example.com", "b@example.com"], subject="Hello", body="Plain body")

    assert outbox_process(client=providers_from_settings(config), config=config) == 1

    assert sink.wait_until(lambda s: len(s.received) == 2)
    assert sorted(r.recipients for r in sink.received) == [("a@example.com",), ("b@example.com",)]
    assert all(r.message["Subject"] == "Hello" for r in sink.received)
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert set(email.deliveries.values_list("status", "provider")) == {(DeliveryStatus.SENT, "smtp")}
