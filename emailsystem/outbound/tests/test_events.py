"""Which webhook messages each hook point records, in the transaction of the change."""

import datetime
import json

import pytest
from django.test import Client

from emailsender.result_messages import ResultMessage
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.unsubscribe.links import UnsubscribeLink
from emailsystem.emails.unsubscribe.services import recipient_unsubscribe
from emailsystem.outbound.models import WebhookEndpoint, WebhookMessage
from emailsystem.outbound.services import endpoint_create
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
AT = datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC)
ALL = [
    "email.queued",
    "email.sent",
    "email.failed",
    "email.deferred",
    "email.suppressed",
    "email.unsubscribed",
]


def result(email, outcome, deliveries, attempt=1, reason=""):
    ids = tuple(d.pk for d in deliveries)
    return ResultMessage(
        email_id=email.pk, deliveries=ids, outcome=outcome, attempt=attempt, reason=reason, status_code=None, at=AT
    )


def recorded(after=0):
    """(type, recipient, status, reason) of the messages recorded after message id `after`."""
    rows = WebhookMessage.objects.filter(pk__gt=after).order_by("pk")
    return [
        (body["type"], body["data"]["recipient"], body["data"]["status"], body["data"]["reason"])
        for body in (json.loads(row.body) for row in rows)
    ]


def last_id():
    return WebhookMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.fixture
def user():
    user = UserFactory()
    endpoint_create(user=user, url="https://93.184.215.14/hook", events=ALL)
    return user


def test_results_record_sent_failed_and_deferred_once_each(user):
    email = sent_email(user=user, recipients=["a@example.com", "b@example.com", "c@example.com"])
    a, b, c = email.deliveries.order_by("pk")
    before = last_id()

    delivery_results_apply(
        results=[
            result(email, "sent", [a]),
            result(email, "failed", [b], reason="550 no such user"),
            result(email, "retrying", [c], attempt=1, reason="HTTP 503"),
        ]
    )
    again = last_id()
    delivery_results_apply(results=[result(email, "sent", [a]), result(email, "retrying", [c], attempt=1)])

    assert sorted(recorded(before)) == [
        ("email.deferred", "c@example.com", "deferred", "HTTP 503"),
        ("email.failed", "b@example.com", "failed", "550 no such user"),
        ("email.sent", "a@example.com", "sent", ""),
    ]
    assert recorded(again) == []  # the same results again change nothing, so report nothing


def test_a_send_records_queued_and_suppressed(user):
    first = sent_email(user=user, recipients=["a@example.com"])
    recipient_unsubscribe(link=UnsubscribeLink(user.pk, first.deliveries.get().recipient_id, first.deliveries.get().pk))
    before = last_id()

    sent_email(user=user, recipients=["a@example.com", "b@example.com"])

    assert recorded(before) == [
        ("email.suppressed", "a@example.com", "suppressed", ""),
        ("email.queued", "b@example.com", "queued", ""),
    ]


def test_a_one_click_unsubscribe_records_email_unsubscribed_once(user):
    email = sent_email(user=user, recipients=["a@example.com"])
    delivery = email.deliveries.get()
    link = UnsubscribeLink(user.pk, delivery.recipient_id, delivery.pk)
    before = last_id()

    recipient_unsubscribe(link=link)
    recipient_unsubscribe(link=link)

    [(kind, recipient, status, _reason)] = recorded(before)
    assert (kind, recipient, status) == ("email.unsubscribed", "a@example.com", "unsubscribed")


def test_no_endpoint_no_message():
    email = sent_email(recipients=["a@example.com"])
    delivery_results_apply(results=[result(email, "sent", email.deliveries.all())])

    assert not WebhookMessage.objects.exists()


def test_the_admin_lists_endpoints_and_attempts_without_the_secret(admin, user):
    endpoint = WebhookEndpoint.objects.get(user=user)
    client = Client()
    client.force_login(admin)

    pages = [
        client.get("/admin/outbound/webhookendpoint/"),
        client.get(f"/admin/outbound/webhookendpoint/{endpoint.pk}/change/"),
        client.get("/admin/outbound/webhookmessage/"),
        client.get("/admin/outbound/webhookattempt/"),
    ]

    assert [page.status_code for page in pages] == [200] * 4
    assert endpoint.url in pages[0].content.decode()
    for page in pages:
        assert endpoint.secret_encrypted not in page.content.decode()
        assert "whsec_" not in page.content.decode()
    assert client.get("/admin/outbound/webhookendpoint/add/").status_code == 403


def test_the_admin_refuses_a_private_url_and_keeps_the_old_one(admin, user, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False
    endpoint = WebhookEndpoint.objects.get(user=user)
    client = Client()
    client.force_login(admin)
    change = f"/admin/outbound/webhookendpoint/{endpoint.pk}/change/"
    form = {
        "user": user.pk,
        "url": "https://169.254.169.254/latest/meta-data/",
        "description": endpoint.description,
        "events": json.dumps(endpoint.events),
        "enabled": "on",
        "disabled_reason": "",
        "webhookattempt_set-TOTAL_FORMS": "0",
        "webhookattempt_set-INITIAL_FORMS": "0",
    }

    page = client.post(change, form)

    assert page.status_code == 200, "the form comes back with the error instead of saving"
    assert "169.254.169.254" in page.content.decode()
    assert page.context["adminform"].form.errors["url"]
    endpoint.refresh_from_db()
    assert endpoint.url != form["url"]
