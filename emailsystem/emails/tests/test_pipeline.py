"""The whole pipeline as deployed: API -> RabbitMQ -> sender process -> fake SendGrid -> results process -> database.

Real PostgreSQL, real RabbitMQ, `python -m emailsender`, `manage.py results` and
`manage.py relay` as separate processes, and the fake SendGrid over HTTP.
"""

import re
from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

from chaos.servers import PrivateRabbitMQ
from emailsender import topology
from emailsender.testing.broker import Broker
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.delivery.broker import publishers_close
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, OutboxMessage, SentEmail
from emailsystem.emails.tests.pipeline import URL, PipelineStack, all_settled, send, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def test_a_send_reaches_sendgrid_as_one_request_and_every_recipient_shows_sent(stack, user, user_client, template):
    stack.start("sender"), stack.start("results")

    email_id = send(
        user_client,
        ["carol@example.com", "dan@example.com", "erin@example.com"],
        template=template.pk,
        context={"name": "Ada", "order": "42"},
    )
    wait_until(all_settled, stack, what="every recipient settled")

    [request] = stack.fake.requests
    body = request.body
    assert [p["to"] for p in body["personalizations"]] == [
        [{"email": "carol@example.com"}],
        [{"email": "dan@example.com"}],
        [{"email": "erin@example.com"}],
    ]
    deliveries = dict(Delivery.objects.values_list("recipient__email", "pk"))
    assert [p["custom_args"]["delivery_id"] for p in body["personalizations"]] == [
        str(deliveries[address]) for address in ("carol@example.com", "dan@example.com", "erin@example.com")
    ]
    assert body["subject"] == "Hello Ada"
    assert body["from"]["email"] == user.email
    contents = {item["type"]: item["value"] for item in body["content"]}
    assert contents == {
        "text/plain": "Hi Ada, your order 42 shipped.",
        "text/html": "<p>Hi Ada, your order <b>42</b> shipped.</p>",
    }
    detail = user_client.get(f"{URL}{email_id}/").json()
    assert detail["status"] == "sent"
    assert [(r["status"], r["attempts"]) for r in detail["recipients"]] == [("sent", 1)] * 3


def test_server_errors_are_retried_until_sendgrid_accepts(stack, user_client):
    stack.fake.set_mode(status=500, count=2)
    stack.start("sender"), stack.start("results")

    send(user_client, ["a@example.com"])
    wait_until(all_settled, stack, what="the retried send settled")

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert [r.status for r in stack.fake.requests] == [500, 500, 202]


def test_a_client_error_fails_at_once_and_the_message_is_dead_lettered(stack, user_client):
    stack.fake.set_mode(status=400, count=1)
    stack.start("sender"), stack.start("results")

    email_id = send(user_client, ["a@example.com"])
    wait_until(all_settled, stack, what="the refused send settled")

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and "400" in delivery.reason
    assert SentEmail.objects.get(pk=email_id).status == EmailStatus.FAILED
    assert len(stack.fake.requests) == 1, "a 4xx is not retried"
    assert stack.broker.depth(topology.dead_queue(stack.broker.prefix)) == 1


@pytest.fixture
def private_stack(settings, fake, tmp_path):
    """The stack on a RabbitMQ node of its own (chaos/servers.py), which the test may stop: stopping
    the shared one would cut every other test's connections, and RabbitMQ 3.10 can come back from
    it unable to create at-least-once dead-lettering queues (docs/sender/messages.md)."""
    node = PrivateRabbitMQ(tmp_path, "rabbitmq")
    node.start()
    try:
        broker = Broker(node.url)
        settings.RABBITMQ_URL = node.url
        settings.QUEUE_PREFIX = broker.prefix
        broker.declare(sender_settings())
        running = PipelineStack(broker, fake, tmp_path / "logs")
        yield node, running
        running.stop_all()
        publishers_close()
    finally:
        node.stop()


@pytest.mark.skipif(
    not PrivateRabbitMQ.SCRIPTS.joinpath("rabbitmq-server").exists(),
    reason="needs rabbitmq-server for a node of its own",
)
def test_rabbitmq_stopped_during_sends_and_restarted_loses_nothing(private_stack, user_client, monkeypatch):
    node, stack = private_stack
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE / 15)  # 1 s: keep the test short
    stack.start("sender"), stack.start("results"), stack.start("relay")
    before = [send(user_client, [f"before{n}@example.com"]) for n in range(3)]
    wait_until(lambda: all_settled(before), stack, what="sends before the outage settled")

    node.stop()
    try:
        during = [send(user_client, [f"during{n}@example.com", f"also{n}@example.com"]) for n in range(5)]
        assert OutboxMessage.objects.count() == 5, "sends during the outage wait in the outbox"
    finally:
        node.start()

    after = [send(user_client, [f"after{n}@example.com"]) for n in range(3)]
    wait_until(lambda: all_settled(before + during + after), stack, timeout=60, what="every send settled")

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    counts = stack.fake.delivery_counts()
    assert sorted(counts) == sorted(Delivery.objects.values_list("pk", flat=True)), "no recipient missing"
    assert set(counts.values()) == {1}, "nothing was in flight during the outage, so nothing is sent twice"
    assert not OutboxMessage.objects.exists()


def test_results_wait_in_the_queue_while_the_results_process_is_dead(stack, user_client):
    stack.start("sender")
    consumer = stack.start("results")
    first = send(user_client, ["a@example.com"])
    wait_until(lambda: all_settled([first]), stack, what="first send settled")

    consumer.kill()
    later = [send(user_client, [f"r{n}@example.com"]) for n in range(5)]
    wait_until(lambda: len(stack.fake.requests) == 6, stack, what="the sender sent all of them")
    results = topology.results_queue(stack.broker.prefix)
    wait_until(lambda: stack.broker.depth(results) == 5, stack, what="the five results waiting in their queue")
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 5, "nobody applies results now"

    stack.start("results")
    wait_until(lambda: all_settled(later), stack, what="results applied by the new results process")
    assert set(SentEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}


def test_a_verification_link_travels_the_broker_pipeline_and_makes_the_address_the_sender(stack):
    """Broker mode: the link is mailed through RabbitMQ and the sender like any email; following it lets the
    user send From their address."""
    stack.start("sender"), stack.start("results")
    client = APIClient()
    account = {"email": "ada@example.org", "username": "ada", "password": "plum-orchard-lantern-7"}
    assert client.post("/api/v1/users/register/", account, format="json").status_code == 201
    token = client.post("/api/v1/users/login/", {"username": "ada@example.org", "password": account["password"]})
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    wait_until(lambda: len(stack.fake.requests) == 1, stack, what="the verification email reached SendGrid")
    [mailed] = stack.fake.requests
    assert mailed.body["personalizations"][0]["to"] == [{"email": "ada@example.org"}]
    text = next(part["value"] for part in mailed.body["content"] if part["type"] == "text/plain")
    link = urlsplit(re.search(r"https?://\S+", text)[0])
    assert client.get(f"{link.path}?{link.query}").status_code == 200

    send(client, ["bob@example.com"])
    wait_until(lambda: len(stack.fake.requests) == 2, stack, what="the user's send reached SendGrid")
    assert stack.fake.requests[1].body["from"] == {"email": "ada@example.org"}
