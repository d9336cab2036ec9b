"""The benchmark scenarios. Each records one sample per run into `bench.samples` under the issue's keys."""

import statistics
import threading
import time
import urllib.error
from typing import Any

import pika
from django.db import transaction
from rest_framework.authtoken.models import Token

from bench import loads
from bench.seed import seed_log
from emailsender import topology
from emailsystem.emails.delivery.broker import publisher
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_build
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailTemplate, Recipient, SentEmail
from emailsystem.users.models import User

# How long the queues may take to empty between scenarios before the run is declared stuck.
SETTLE_SECONDS = 180


def prepare() -> dict[str, Any]:
    """Migrate, create the bench users and template, seed the million-email log (once)."""
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    sender, _ = User.objects.get_or_create(
        email="bench@example.com", defaults={"username": "bench", "daily_quota": 2_000_000_000}
    )
    seeded, _ = User.objects.get_or_create(
        email="seeded@example.com", defaults={"username": "seeded", "daily_quota": 2_000_000_000}
    )
    template, _ = EmailTemplate.objects.get_or_create(
        name="bench-welcome",
        defaults={
            "subject": "Hello {{ name }}",
            "body": "Hi {{ name }}, welcome.",
            "html_body": "<p>Hi {{ name }}</p>",
        },
    )
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
        "user": sender,
        "template_id": template.pk,
    }


def wait_for_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            loads.get_json(url, timeout=2)
            return
        except (OSError, urllib.error.URLError, ValueError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.3)


def queue_depths() -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(_rabbitmq_url()))
    try:
        channel = connection.channel()
        return {
            queue: channel.queue_declare(queue=queue, passive=True).method.message_count
            for queue in (topology.work_queue(topology_prefix()), topology.results_queue(topology_prefix()))
        }
    finally:
        connection.close()


def topology_prefix() -> str:
    from django.conf import settings

    return settings.QUEUE_PREFIX


def _rabbitmq_url() -> str:
    from django.conf import settings

    return settings.RABBITMQ_URL


def settle(context: dict[str, Any]) -> None:
    """Wait until the sender and events have nothing left, so one scenario does not bleed into the next."""
    deadline = time.monotonic() + SETTLE_SECONDS
    this_run = Delivery.objects.filter(pk__gte=context["first_delivery_id"], status=DeliveryStatus.QUEUED)
    while any(queue_depths().values()) or this_run.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not settle within {SETTLE_SECONDS}s: {queue_depths()}")
        time.sleep(0.5)


def send_payload(context: dict[str, Any]) -> dict[str, Any]:
    return {"recipients": TEN, "template": context["template_id"], "context": {"name": "Ada"}}


TEN = [f"r{n}@example.com" for n in range(10)]


# --- raw ceilings ---------------------------------------------------------------------------


def raw(bench, context: dict[str, Any]) -> None:
    """The fake SendGrid and the broker alone: the ceilings the pipeline can approach."""
    body = (
        '{"personalizations": [' + ",".join(f'{{"to": [{{"email": "{a}"}}]}}' for a in TEN) + "],"
        ' "from": {"email": "bench@example.com"}, "subject": "s", "content": [{"type": "text/plain", "value": "b"}]}'
    )

    def once() -> None:
        result = loads.wrk(
            f"{context['fake']}/v3/mail/send",
            seconds=bench.seconds(5),
            method="POST",
            body=body,
            headers={"Authorization": "Bearer SG.bench", "Content-Type": "application/json"},
        )
        loads.post_json(f"{context['fake']}/_fake/reset", {}, token="")
        bench.record("raw_fake_http_rps", result.rps)
        bench.record("raw_amqp_msgs_per_s", amqp_round_trip(20_000 if not bench.quick else 5_000))

    bench.repeat("raw", once)


