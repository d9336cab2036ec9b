"""What every scenario shares: the bench's users and template, the send it makes, and settling
(waiting until the queues are empty and this run's recipients are no longer queued)."""

import time
from typing import Any
from urllib.parse import urlsplit

import pika
from django.conf import settings
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from bench.seed import seed_log
from emailsender import topology
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailTemplate
from emailsystem.users.api_keys import api_key_create
from emailsystem.users.models import ApiKeyScope, User
from emailsystem.users.services import user_email_verified_set
from scripts import devstack

# How long the queues may take to empty between scenarios before the run is declared stuck.
SETTLE_SECONDS = 180


def prepare(*, seed: bool = True) -> dict[str, Any]:
    """Migrate, create the bench users and template, seed the million-email log (once; only
    when `seed`, since only api_list reads it)."""
    call_command("migrate", "--noinput", verbosity=0)
    sender, _ = User.objects.get_or_create(
        email="bench@example.com", defaults={"username": "bench", "daily_quota": 2_000_000_000}
    )
    seeded, _ = User.objects.get_or_create(
        email="seeded@example.com", defaults={"username": "seeded", "daily_quota": 2_000_000_000}
    )
    # Granted as an admin's "Email address verified" box does: only a verified address sends From itself.
    user_email_verified_set(user=sender, verified=True)
    template, _ = EmailTemplate.objects.get_or_create(
        name="bench-welcome",
        defaults={
            "subject": "Hello {{ name }}",
            "body": "Hi {{ name }}, welcome.",
            "html_body": "<p>Hi {{ name }}</p>",
        },
    )
    if seed:
        print("seeding the million-email log (first run only)...", flush=True)
        started = time.monotonic()
        if seed_log(user_id=seeded.pk):
            print(f"  seeded in {time.monotonic() - started:.0f}s", flush=True)
        else:
            print("  already seeded", flush=True)
    last = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return {
        # Deliveries up to here belong to earlier runs; settle() only waits for this run's.
        "first_delivery_id": last + 1,
        "token": Token.objects.get_or_create(user=sender)[0].key,
        "seeded_token": Token.objects.get_or_create(user=seeded)[0].key,
        # A new key per run: only its digest is stored, so an earlier run's cannot be read back.
        "api_key": api_key_create(user=sender, name="bench", scope=ApiKeyScope.SEND).key,
        "user": sender,
        "template_id": template.pk,
    }


def queue_depths() -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url()))
    try:
        channel = connection.channel()
        return {
            queue: channel.queue_declare(queue=queue, passive=True).method.message_count
            for queue in (
                topology.work_queue(topology_prefix()),
                topology.bulk_queue(topology_prefix()),
                topology.results_queue(topology_prefix()),
            )
        }
    finally:
        connection.close()


def topology_prefix() -> str:
    return settings.QUEUE_PREFIX


def rabbitmq_url() -> str:
    return settings.RABBITMQ_URL


def settle(context: dict[str, Any]) -> None:
    """Wait until the sender and results have nothing left, so one scenario does not bleed into the next."""
    deadline = time.monotonic() + SETTLE_SECONDS
    this_run = Delivery.objects.filter(pk__gte=context["first_delivery_id"], status=DeliveryStatus.QUEUED)
    while any(queue_depths().values()) or this_run.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not settle within {SETTLE_SECONDS}s: {queue_depths()}")
        time.sleep(0.5)


def send_payload(context: dict[str, Any]) -> dict[str, Any]:
    return {"recipients": TEN, "template": context["template_id"], "context": {"name": "Ada"}}


TEN = [f"r{n}@example.com" for n in range(10)]


def fake_restart(context: dict[str, Any], *options: str, sink: bool = False) -> None:
    """The fake SendGrid again on its port, with `options` (--no-bodies: a 200,000-recipient
    backlog's request bodies would cost the fake hundreds of megabytes), or, with `sink`, the lean
    stand-in emailsender/testing/sendgrid_sink.py in its place."""
    stack = context["stack"]
    port = urlsplit(context["fake"]).port
    assert port is not None, context["fake"]
    stack.stop("fake")
    if sink:
        stack.start("fake", f"python -m emailsender.testing.sendgrid_sink --port {port}")
    else:
        stack.start_fake(port, *options)
    devstack.wait_for_http(f"{context['fake']}/_fake/health")
