"""The whole pipeline as deployed: API -> RabbitMQ -> sender process -> fake SendGrid -> events process -> database.

Real PostgreSQL, real RabbitMQ, `python -m emailsender`, `manage.py events` and
`manage.py relay` as separate processes, and the fake SendGrid over HTTP.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from rest_framework.test import APIClient

from emailsender import topology
from emailsender.tests.support import sender_env
from emailsystem.emails.delivery import outbox as outbox_module
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailStatus, OutboxMessage, SentEmail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
URL = "/api/v1/emails/sent-email/"


class Process:
    """A child process with its output in a file, stopped (or killed) at the end of the test."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}-{time.monotonic_ns()}.log"
        self.popen = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Stack:
    def __init__(self, broker, fake, tmp_path: Path) -> None:
        self.broker = broker
        self.fake = fake
        self.logs = tmp_path
        self.sender_settings = broker.settings(fake, retry_base_seconds=0.2, retry_max_seconds=1.0)
        db = connection.settings_dict
        self.django_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "emailsystem.test_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "RABBITMQ_URL": broker.url,
            "QUEUE_PREFIX": broker.prefix,
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[Process] = []

    def start(self, name: str) -> Process:
        if name == "sender":
            process = Process(name, [sys.executable, "-m", "emailsender"], sender_env(self.sender_settings), self.logs)
        else:
            process = Process(name, [sys.executable, "manage.py", name], self.django_env, self.logs)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-1500:]}" for p in self.processes)


@pytest.fixture
def stack(broker, fake, tmp_path):
    running = Stack(broker, fake, tmp_path)
    yield running
    running.stop()


def wait_until(predicate, stack: Stack, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout}s\n{stack.diagnostics()}")
        time.sleep(0.1)


def all_settled(email_ids=None) -> bool:
    deliveries = Delivery.objects.all() if email_ids is None else Delivery.objects.filter(sent_email_id__in=email_ids)
    return deliveries.exists() and not deliveries.filter(status=DeliveryStatus.QUEUED).exists()


def send(client, recipients, **content):
    response = client.post(URL, {"recipients": recipients, **(content or {"subject": "s", "body": "b"})}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def test_a_send_reaches_sendgrid_as_one_request_and_every_recipient_shows_sent(stack, user, user_client, template):
    stack.start("sender"), stack.start("events")

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
    stack.start("sender"), stack.start("events")

    send(user_client, ["a@example.com"])
    wait_until(all_settled, stack, what="the retried send settled")

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert [r.status for r in stack.fake.requests] == [500, 500, 202]


def test_a_client_error_fails_at_once_and_the_message_is_dead_lettered(stack, user_client):
    stack.fake.set_mode(status=400, count=1)
    stack.start("sender"), stack.start("events")

    email_id = send(user_client, ["a@example.com"])
    wait_until(all_settled, stack, what="the refused send settled")

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and "400" in delivery.reason
    assert SentEmail.objects.get(pk=email_id).status == EmailStatus.FAILED
    assert len(stack.fake.requests) == 1, "a 4xx is not retried"
    assert stack.broker.depth(topology.dead_queue(stack.broker.prefix)) == 1


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl to stop and start the local broker")
def test_rabbitmq_stopped_during_sends_and_restarted_loses_nothing(stack, user_client, monkeypatch):
    monkeypatch.setattr(outbox_module, "RELAY_GRACE", outbox_module.RELAY_GRACE / 15)  # 1 s: keep the test short
    stack.start("sender"), stack.start("events"), stack.start("relay")
    before = [send(user_client, [f"before{n}@example.com"]) for n in range(3)]
    wait_until(lambda: all_settled(before), stack, what="sends before the outage settled")

    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=60)
    try:
        during = [send(user_client, [f"during{n}@example.com", f"also{n}@example.com"]) for n in range(5)]
        assert OutboxMessage.objects.count() == 5, "sends during the outage wait in the outbox"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=60)

    after = [send(user_client, [f"after{n}@example.com"]) for n in range(3)]
    wait_until(lambda: all_settled(before + during + after), stack, timeout=60, what="every send settled")

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    counts = stack.fake.delivery_counts()
    assert sorted(counts) == sorted(Delivery.objects.values_list("pk", flat=True)), "no recipient missing"
    assert set(counts.values()) == {1}, "nothing was in flight during the outage, so nothing is sent twice"
    assert not OutboxMessage.objects.exists()


def test_results_wait_in_the_queue_while_the_events_process_is_dead(stack, user_client):
    stack.start("sender")
    events = stack.start("events")
    first = send(user_client, ["a@example.com"])
    wait_until(lambda: all_settled([first]), stack, what="first send settled")

    events.kill()
    later = [send(user_client, [f"r{n}@example.com"]) for n in range(5)]
    wait_until(lambda: len(stack.fake.requests) == 6, stack, what="the sender sent all of them")
    time.sleep(0.5)
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 5, "nobody applies results now"

    stack.start("events")
    wait_until(lambda: all_settled(later), stack, what="results applied by the new events process")
    assert set(SentEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}


def test_a_verification_link_travels_the_broker_pipeline_and_makes_the_address_the_sender(stack):
    """Broker mode: the link is mailed through RabbitMQ and the sender like any email; following it lets the
    user send From their address."""
    stack.start("sender"), stack.start("events")
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