def amqp_round_trip(count: int) -> float:
    """Persistent messages published with confirms and consumed with acks, on a scratch queue: msgs/s."""
    url = _rabbitmq_url()
    queue = f"{topology_prefix()}.raw-probe"
    body = b"x" * 1024
    consumer = pika.BlockingConnection(pika.URLParameters(url))
    channel = consumer.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_purge(queue=queue)

    def produce() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        producer = connection.channel()
        producer.confirm_delivery()
        for _ in range(count):
            producer.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
        connection.close()

    started = time.perf_counter()
    thread = threading.Thread(target=produce)
    thread.start()
    received = 0
    channel.basic_qos(prefetch_count=500)
    for method, _, _ in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        received += 1
        if received % 250 == 0 or received == count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if received == count:
            break
    elapsed = time.perf_counter() - started
    channel.cancel()
    thread.join()
    channel.queue_delete(queue=queue)
    consumer.close()
    if received != count:
        raise RuntimeError(f"raw AMQP probe received {received} of {count}")
    return count / elapsed


# --- API ----------------------------------------------------------------------------------


def api_hello(bench, context: dict[str, Any]) -> None:
    """The framework's ceiling: a trivial DRF view (the API root) on the same gunicorn."""

    def once() -> None:
        result = loads.wrk(
            f"{context['web']}/api/v1/", seconds=bench.seconds(10), headers={"Accept": "application/json"}
        )
        bench.record("api_hello_rps", result.rps)

    bench.repeat("api_hello", once)


def api_send(bench, context: dict[str, Any]) -> None:
    """POST sent-email, a template and 10 recipients, 8 concurrent clients, 20 s.

    `api_send_*` measures the API alone: the senders are paused and drain the backlog after
    each run, so the figure is the web's capacity, not how two cores are shared between the
    web and the pipeline. `api_send_rps_with_pipeline` is the same load with a sender running.
    """
    import json

    def load() -> loads.WrkResult:
        result = loads.wrk(
            f"{context['web']}/api/v1/emails/sent-email/",
            seconds=bench.seconds(20),
            method="POST",
            body=json.dumps(send_payload(context)),
            headers={"Authorization": f"Token {context['token']}", "Content-Type": "application/json"},
        )
        if result.errors:
            bench.notes.append(f"api_send: {result.errors} of {result.requests} requests failed")
        return result

    def once() -> None:
        context["stack"].stop("sender")
        alone = load()
        context["stack"].start("sender")
        settle(context)
        bench.record("api_send_rps", alone.rps)
        bench.record("api_send_p50_ms", alone.p50_ms)
        bench.record("api_send_p99_ms", alone.p99_ms)
        shared = load()
        settle(context)
        bench.record("api_send_rps_with_pipeline", shared.rps)

    bench.repeat("api_send", once)


def api_send_1000(bench, context: dict[str, Any]) -> None:
    """One POST with 1,000 recipients (as many as one SendGrid request takes)."""
    recipients = [f"k{n}@example.com" for n in range(1000)]

    def once() -> None:
        status, _, elapsed = loads.post_json(
            f"{context['web']}/api/v1/emails/sent-email/",
            {"recipients": recipients, "subject": "Big send", "body": "Hello"},
            context["token"],
        )
        assert status == 202
        bench.record("api_send_1000_ms", elapsed)
        settle(context)

    bench.repeat("api_send_1000", once)


def api_list(bench, context: dict[str, Any]) -> None:
    """The log of a user with a million emails, filtered by one recipient and a 30-day window."""
    address = Recipient.objects.filter(email__startswith="seed").order_by("pk").values_list("email", flat=True)[42]
    url = (
        f"{context['web']}/api/v1/emails/sent-email/?recipient={address}"
        f"&start_time={time.strftime('%Y-%m-%d', time.gmtime(time.time() - 60 * 86400))}"
        f"&end_time={time.strftime('%Y-%m-%d', time.gmtime(time.time() - 30 * 86400))}"
    )
    count = loads.get_json(url, token=context["seeded_token"])["count"]
    bench.notes.append(f"api_list: {count} of the 1,000,000 seeded emails match the recipient and window")

    def once() -> None:
        # The issue names no concurrency for this key: 2 clients, a steady read load. With 8
        # closed-loop clients the p99 is mostly queueing behind the other 7; reported beside it.
        for connections, key in ((2, "api_list_p99_ms_1m"), (8, "api_list_p99_ms_1m_8_clients")):
            result = loads.wrk(
                url,
                seconds=bench.seconds(10),
                connections=connections,
                headers={"Authorization": f"Token {context['seeded_token']}"},
            )
            if result.errors:
                bench.notes.append(f"api_list: {result.errors} of {result.requests} requests failed")
            bench.record(key, result.p99_ms)

    bench.repeat("api_list", once)


