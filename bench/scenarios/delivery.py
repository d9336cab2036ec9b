"""Delivery: from a POST to the fake SendGrid at a steady rate (e2e), and senders draining a
recorded backlog (pipeline)."""

import statistics
import time
from typing import Any

from django.db import transaction

from bench import loads
from bench.scenarios.common import SETTLE_SECONDS, TEN, send_payload, settle
from emailsystem.emails.delivery.broker import publisher
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
    """Recipients per second `senders` senders (with `sender_env` added to their environment) drain a backlog at."""
    stack = context["stack"]
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/mode", {"latency_ms": latency_ms}, token="")
    first, last = build_backlog(context["user"], emails=1000 if bench.quick else 5000)
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
