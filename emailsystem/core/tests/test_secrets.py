"""Secrets never reach a log line or a response body.

Every logger is turned up to DEBUG and every record captured while a user registers, follows
the verification link mailed to them, fails to log in, logs in, sends, reads the log, issues,
uses and revokes an API key, uses a revoked key and a revoked token, and delivery meets SendGrid
errors with a recognisable SENDGRID_API_KEY. Then the password, the token key, the API key, the
verification link's token, the Django secret key and the SendGrid key are searched for in every
record (message, arguments, extra fields, traceback) and in every response body.
"""

import datetime
import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from emailsender.clients import SendGridClient
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.embedded import outbox_process
from emailsystem.emails.models import OutboxMessage

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Secret-8841"
WRONG_PASSWORD = "Wrong-Horse-Secret-5512"
SECRET_KEY = "django-secret-key-for-the-leak-test-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"
SENDGRID_KEY = "SG.sendgrid-key-for-the-leak-test.7c1e9a3b5d"


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured():
    """Every logger at DEBUG, propagating to one handler on the root; restored afterwards."""
    handler = Everything()
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in loggers]
    saved_root = root.level
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved_root)
    for logger, level, propagate, disabled in saved:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture
def fake():
    with FakeSendGrid() as server:
        yield server


def record_text(handler: Everything, record: logging.LogRecord) -> str:
    """All a log line could carry: the formatted message, its arguments, extras and traceback."""
    parts = [record.getMessage(), repr(record.args), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def make_due() -> None:
    OutboxMessage.objects.update(available_at=timezone.now() - datetime.timedelta(seconds=1))


@override_settings(SECRET_KEY=SECRET_KEY, SENDGRID_API_KEY=SENDGRID_KEY)
def test_no_secret_in_any_log_record_or_response_body(captured, fake, settings):
    settings.SENDGRID_API_HOST = fake.url
    client = APIClient()
    bodies = []

    def call(method: str, path: str, data: dict | None = None, **headers: str):
        response = getattr(client, method)(path, data, format="json", **headers)
        bodies.append(response.content.decode(errors="replace"))
        return response

    call("post", "/api/v1/users/register/", {"email": "ada@example.com", "username": "ada", "password": PASSWORD})
    # The verification link, as SendGrid received it, is a secret until it is used.
    config = sender_settings()
    assert config.sendgrid_api_key == SENDGRID_KEY
    sendgrid = SendGridClient(config.sendgrid_api_key, config.sendgrid_api_host, timeout=2)
    outbox_process(client=sendgrid, config=config)
    mailed = next(part["value"] for part in fake.requests[0].body["content"] if part["type"] == "text/plain")
    link = re.search(r"http://\S+", mailed)[0]
    link_token = parse_qs(urlsplit(link).query)["token"][0]
    assert call("get", link.removeprefix("http://testserver")).status_code == 200
    assert (
        call("post", "/api/v1/users/login/", {"username": "ada@example.com", "password": WRONG_PASSWORD}).status_code
        == 400
    )
    call("post", "/api/v1/users/register/", {"email": "bad", "username": "b c", "password": WRONG_PASSWORD})
    login = call("post", "/api/v1/users/login/", {"username": "ada@example.com", "password": PASSWORD})
    token = login.json()["token"]
    bodies.remove(login.content.decode())  # the token is that answer's purpose; it must be in no other
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    sent = call(
        "post", "/api/v1/emails/sent-email/", {"recipients": ["a@example.com"], "subject": "s", "body": "b"}, **auth
    )
    call("post", "/api/v1/emails/sent-email/", {"recipients": ["not-an-address"], "subject": "s", "body": "b"}, **auth)
    call("get", "/api/v1/emails/sent-email/", **auth)
    issued = call("post", "/api/v1/users/api-keys/", {"name": "billing-app", "scope": "send"}, **auth)
    api_key = issued.json()["key"]
    bodies.remove(issued.content.decode())  # the key's one showing; it must be in no other answer
    by_key = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    send = {"recipients": ["b@example.com"], "subject": "s", "body": "b"}
    assert call("post", "/api/v1/emails/sent-email/", send, **by_key).status_code == 202
    assert call("get", "/api/v1/users/api-keys/", **by_key).status_code == 403
    call("get", "/api/v1/users/api-keys/", **auth)
    call("delete", f"/api/v1/users/api-keys/{issued.json()['id']}/", **auth)
    assert call("get", "/api/v1/emails/sent-email/", **by_key).status_code == 401

    # SendGrid's error paths: a server error (retried), then a refusal (failed for good).
    fake.set_mode(status=500, count=1)
    outbox_process(client=sendgrid, config=config)
    make_due()
    fake.set_mode(status=401, count=1)
    outbox_process(client=sendgrid, config=config)
    assert fake.requests, "delivery must have reached the fake SendGrid"
    assert fake.requests[0].headers.get("Authorization") == f"Bearer {SENDGRID_KEY}", "the key was not used"
    detail = call("get", f"/api/v1/emails/sent-email/{sent.json()['id']}/", **auth)
    assert detail.json()["recipients"][0]["status"] == "failed"

    call("post", "/api/v1/users/logout/", **auth)
    call("get", "/api/v1/emails/sent-email/", **auth)  # the revoked token

    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD, "token": token, "verification link": link_token}
    secrets["API key"] = api_key
    secrets |= {"DJANGO_SECRET_KEY": SECRET_KEY, "SENDGRID_API_KEY": SENDGRID_KEY}
    assert len(captured.records) > 10, "the capture saw too little to mean anything"
    leaks = [
        f"{name} in log record {record.name}: {record.getMessage()[:200]}"
        for record in captured.records
        for name, secret in secrets.items()
        if secret in record_text(captured, record)
    ]
    leaks += [
        f"{name} in a response body: {body[:200]}"
        for body in bodies
        for name, secret in secrets.items()
        if secret in body
    ]
    assert not leaks, "\n".join(leaks)
