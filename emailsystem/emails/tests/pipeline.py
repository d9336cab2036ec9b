"""The pipeline tests' stack: the Procfile's processes (scripts/devstack.py) on the test's own
database and broker prefix, the fake SendGrid in the test process, and what the tests share."""

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from emailsender.testing.broker import Broker, sender_env
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsender.testing.polling import wait_for
from emailsystem.emails.models import Delivery, DeliveryStatus
from scripts import devstack

URL = "/api/v1/emails/sent-email/"


class PipelineStack(devstack.Stack):
    """Django processes run with the test settings on the test database; the sender with the
    settings of `broker.settings()` (short retry waits), talking to `fake`."""

    def __init__(self, broker: Broker, fake: FakeSendGrid, logs: Path) -> None:
        db = connection.settings_dict
        django_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "emailsystem.test_settings",
            # The test process's key, whatever the environment says: secrets it stores encrypted
            # (outbound webhook endpoints) must be readable by the processes.
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "RABBITMQ_URL": broker.url,
            "QUEUE_PREFIX": broker.prefix,
        }
        super().__init__(devstack.with_this_python(django_env), logs)
        self.broker = broker
        self.fake = fake
        self.sender_settings = broker.settings(fake, retry_base_seconds=0.2, retry_max_seconds=1.0)

    def sender_env(self, **extra: str) -> dict[str, str]:
        """The sender's environment for `sender_settings`, plus `extra`."""
        return devstack.with_this_python({**sender_env(self.sender_settings), **extra})

    def start(
        self, role: str, command: str | Sequence[str] | None = None, env: Mapping[str, str] | None = None
    ) -> devstack.Process:
        if role == "sender" and env is None:
            env = self.sender_env()
        return super().start(role, command, env)


def wait_until(predicate: Callable[[], Any], stack: devstack.Stack, timeout: float = 30.0, what: str = "condition"):
    """Poll `predicate` every 0.1 s; past `timeout`, fail with the processes' last output."""
    return wait_for(predicate, timeout=timeout, interval=0.1, what=what, diagnostics=stack.diagnostics)


def all_settled(email_ids=None) -> bool:
    deliveries = Delivery.objects.all() if email_ids is None else Delivery.objects.filter(sent_email_id__in=email_ids)
    return deliveries.exists() and not deliveries.filter(status=DeliveryStatus.QUEUED).exists()


def send(client, recipients, **content):
    response = client.post(URL, {"recipients": recipients, **(content or {"subject": "s", "body": "b"})}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]
