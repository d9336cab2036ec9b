"""Broker mode: the send fields travel in the work message, whether the request publishes it from
memory or the relay rebuilds it from the database after an outage."""

import base64

import pytest

from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.outbox import outbox_relay
from emailsystem.emails.models import OutboxMessage
from emailsystem.emails.tests.conftest import RABBITMQ_TEST_URL
from emailsystem.emails.tests.test_delivery_broker import UNREACHABLE, URL, dispatched, work_messages

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
PDF = b"%PDF-1.4\n" + bytes(range(256))
BODY = {
    "recipients": ["a@example.com", "b@example.com"],
    "subject": "s",
    "body": "b",
    "tags": ["invoice"],
    "metadata": {"order": "42"},
    "sandbox": True,
    "attachments": [{"filename": "invoice.pdf", "content": base64.b64encode(PDF).decode()}],
}


def assert_fields(message):
    assert message.options.tags == ("invoice",)
    assert dict(message.options.metadata) == {"order": "42"}
    assert message.options.sandbox is True
    [attachment] = message.options.attachments
    assert (attachment.filename, attachment.type, attachment.disposition) == (
        "invoice.pdf",
        "application/pdf",
        "attachment",
    )
    assert attachment.content == PDF


def test_the_request_publishes_the_fields_and_the_attachment_bytes(broker, user_client):
    assert user_client.post(URL, BODY, format="json").status_code == 202

    [(_properties, message)] = work_messages(broker)
    assert_fields(message)


def test_the_relay_rebuilds_the_fields_and_the_attachment_from_the_database(broker, settings, monkeypatch, user_client):
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE * 0)
    settings.RABBITMQ_URL = UNREACHABLE
    assert user_client.post(URL, BODY, format="json").status_code == 202
    dispatched()
    assert OutboxMessage.objects.exists()

    settings.RABBITMQ_URL = RABBITMQ_TEST_URL
    assert outbox_relay() == 1

    [(_properties, message)] = work_messages(broker)
    assert_fields(message)
