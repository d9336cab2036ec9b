"""Failover between providers: the fake SendGrid first, a real SMTP server (aiosmtpd) second."""

from __future__ import annotations

import pytest

from emailsender.breaker import BreakerState
from emailsender.clients import SendGridClient
from emailsender.handler import handle
from emailsender.messages import encode_work
from emailsender.outcomes import OutcomeKind
from emailsender.providers import ProviderChain, providers_from_settings
from emailsender.providers.smtp import SmtpClient
from emailsender.settings import Settings
from emailsender.testing.smtp_sink import SmtpSink
from emailsender.tests.support import work_message

SETTINGS = Settings(max_attempts=5)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chain(fake, sink, clock, timeout: float = 5.0) -> ProviderChain:
    return ProviderChain(
        [("sendgrid", SendGridClient("SG.test", fake.url, timeout=timeout)), ("smtp", SmtpClient(sink.url()))],
        threshold=2,
        cool_down=30,
        clock=clock,
    )


def send(client, deliveries: int = 1):
    return handle(encode_work(work_message(deliveries)), 0, client, SETTINGS)


def test_a_503_fails_over_to_smtp_then_the_breaker_opens(fake, sink):
    clock = Clock()
    client = chain(fake, sink, clock)
    fake.set_mode(status=503)
    first = send(client, 2)
    assert first.kind is OutcomeKind.SENT and first.provider == "smtp"
    assert sink.wait_until(lambda s: len(s.received) == 2)
    send(client)
    assert client.breaker("sendgrid").state is BreakerState.OPEN
    asked = len(fake.requests)
    assert send(client).provider == "smtp"
    assert len(fake.requests) == asked  # open: SendGrid is not asked at all


def test_after_recovery_a_probe_closes_the_breaker_and_mail_returns_to_sendgrid(fake, sink):
    clock = Clock()
    client = chain(fake, sink, clock)
    fake.set_mode(status=503)
    send(client)
    send(client)
    assert client.breaker("sendgrid").state is BreakerState.OPEN
    fake.set_mode(status=202)
    clock.now += 29
    assert send(client).provider == "smtp"  # still cooling down
    clock.now += 2
    probe = send(client)
    assert probe.provider == "sendgrid" and client.breaker("sendgrid").state is BreakerState.CLOSED
    assert send(client).provider == "sendgrid"


def test_a_failed_probe_reopens_the_breaker(fake, sink):
    clock = Clock()
    client = chain(fake, sink, clock)
    fake.set_mode(status=500)
    send(client)
    send(client)
    clock.now += 31
    assert send(client).provider == "smtp"
    assert client.breaker("sendgrid").state is BreakerState.OPEN


def test_a_401_fails_over(fake, sink):
    client = chain(fake, sink, Clock())
    fake.set_mode(status=401)
    outcome = send(client)
    assert outcome.kind is OutcomeKind.SENT and outcome.provider == "smtp"
    assert sink.wait_until(lambda s: len(s.received) == 1)


def test_a_400_does_not_fail_over_nor_trip_the_breaker(fake, sink):
    client = chain(fake, sink, Clock())
    fake.set_mode(status=400)
    for _ in range(4):
        outcome = send(client)
        assert outcome.kind is OutcomeKind.FAILED and outcome.reason.startswith("SendGrid 400")
    assert client.breaker("sendgrid").state is BreakerState.CLOSED
    assert sink.received == []


def test_a_timeout_is_retried_not_failed_over_but_counts_toward_the_breaker(fake, sink):
    client = chain(fake, sink, Clock(), timeout=0.3)
    fake.set_mode(status="hang", hang_seconds=2)
    outcome = send(client)
    assert outcome.kind is OutcomeKind.RETRY and "SendGrid timeout" in outcome.reason
    assert sink.received == []  # SendGrid may have sent it: not sent again in the same attempt
    send(client)
    assert client.breaker("sendgrid").state is BreakerState.OPEN
    fake.set_mode(status=202)
    assert send(client).provider == "smtp"


def test_with_every_breaker_open_the_last_provider_is_still_tried_and_the_message_retries(fake):
    with SmtpSink() as closed:
        url = closed.url()
    client = ProviderChain(
        [("sendgrid", SendGridClient("SG.test", fake.url)), ("smtp", SmtpClient(url))], threshold=1, clock=Clock()
    )
    fake.set_mode(status=503)
    send(client)
    assert not client.breaker("sendgrid").allow() and not client.breaker("smtp").allow()
    requests = len(fake.requests)

    outcome = send(client)

    # Nowhere to fail over to: the last provider is called (and refuses), SendGrid is skipped.
    assert outcome.kind is OutcomeKind.RETRY and "SMTP connection" in outcome.reason
    assert len(fake.requests) == requests


def test_a_single_provider_is_called_even_with_its_breaker_open(fake):
    """With nothing to fail over to, an open breaker must not spend a message's attempts untried."""
    client = ProviderChain([("sendgrid", SendGridClient("SG.test", fake.url))], threshold=1, clock=Clock())
    fake.set_mode(status=503, count=1)
    assert send(client).kind is OutcomeKind.RETRY
    assert not client.breaker("sendgrid").allow()

    assert send(client).kind is OutcomeKind.SENT


def test_breaker_transitions_are_metrics_and_log_lines(fake, sink, caplog):
    from prometheus_client import REGISTRY

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    opened = value("emailsender_breaker_transitions_total", provider="sendgrid", to="open")
    via_smtp = value("emailsender_provider_sends_total", provider="smtp", result="sent")
    client = chain(fake, sink, Clock())
    fake.set_mode(status=503)
    with caplog.at_level("WARNING", logger="emailsender.breaker"):
        send(client)
        send(client)
    assert value("emailsender_breaker_transitions_total", provider="sendgrid", to="open") == opened + 1
    assert value("emailsender_breaker_state", provider="sendgrid", state="open") == 1
    assert value("emailsender_provider_sends_total", provider="smtp", result="sent") == via_smtp + 2
    [line] = [r for r in caplog.records if r.name == "emailsender.breaker"]
    assert line.getMessage().startswith("provider sendgrid breaker open: 2 failures in a row")
    assert (line.provider, line.breaker_from, line.breaker_to) == ("sendgrid", "closed", "open")


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_tls_failure_fails_over_to_the_next_provider(fake, sink, security):
    # The sink speaks plain SMTP only: implicit TLS fails its handshake, STARTTLS is not offered.
    first = SmtpClient(sink.url(security=security), timeout=5)
    client = ProviderChain([("smtp", first), ("sendgrid", SendGridClient("SG.test", fake.url))], clock=Clock())
    outcome = send(client)
    assert outcome.kind is OutcomeKind.SENT and outcome.provider == "sendgrid"
    assert sink.received == []


def test_the_breakers_cool_down_is_breaker_cool_down_seconds(fake, sink):
    settings = Settings.from_env(
        {
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
            "EMAIL_PROVIDERS": "sendgrid,smtp",
            "SENDGRID_API_KEY": "SG.test",
            "SENDGRID_API_HOST": fake.url,
            "SMTP_URL": sink.url(),
            "BREAKER_COOL_DOWN_SECONDS": "0.5",
        }
    )
    client = providers_from_settings(settings)
    assert {breaker.cool_down for _name, _client, breaker in client.providers} == {0.5}