# --- end to end ---------------------------------------------------------------------------


def e2e(bench, context: dict[str, Any]) -> None:
    """At 20 sends/s: from the POST to the fake SendGrid receiving the request."""

    def once() -> None:
        before = loads.get_json(f"{context['fake']}/_fake/requests?summary=1")["total"]
        started = loads.paced_sends(
            f"{context['web']}/api/v1/emails/sent-email/",
            send_payload(context),
            context["token"],
            rate=20,
            seconds=bench.seconds(10),
        )
        settle(context)
        arrivals: dict[int, float] = {}
        for record in loads.get_json(f"{context['fake']}/_fake/requests?since={before}")["requests"]:
            for email_id in record["email_ids"]:
                arrivals.setdefault(email_id, record["at"])
        latencies = sorted((arrivals[i] - at) * 1000 for i, at in started.items() if i in arrivals)
        missing = len(started) - len(latencies)
        if missing:
            bench.notes.append(f"e2e: {missing} sends did not reach the fake")
        bench.record("e2e_p50_ms", statistics.median(latencies))
        bench.record("e2e_p99_ms", latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))])

    bench.repeat("e2e", once)


# --- the pipeline draining a backlog -----------------------------------------------------


def build_backlog(user: User, *, emails: int = 5000) -> tuple[int, int]:
    """`emails` sends of 10 recipients recorded and published as the web does; returns the id range."""
    # The addresses exist once a send has used them; `--only pipeline` on a new database has none.
    Recipient.objects.bulk_create([Recipient(email=address) for address in TEN], ignore_conflicts=True)
    recipient_ids = dict(Recipient.objects.filter(email__in=TEN).values_list("email", "pk"))
    with transaction.atomic():
        sent = SentEmail.objects.bulk_create(
            SentEmail(
                sender=user,
                subject="Backlog",
                body="Hi",
                html_body="<p>Hi</p>",
                from_email=user.email,
                recipient_count=10,
            )
            for _ in range(emails)
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(sent_email=email, recipient_id=recipient_ids[address]) for email in sent for address in TEN
        )
    by_email: dict[int, list[tuple[int, str]]] = {}
    for delivery, address in zip(deliveries, TEN * emails, strict=True):
        by_email.setdefault(delivery.sent_email_id, []).append((delivery.pk, address))
    for email in sent:
        message = work_message_build(sent_email=email, deliveries=by_email[email.pk])
        publisher().publish(encode(message), message_id=message_id_for(0, email.pk))
    return sent[0].pk, sent[-1].pk


def drain(
    bench, context: dict[str, Any], *, latency_ms: int, senders: int, sender_env: dict[str, str] | None = None
) -> float:
    stack = context["stack"]
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/mode", {"latency_ms": latency_ms}, token="")
    first, last = build_backlog(context["user"], emails=1000 if bench.quick else 5000)
    total = Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last).count()
    started = time.monotonic()
    for _ in range(senders):
        stack.start("sender", env=sender_env)
    while (
        Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last, status=DeliveryStatus.SENT).count()
        < total
    ):
        if time.monotonic() - started > SETTLE_SECONDS:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.1)
    rate = total / (time.monotonic() - started)
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/reset", {}, token="")
    stack.start("sender")
    return rate


def pipeline(bench, context: dict[str, Any]) -> None:
    """A backlog of 5,000 emails x 10 recipients drained to the fake, until every recipient shows sent."""
    bench.repeat(
        "pipeline 0 ms", lambda: bench.record("pipeline_rcpt_per_s_0ms", drain(bench, context, latency_ms=0, senders=1))
    )
    one = []
    two = []

    def pair() -> None:
        one.append(drain(bench, context, latency_ms=50, senders=1))
        two.append(drain(bench, context, latency_ms=50, senders=2))
        bench.record("pipeline_rcpt_per_s_50ms", one[-1])
        bench.record("pipeline_rcpt_per_s_50ms_2_senders", two[-1])
        bench.record("pipeline_scale_2_over_1", two[-1] / one[-1])

    bench.repeat("pipeline 50 ms", pair)
