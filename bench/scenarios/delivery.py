"""Delivery: from a POST to the fake SendGrid at a steady rate (e2e), and senders draining a
recorded backlog (pipeline)."""

import statistics
import time
from collections.abc import Iterable
from typing import Any

import pika
from django.db import transaction

from bench import loads
from bench.scenarios.common import (
    SETTLE_SECONDS,
    TEN,
    fake_restart,
    rabbitmq_url,
    send_payload,
    settle,
    topology_prefix,
)
from emailsender import topology
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_build
from emailsystem.emails.models import Delivery, DeliveryStatus, Recipient, SentEmail
from emailsystem.users.models import User


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


# Work messages published per broker transaction while the backlog is built.
BACKLOG_PUBLISH_BATCH = 1000


def backlog_addresses(index: int, recipients: int) -> list[str]:
    """The addresses of the backlog's email number `index`: the ten api_send uses, or one of its own."""
    if recipients == len(TEN):
        return TEN
    if recipients == 1:
        return [f"one{index}@example.com"]
    raise ValueError(f"a backlog email has 1 or {len(TEN)} recipients, not {recipients}")


def build_backlog(user: User, *, emails: int = 5000, recipients: int = len(TEN)) -> tuple[int, int]:
    """`emails` sends of `recipients` (10, or 1 with its own address) recorded as the web does and
    published; returns the id range. Each email has a body of its own."""
    addresses = [backlog_addresses(index, recipients) for index in range(emails)]
    # The addresses exist once a send has used them; `--only pipeline` on a new database has none.
    distinct = sorted({address for group in addresses for address in group})
    Recipient.objects.bulk_create([Recipient(email=address) for address in distinct], ignore_conflicts=True)
    recipient_ids = dict(Recipient.objects.filter(email__in=distinct).values_list("email", "pk"))
    with transaction.atomic():
        sent = SentEmail.objects.bulk_create(
            SentEmail(
                sender=user,
                subject="Backlog",
                body=f"Hi {index}",
                html_body=f"<p>Hi {index}</p>",
                from_email=user.email,
                recipient_count=len(group),
            )
            for index, group in enumerate(addresses)
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(sent_email=email, recipient_id=recipient_ids[address])
            for email, group in zip(sent, addresses, strict=True)
            for address in group
        )
    by_email: dict[int, list[tuple[int, str]]] = {}
    flat = [(email.pk, address) for email, group in zip(sent, addresses, strict=True) for address in group]
    for delivery, (email_id, address) in zip(deliveries, flat, strict=True):
        by_email.setdefault(email_id, []).append((delivery.pk, address))
    publish_backlog(
        (encode(work_message_build(sent_email=email, deliveries=by_email[email.pk])), message_id_for(0, email.pk))
        for email in sent
    )
    return sent[0].pk, sent[-1].pk


def publish_backlog(messages: Iterable[tuple[bytes, str]], *, lane: str = topology.WORK_KEY) -> None:
    """Publish (body, message id) work messages to `lane` in broker transactions of BACKLOG_PUBLISH_BATCH:
    building a 20,000-message backlog one confirm at a time would take longer than draining it."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url()))
    try:
        channel = connection.channel()
        channel.tx_select()
        for count, (body, message_id) in enumerate(messages, start=1):
            topology.publish_work(channel, body, message_id=message_id, prefix=topology_prefix(), lane=lane)
            if count % BACKLOG_PUBLISH_BATCH == 0:
                channel.tx_commit()
        channel.tx_commit()
    finally:
        if connection.is_open:
            connection.close()


def drain(
    bench,
    context: dict[str, Any],
    *,
    latency_ms: int,
    senders: int,
    sender_env: dict[str, str] | None = None,
    emails: int | None = None,
    recipients: int = len(TEN),
    reset_fake: bool = True,
) -> float:
    """Recipients per second `senders` senders (with `sender_env` added to their environment) drain a
    backlog of `emails` emails (default 5,000, 1,000 quick) of `recipients` each at; the fake's
    records are reset afterwards unless `reset_fake` is false."""
    stack = context["stack"]
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/mode", {"latency_ms": latency_ms}, token="")
    if emails is None:
        emails = 1000 if bench.quick else 5000
    first, last = build_backlog(context["user"], emails=emails, recipients=recipients)
    total = Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last).count()
    started = time.monotonic()
    for _ in range(senders):
        stack.start("sender", env={**stack.env, **(sender_env or {})})
    while (
        Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last, status=DeliveryStatus.SENT).count()
        < total
    ):
        if time.monotonic() - started > SETTLE_SECONDS:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.1)
    rate = total / (time.monotonic() - started)
    stack.stop("sender")
    if reset_fake:
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


# One-recipient messages in the backlog of pipeline_1rcpt (quick: a fifth).
ONE_RECIPIENT_BACKLOG = 20_000


def pipeline_1rcpt(bench, context: dict[str, Any]) -> None:
    """A backlog of 20,000 one-recipient emails, each with its own address and body, drained by one
    sender at 0 ms until every recipient shows sent: messages per second, to the lean SendGrid sink
    (`pipeline_msgs_per_s_1rcpt_0ms`) and to the full fake (`..._full_fake`).

    The sink (emailsender/testing/sendgrid_sink.py) answers from one thread and keeps counts only;
    the full fake's thread per connection, contract checks and recorded requests took 39 % of one
    of the machine's two cores at this rate, taken from the sender as SendGrid's servers never do.
    The sink's counts show every delivery arriving exactly once.
    """
    emails = ONE_RECIPIENT_BACKLOG // 5 if bench.quick else ONE_RECIPIENT_BACKLOG

    def once() -> None:
        fake_restart(context, sink=True)
        try:
            rate = drain(bench, context, latency_ms=0, senders=1, emails=emails, recipients=1, reset_fake=False)
            arrived = loads.get_json(f"{context['fake']}/_fake/requests?summary=1")
        finally:
            fake_restart(context)
        if arrived != {"total": emails, "deliveries": emails, "repeated": 0}:
            bench.notes.append(f"pipeline 1 recipient: the sink counted {arrived} for {emails:,} one-recipient emails")
        bench.record("pipeline_msgs_per_s_1rcpt_0ms", rate)
        full = drain(bench, context, latency_ms=0, senders=1, emails=emails, recipients=1)
        bench.record("pipeline_msgs_per_s_1rcpt_0ms_full_fake", full)

    bench.repeat("pipeline 1 recipient 0 ms", once)
