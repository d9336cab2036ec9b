"""Outbound webhooks through the real stack: the API, PostgreSQL, RabbitMQ, the Procfile's
sender, results and webhooks processes, the fake SendGrid, and receivers on 127.0.0.1."""

import pytest
from standardwebhooks.webhooks import Webhook

from emailsender.testing.fake_client import call
from emailsystem.emails.tests.pipeline import send, wait_until
from emailsystem.outbound.models import WebhookAttempt, WebhookMessage
from emailsystem.outbound.tests.receiver import Receiver
from emailsystem.outbound.worker import PER_ENDPOINT_RUNNING

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]

ENDPOINTS = "/api/v1/webhooks/endpoints/"


def endpoint(client, url, events):
    response = client.post(ENDPOINTS, {"url": url, "events": events}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def control(fake, path, payload=None):
    status, _, answer = call(f"{fake.url}{path}", payload, {"Content-Type": "application/json"}, timeout=30)
    assert status == 200, answer
    return answer


def test_a_receiver_gets_sent_then_delivered_signed_so_a_standard_verifier_accepts_them(
    webhook_stack, live_server, settings, user_client
):
    stack = webhook_stack
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = control(stack.fake, "/_fake/events/public-key")["public_key"]
    with Receiver() as receiver:
        created = endpoint(user_client, receiver.url, ["email.sent", "email.delivered"])
        stack.start("sender"), stack.start("results"), stack.start("webhooks")

        email_id = send(user_client, ["ann@example.com"], subject="s", body="b", tags=["invoice"])
        [sent] = receiver.wait_for(1)
        answer = control(
            stack.fake,
            "/_fake/events",
            {"url": f"{live_server.url}/api/v1/webhooks/sendgrid/", "events": {"ann@example.com": ["delivered"]}},
        )
        assert answer["status"] == 200
        _sent, delivered = receiver.wait_for(2)

    verifier = Webhook(created["secret"])
    # The delivered event's reason is the receiving server's answer, as SendGrid reports it.
    for request, kind, reason in ((sent, "email.sent", ""), (delivered, "email.delivered", "250 2.0.0 OK")):
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == kind
        assert payload["data"] == {
            "email_id": email_id,
            "recipient": "ann@example.com",
            "status": kind.removeprefix("email."),
            "reason": reason,
            "tags": ["invoice"],
            "metadata": {},
        }
    assert sent.headers["webhook-id"] != delivered.headers["webhook-id"]


def test_a_failing_receiver_gets_the_same_webhook_id_until_it_answers_2xx(webhook_stack, user_client):
    with Receiver([500, 500, 200]) as receiver:
        created = endpoint(user_client, receiver.url, ["email.sent"])
        webhook_stack.start("webhooks")
        queued = user_client.post(f"{ENDPOINTS}{created['id']}/test/")
        assert queued.status_code == 202

        requests = receiver.wait_for(3)
        wait_until(lambda: WebhookAttempt.objects.count() == 3, webhook_stack, what="three attempts recorded")

    assert {request.headers["webhook-id"] for request in requests} == {queued.json()["webhook_id"]}
    for request in requests:
        assert Webhook(created["secret"]).verify(request.body, request.headers)["type"] == "endpoint.test"
    listed = user_client.get(f"{ENDPOINTS}{created['id']}/deliveries/").json()["results"]
    assert [(item["attempt"], item["status_code"]) for item in listed] == [(3, 200), (2, 500), (1, 500)]
    assert listed[0]["next_retry_at"] is None and listed[1]["next_retry_at"] is not None
    assert "HTTP 500" in listed[1]["error"]
    assert WebhookMessage.objects.get().state == "delivered"


def test_a_hanging_receiver_delays_no_other_endpoint(webhook_stack, user_client):
    recipients = [f"r{n}@example.com" for n in range(PER_ENDPOINT_RUNNING + 20)]
    with Receiver(hang=True) as hanging, Receiver() as healthy:
        endpoint(user_client, hanging.url, ["email.queued"])
        endpoint(user_client, healthy.url, ["email.queued"])
        webhook_stack.start("webhooks")

        send(user_client, recipients)
        healthy.wait_for(len(recipients))
        hung_attempts_finished = WebhookAttempt.objects.filter(endpoint__url=hanging.url).count()
        hung_requests = len(hanging.received)
        hanging.wait_for(PER_ENDPOINT_RUNNING)  # it does get its fill

    # Every healthy delivery arrived while the hanging receiver still held its first requests
    # (none of its attempts had finished, not even by timing out), and it held no more than its cap.
    assert sorted(event[1] for event in healthy.events()) == sorted(recipients)
    assert hung_attempts_finished == 0
    assert hung_requests <= PER_ENDPOINT_RUNNING  # at most its fill running; the other 20 wait or are parked


def test_sigkill_of_the_webhooks_process_loses_no_event(webhook_stack, user_client):
    with Receiver() as receiver:
        endpoint(user_client, receiver.url, ["email.queued"])
        process = webhook_stack.start("webhooks")
        for batch in range(10):
            send(user_client, [f"k{batch}-{n}@example.com" for n in range(20)])
        receiver.wait_for(20)
        process.kill()
        webhook_stack.start("webhooks")

        expected = set(WebhookMessage.objects.values_list("webhook_id", flat=True))
        assert len(expected) == 200
        wait_until(
            lambda: {event[2] for event in receiver.events()} >= expected,
            webhook_stack,
            timeout=60,
            what="every event delivered after the restart",
        )
    recipients = {event[1] for event in receiver.events()}
    assert len(recipients) == 200
    assert not WebhookMessage.objects.exclude(state="delivered").exists()
