"""The whole loop: API -> RabbitMQ -> sender process -> fake SendGrid -> signed events -> live webhook.

Real PostgreSQL and RabbitMQ, `python -m emailsender` and `manage.py results` as processes, the
fake SendGrid over HTTP (driven through its control endpoints, as another process would), and
the webhook served by a live server on 127.0.0.1. The `stack` fixture is in conftest.py.
"""

import pytest

from emailsender.testing.fake_client import call
from emailsystem.emails.models import DeliveryEvent, DeliveryStatus, EmailStatus, SentEmail, Suppression
from emailsystem.emails.tests.pipeline import URL, all_settled, send, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def control(fake, path, payload=None):
    """GET (no payload) or POST a control endpoint of the fake SendGrid over HTTP; its JSON answer."""
    status, _, answer = call(f"{fake.url}{path}", payload, {"Content-Type": "application/json"}, timeout=30)
    assert status == 200, answer
    return answer


def statuses(email_id):
    return dict(SentEmail.objects.get(pk=email_id).deliveries.values_list("recipient__email", "status"))


def test_signed_events_from_the_fake_move_statuses_suppress_and_unsigned_ones_are_refused(
    stack, live_server, settings, user_client
):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = control(stack.fake, "/_fake/events/public-key")["public_key"]
    webhook = f"{live_server.url}/api/v1/webhooks/sendgrid/"
    stack.start("sender"), stack.start("results")

    email_id = send(user_client, ["opened@example.com", "bounced@example.com", "late@example.com"])
    wait_until(lambda: all_settled([email_id]), stack, what="the send settled as sent")
    assert set(statuses(email_id).values()) == {DeliveryStatus.SENT}

    unsigned = control(stack.fake, "/_fake/events", {"url": webhook, "default": ["delivered"], "signed": False})
    tampered = control(stack.fake, "/_fake/events", {"url": webhook, "default": ["spamreport"], "tamper": True})
    assert (unsigned["status"], tampered["status"]) == (403, 403)
    assert not DeliveryEvent.objects.exists()
    assert set(statuses(email_id).values()) == {DeliveryStatus.SENT}

    kinds = {
        "opened@example.com": ["processed", "delivered", "open", "click"],
        "bounced@example.com": ["processed", "bounce"],
        "late@example.com": ["processed", "open"],
    }
    signed = control(stack.fake, "/_fake/events", {"url": webhook, "events": kinds})
    assert signed["status"] == 200
    assert signed["answer"] == {"received": 8, "applied": 8, "duplicates": 0, "unknown": 0, "ignored": 0}
    late = control(stack.fake, "/_fake/events", {"url": webhook, "events": {"late@example.com": ["delivered"]}})
    assert late["answer"]["applied"] == 1

    assert statuses(email_id) == {
        "opened@example.com": DeliveryStatus.CLICKED,
        "bounced@example.com": DeliveryStatus.BOUNCED,
        "late@example.com": DeliveryStatus.OPENED,  # the late `delivered` is recorded, not a step back
    }
    assert SentEmail.objects.get(pk=email_id).status == EmailStatus.PARTIAL
    detail = user_client.get(f"{URL}{email_id}/").json()
    late_row = next(r for r in detail["recipients"] if r["email"] == "late@example.com")
    assert late_row["delivered_at"] is not None
    # Listed by when SendGrid says each happened; the fake stamps them within a few seconds.
    assert sorted(e["event"] for e in late_row["events"]) == ["delivered", "open", "processed"]
    bounced_row = next(r for r in detail["recipients"] if r["email"] == "bounced@example.com")
    assert "does not exist" in bounced_row["reason"]
    assert [(s.recipient.email, s.reason) for s in Suppression.objects.select_related("recipient")] == [
        ("bounced@example.com", "bounce")
    ]

    # The bounced address is skipped from now on: answered `suppressed`, never sent to SendGrid.
    requests_before = len(stack.fake.requests)
    answer = user_client.post(
        URL, {"recipients": ["bounced@example.com", "new@example.com"], "subject": "s", "body": "b"}, format="json"
    ).json()
    assert [r["status"] for r in answer["recipients"]] == ["suppressed", "queued"]
    wait_until(lambda: all_settled([answer["id"]]), stack, what="the second send settled")
    [request] = stack.fake.requests[requests_before:]
    assert [p["to"] for p in request.body["personalizations"]] == [[{"email": "new@example.com"}]]
    assert user_client.get(URL, {"status": "bounced"}).json()["count"] == 1
