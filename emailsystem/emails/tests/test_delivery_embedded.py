"""Embedded mode (no RABBITMQ_URL): the web process delivers with the sender's own code."""

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from emailsender.clients import EmlFolderClient, SendGridClient
from emailsender.logs import current_request_id, request_id_bound
from emailsystem.emails.delivery import embedded
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, OutboxMessage, SentEmail
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def sendgrid(fake, settings):
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = fake.url
    config = sender_settings()
    return SendGridClient(config.sendgrid_api_key, config.sendgrid_api_host, timeout=2), config


def make_due():
    OutboxMessage.objects.update(available_at=timezone.now() - datetime.timedelta(seconds=1))


def test_without_an_api_key_each_recipient_is_written_as_an_eml_file(settings, tmp_path):
    settings.OUTBOX_DIR = str(tmp_path)
    email = sent_email(recipients=["a@example.com", "b@example.com"], subject="Hello", body="Plain body")

    handled = outbox_process(client=EmlFolderClient(tmp_path), config=sender_settings())

    files = sorted(tmp_path.rglob("*.eml"))
    assert handled == 1
    assert len(files) == 2
    assert "To: a@example.com" in files[0].read_text() or "To: a@example.com" in files[1].read_text()
    assert all("Subject: Hello" in path.read_text() for path in files)
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert set(email.deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert not OutboxMessage.objects.exists()


def test_with_an_api_key_one_request_goes_to_sendgrid_with_a_personalization_per_recipient(sendgrid, fake):
    client, config = sendgrid
    email = sent_email(recipients=["a@example.com", "b@example.com", "c@example.com"], subject="Hi", body="Body")

    outbox_process(client=client, config=config)

    [request] = fake.requests
    assert [p["to"] for p in request.body["personalizations"]] == [
        [{"email": "a@example.com"}],
        [{"email": "b@example.com"}],
        [{"email": "c@example.com"}],
    ]
    assert sorted(request.delivery_ids) == sorted(email.deliveries.values_list("pk", flat=True))
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT


def test_a_server_error_is_retried_later_then_sent(sendgrid, fake):
    client, config = sendgrid
    fake.set_mode(status=500, count=1)
    email = sent_email(recipients=["a@example.com"])

    outbox_process(client=client, config=config)

    row = OutboxMessage.objects.get()
    assert row.attempts == 1 and "500" in row.last_error
    assert row.available_at > timezone.now()
    assert outbox_process(client=client, config=config) == 0, "not due yet"

    make_due()
    outbox_process(client=client, config=config)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert len(fake.requests) == 2
    assert SentEmail.objects.get(pk=email.pk).status == EmailStatus.SENT


def test_a_rate_limit_waits_without_using_an_attempt(sendgrid, fake):
    client, config = sendgrid
    fake.set_mode(status=429, count=1, reset_seconds=30)
    sent_email(recipients=["a@example.com"])

    outbox_process(client=client, config=config)

    row = OutboxMessage.objects.get()
    assert row.attempts == 0
    assert row.available_at > timezone.now() + datetime.timedelta(seconds=20)
    assert Delivery.objects.get().status == DeliveryStatus.QUEUED


def test_a_client_error_fails_at_once_with_the_reason(sendgrid, fake):
    client, config = sendgrid
    fake.set_mode(status=400, count=1)
    email = sent_email(recipients=["a@example.com"])

    outbox_process(client=client, config=config)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "400" in delivery.reason
    assert len(fake.requests) == 1
    assert not OutboxMessage.objects.exists()
    assert SentEmail.objects.get(pk=email.pk).status == EmailStatus.FAILED


def test_the_last_attempt_fails_the_recipients(sendgrid, fake):
    client, config = sendgrid
    fake.set_mode(status=503)
    sent_email(recipients=["a@example.com"])

    for _ in range(config.max_attempts):
        make_due()
        outbox_process(client=client, config=config)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, config.max_attempts)
    assert "503" in delivery.reason
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_thread_delivers_a_send_made_through_the_api(settings, tmp_path, user_client):
    settings.OUTBOX_DIR = str(tmp_path)
    with override_settings(RABBITMQ_URL="", SENDGRID_API_KEY=""):
        worker = embedded.start_embedded_worker()
        try:
            response = user_client.post(
                "/api/v1/emails/sent-email/",
                {"recipients": ["a@example.com", "b@example.com"], "subject": "s", "body": "b"},
                format="json",
            )
            deadline = time.monotonic() + 10
            while SentEmail.objects.get(pk=response.json()["id"]).status != EmailStatus.SENT:
                assert time.monotonic() < deadline, "the embedded worker did not deliver"
                time.sleep(0.05)
        finally:
            worker.stop()
            embedded._worker = None

    assert len(list(tmp_path.rglob("*.eml"))) == 2


def test_the_delivery_log_line_carries_the_request_id_of_the_send(settings, tmp_path, user_client, delivery_log):
    settings.OUTBOX_DIR = str(tmp_path)
    response = user_client.post(
        "/api/v1/emails/sent-email/",
        {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
        format="json",
        HTTP_X_REQUEST_ID="req-embedded-1",
    )
    assert response.status_code == 202
    email_id = response.json()["id"]
    outbox_id = OutboxMessage.objects.get().pk

    # The worker handles the row later, in its own thread, outside the request.
    outbox_process(client=EmlFolderClient(tmp_path), config=sender_settings())

    [line] = [line for line in delivery_log() if line["msg"].startswith(f"email {email_id}:")]
    assert line["request_id"] == "req-embedded-1"
    assert line["outcome"] == "sent"
    assert (line["email_id"], line["message_id"]) == (email_id, f"email-{email_id}.outbox-{outbox_id}")
    assert current_request_id.get() is None, "the row's request id must not outlive its delivery"


def test_a_retry_logs_the_request_id_too_and_a_row_without_one_logs_none(sendgrid, fake, delivery_log):
    client, config = sendgrid
    fake.set_mode(status=500, count=1)
    with request_id_bound("req-embedded-2"):
        first = sent_email(recipients=["a@example.com"])
    second = sent_email(recipients=["b@example.com"])

    outbox_process(client=client, config=config)

    by_email = {line["email_id"]: line for line in delivery_log() if "outcome" in line}
    assert (by_email[first.pk]["outcome"], by_email[first.pk]["request_id"]) == ("retry", "req-embedded-2")
    assert by_email[second.pk]["outcome"] == "sent" and "request_id" not in by_email[second.pk]


STARTUP = """
import django
django.setup()
from emailsystem.emails.delivery import embedded
embedded.EmbeddedWorker.run = lambda self: None  # only the start-up line is under test, not a delivery pass
import emailsystem.wsgi
"""


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_the_start_up_line_is_a_log_line_in_the_configured_format(tmp_path, log_format):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
        "DJANGO_DEBUG": "1",
        "LOG_FORMAT": log_format,
        "RABBITMQ_URL": "",
        "SENDGRID_API_KEY": "",
        "OUTBOX_DIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", STARTUP], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert run.stdout == "", "nothing bypasses logging"
    expected = f"Embedded delivery: no SENDGRID_API_KEY, emails are written to {tmp_path}"
    if log_format == "json":
        lines = [json.loads(line) for line in run.stderr.splitlines()]  # every line is JSON
        [line] = [line for line in lines if line["msg"] == expected]
        assert (line["level"], line["logger"]) == ("info", "emailsystem.emails.delivery.embedded")
    else:
        [line] = [line for line in run.stderr.splitlines() if expected in line]
        assert line.endswith(f"INFO emailsystem.emails.delivery.embedded {expected}")
