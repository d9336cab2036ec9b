"""A click event's link is stored without its query, fragment or credentials: links in emails
carry tokens there, and the stored detail is shown to the sender and to admins."""

import importlib
import json
import logging

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from emailsender.testing.fake_events import EventEmitter
from emailsystem.conftest import token_client
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.models import DeliveryEvent, DeliveryStatus
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_results import result

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/sendgrid/"
SECRET = "s3cret-reset-token"


@pytest.fixture
def signer(settings):
    emitter = EventEmitter(fake=None)  # signing needs no fake server
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = emitter.public_key()
    return emitter


@pytest.fixture
def delivery():
    email = sent_email(recipients=["a@example.com"])
    delivery_results_apply(results=[result(email, "sent")])
    return email.deliveries.get()


def click(client, signer, delivery, url, event_id="evt-click"):
    event = {
        "email": "a@example.com",
        "timestamp": 1_795_000_000,
        "event": "click",
        "url": url,
        "sg_event_id": event_id,
        "delivery_id": str(delivery.pk),
        "email_id": str(delivery.sent_email_id),
    }
    body = json.dumps([event]).encode()
    return client.post(URL, body, content_type="application/json", headers=signer.sign(body))


@pytest.mark.parametrize(
    ("clicked", "stored"),
    [
        (f"https://shop.example/account/reset?token={SECRET}&uid=7#{SECRET}", "https://shop.example/account/reset"),
        (f"https://user:{SECRET}@shop.example:8443/a/b", "https://shop.example:8443/a/b"),
        (f"https://shop.example/welcome#{SECRET}", "https://shop.example/welcome"),
        ("https://shop.example/plain", "https://shop.example/plain"),
    ],
)
def test_a_click_stores_its_link_without_query_fragment_or_credentials(client, signer, delivery, clicked, stored):
    response = click(client, signer, delivery, clicked)

    assert response.status_code == 200 and response.json()["applied"] == 1
    assert DeliveryEvent.objects.get().detail == stored
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CLICKED


def test_the_token_reaches_neither_the_log_lines_nor_the_senders_answer(client, signer, delivery, caplog):
    caplog.set_level(logging.DEBUG)

    click(client, signer, delivery, f"https://shop.example/reset?token={SECRET}")
    answer = token_client(delivery.sent_email.sender).get(f"/api/v1/emails/sent-email/{delivery.sent_email_id}/")

    assert answer.status_code == 200
    assert "https://shop.example/reset" in answer.content.decode()
    assert SECRET not in answer.content.decode()
    assert SECRET not in caplog.text
    assert caplog.records, "the webhook logs its summary: the capture works"


def test_a_link_urllib_cannot_split_is_stored_as_nothing_and_the_event_applied(client, signer, delivery):
    response = click(client, signer, delivery, f"http://[::1/reset?token={SECRET}")

    assert response.json()["applied"] == 1
    assert DeliveryEvent.objects.get().detail == ""


def test_the_migration_strips_the_click_links_stored_before(delivery):
    migration = importlib.import_module("emailsystem.emails.migrations.0012_click_links_without_secrets")
    stored = {
        "c1": ("click", f"https://shop.example/reset?token={SECRET}"),
        "c2": ("click", f"https://user:{SECRET}@shop.example/a#{SECRET}"),
        "c3": ("click", "https://shop.example/plain"),
        "b1": ("bounce", "550 what? user@example.com #5.1.1"),
    }
    for event_id, (kind, detail) in stored.items():
        DeliveryEvent.objects.create(
            sg_event_id=event_id, delivery=delivery, event=kind, occurred_at=timezone.now(), detail=detail
        )

    migration.strip_click_links(django_apps, None)

    assert dict(DeliveryEvent.objects.values_list("sg_event_id", "detail")) == {
        "c1": "https://shop.example/reset",
        "c2": "https://shop.example/a",
        "c3": "https://shop.example/plain",
        "b1": "550 what? user@example.com #5.1.1",
    }
