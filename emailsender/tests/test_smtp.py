"""The SMTP provider against a real SMTP server in the test process (aiosmtpd), through handle()."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy

import pytest

from emailsender.clients import EmlFolderClient
from emailsender.handler import build_payload, handle
from emailsender.logs import SecretMaskFilter
from emailsender.messages import WorkRecipient, encode_work
from emailsender.outcomes import OutcomeKind, results_for
from emailsender.providers import providers_from_settings
from emailsender.providers.smtp import SmtpClient
from emailsender.settings import Settings, SettingsError
from emailsender.testing.smtp_sink import SmtpSink
from emailsender.tests.support import work_message


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS, which these tests use
        with SmtpSink(username="mailer", password="s3cret pass") as server:
            yield server


def smtp_settings(url: str) -> Settings:
    return Settings.from_env({"EMAIL_PROVIDERS": "smtp", "SMTP_URL": url}, require_broker=False)


def url_of(sink: SmtpSink, password: str = "s3cret%20pass") -> str:  # noqa: S107 (the test server's password)
    return f"smtp://mailer:{password}@127.0.0.1:{sink.port}?security=none"


def test_smtp_only_delivery_sends_one_message_per_recipient_with_the_outbox_mime(sink, tmp_path):
    settings = smtp_settings(url_of(sink))
    message = work_message(3, html="<p>Hi</p>")
    outcome = handle(encode_work(message), 0, providers_from_settings(settings), settings)

    assert outcome.kind is OutcomeKind.SENT and outcome.provider == "smtp"
    assert sink.wait_until(lambda s: len(s.received) == 3)
    assert sorted(r.recipients for r in sink.received) == [(d.to,) for d in message.deliveries]
    EmlFolderClient(tmp_path).send(build_payload(message))
    for received in sink.received:
        sent = received.message
        assert sent["To"] == received.recipients[0]  # recipients never see each other
        assert sent["X-Email-Id"] == str(message.email_id)
        eml = next(p for p in tmp_path.glob("*.eml") if f"-d{sent['X-Delivery-Id']}-" in p.name)
        expected = message_from_bytes(eml.read_bytes(), policy=policy.default)
        for name in ("From", "To", "Subject", "Content-Type", "X-Email-Id", "X-Delivery-Id"):
            assert sent[name].split(";")[0] == expected[name].split(";")[0]
        assert sent.get_body(("plain",)).get_content() == expected.get_body(("plain",)).get_content()
        assert sent.get_body(("html",)).get_content() == expected.get_body(("html",)).get_content()
    [result] = results_for(outcome)
    assert result["outcome"] == "sent" and result["provider"] == "smtp"


def test_a_refused_recipient_fails_alone(sink):
    settings = smtp_settings(url_of(sink))
    message = work_message(3)
    bad = WorkRecipient(id=message.deliveries[1].id, to="refuse@example.com")
    message = replace(message, deliveries=(message.deliveries[0], bad, message.deliveries[2]))
    outcome = handle(encode_work(message), 0, providers_from_settings(settings), settings)

    assert outcome.kind is OutcomeKind.SENT
    assert set(outcome.delivery_ids) == {message.deliveries[0].id, message.deliveries[2].id}
    results = results_for(outcome)
    assert results[0]["outcome"] == "sent" and sorted(results[0]["deliveries"]) == sorted(outcome.delivery_ids)
    assert results[1]["outcome"] == "failed" and results[1]["deliveries"] == [bad.id]
    assert "550" in results[1]["reason"]
    assert sink.wait_until(lambda s: len(s.received) == 2)


def test_a_4xx_reply_retries(sink):
    settings = smtp_settings(url_of(sink))
    message = work_message(1)
    message = replace(message, deliveries=(WorkRecipient(id=message.deliveries[0].id, to="busy@example.com"),))
    outcome = handle(encode_work(message), 0, providers_from_settings(settings), settings)
    assert outcome.kind is OutcomeKind.RETRY and "SMTP deferred: SMTP 450" in outcome.reason


def test_auth_failure_is_a_provider_failure(sink):
    settings = smtp_settings(url_of(sink, password="wrong"))
    outcome = handle(encode_work(work_message(1)), 0, providers_from_settings(settings), settings)
    assert outcome.kind is OutcomeKind.RETRY and outcome.status_code == 535
    assert sink.received == []


def test_a_refused_connection_retries():
    with SmtpSink() as closed:
        url = closed.url()
    settings = smtp_settings(url)
    outcome = handle(encode_work(work_message(1)), 0, providers_from_settings(settings), settings)
    assert outcome.kind is OutcomeKind.RETRY and outcome.reason.startswith("SMTP connection")


def test_one_connection_is_reused_across_messages(sink):
    client = SmtpClient(url_of(sink))
    client.send(build_payload(work_message(2)))
    first = client._local.connection
    client.send(build_payload(work_message(2)))
    assert client._local.connection is first
    assert sink.wait_until(lambda s: len(s.received) == 4)


def test_settings_name_every_provider_problem():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {"EMAIL_PROVIDERS": "sendgrid,smtp,pigeon", "SMTP_URL": "smtp://u:hunter2@h?security=ssl"},
            require_broker=False,
        )
    problems = " ".join(raised.value.problems)
    assert "EMAIL_PROVIDERS" in problems and "SENDGRID_API_KEY" in problems and "SMTP_URL security" in problems
    assert "hunter2" not in problems
    with pytest.raises(SettingsError, match="SMTP_URL is required"):
        Settings.from_env({"EMAIL_PROVIDERS": "smtp"}, require_broker=False)


def test_providers_default_to_sendgrid_with_a_key_and_the_outbox_without():
    assert Settings.from_env({"SENDGRID_API_KEY": "SG.x"}, require_broker=False).providers == ("sendgrid",)
    assert Settings.from_env({}, require_broker=False).providers == ("eml",)


def test_the_smtp_password_is_masked_in_logs_and_reprs(caplog):
    url = "smtp://mailer:hunter2secret@relay.example.com:587?security=starttls"
    settings = smtp_settings(url)
    assert "hunter2secret" not in repr(settings) and "hunter2secret" not in repr(providers_from_settings(settings))
    record = logging.makeLogRecord({"msg": "connecting to %s", "args": (url,), "smtp_url": url})
    SecretMaskFilter().filter(record)
    assert "hunter2secret" not in record.getMessage() and "hunter2secret" not in str(record.__dict__)
