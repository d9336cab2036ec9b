"""The sender process's loop (real RabbitMQ) delivering through SMTP, and failing over to it."""

from __future__ import annotations

import pytest

from emailsender.tests.support import work_message

pytestmark = pytest.mark.rabbitmq


def test_smtp_only_the_sender_sends_one_message_per_recipient_and_reports_the_provider(broker, sink, start_sender):
    settings = broker.settings(email_providers=("smtp",), smtp_url=sink.url())
    message = work_message(deliveries=3, html="<p>Hello</p>")
    broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 1)

    assert sink.wait_until(lambda s: len(s.received) == 3)
    assert sorted(r.recipients for r in sink.received) == [(d.to,) for d in message.deliveries]
    assert {r.message["X-Email-Id"] for r in sink.received} == {str(message.email_id)}
    [result] = results
    assert result["outcome"] == "sent" and result["provider"] == "smtp"
    assert sorted(result["deliveries"]) == sorted(message.delivery_ids)


def test_sendgrid_answering_503_the_sender_delivers_through_smtp(broker, fake, sink, start_sender):
    settings = broker.settings(fake, email_providers=("sendgrid", "smtp"), smtp_url=sink.url())
    fake.set_mode(status=503)
    messages = [work_message(deliveries=2) for _ in range(3)]
    for message in messages:
        broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 3)

    assert {r["outcome"] for r in results} == {"sent"} and {r["provider"] for r in results} == {"smtp"}
    assert sink.wait_until(lambda s: len(s.received) == 6)
