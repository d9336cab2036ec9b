"""How the senders share the work: among tenants (`fair`: other users' small sends while one
user's bulk backlog drains) and among replicas (`pipeline_io`: two senders bound by SendGrid's
latency, not the CPU, against one)."""

import statistics
import time
from typing import Any

import pika
from django.db import transaction
from rest_framework.authtoken.models import Token

from bench import loads
from bench.scenarios.common import SETTLE_SECONDS, fake_restart, rabbitmq_url, settle, topology_prefix
from bench.scenarios.delivery import build_backlog, publish_backlog
from bench.scenarios.fields import PeakRss
from emailsender import topology
from emailsystem.emails.delivery.lanes import lane_for
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_build
from emailsystem.emails.models import Delivery, Recipient, SentEmail
from emailsystem.users.models import User
from emailsystem.users.services import user_email_verified_set

# --- fair: small sends while a bulk backlog drains ------------------------------------------

# The backlog: this many sends of BULK_RECIPIENTS each (200,000 recipients; quick: a fifth).
BULK_SENDS = 200
BULK_RECIPIENTS = 1000
# Other users' one-recipient sends per second while it drains (a steady trickle), in windows of
# this many seconds, for as long as the fake has not received the whole backlog.
TRICKLE_PER_S = 5
TRICKLE_WINDOW_S = 2
# The process role of the control's sender (see `fair`).
CONTROL_ROLE = "sender_one_lane"


def _bulk_backlog(user: User, sends: int, *, one_lane: bool) -> tuple[int, int]:
    """`sends` emails of BULK_RECIPIENTS recipients each, recorded as the web records a send and
    published to the lane the web chooses for them (lanes.lane_for: the bulk one), or with
    `one_lane` to the normal lane, as a single work queue would hold them."""
    addresses = [f"bulk{n}@example.com" for n in range(BULK_RECIPIENTS)]
    Recipient.objects.bulk_create([Recipient(email=address) for address in addresses], ignore_conflicts=True)
    recipients = list(Recipient.objects.filter(email__in=addresses).values_list("pk", "email"))
    with transaction.atomic():
        emails = SentEmail.objects.bulk_create(
            SentEmail(
                sender=user,
                subject="Newsletter",
                body=f"Issue {n}",
                from_email=user.email,
                recipient_count=BULK_RECIPIENTS,
            )
            for n in range(sends)
        )
        deliveries = Delivery.objects.bulk_create(
            (Delivery(sent_email=email, recipient_id=pk) for email in emails for pk, _ in recipients), batch_size=10_000
        )
    per_email = len(recipients)
    messages = (
        (
            encode(
                work_message_build(
                    sent_email=email,
                    deliveries=[
                        (delivery.pk, address)
                        for delivery, (_, address) in zip(
                            deliveries[index * per_email : (index + 1) * per_email], recipients, strict=True
                        )
                    ],
                )
            ),
            message_id_for(0, email.pk),
        )
        for index, email in enumerate(emails)
    )
    publish_backlog(messages, lane=topology.WORK_KEY if one_lane else lane_for(recipients=per_email))
    return emails[0].pk, emails[-1].pk


def _small_sender_token() -> str:
    """The token of another user than the backlog's, verified so that it sends From itself."""
    user, _ = User.objects.get_or_create(
        email="small@example.com", defaults={"username": "small", "daily_quota": 2_000_000_000}
    )
    user_email_verified_set(user=user, verified=True)
    return Token.objects.get_or_create(user=user)[0].key


def _queue(queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of `queue`."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url()))
    try:
        method = connection.channel().queue_declare(queue=queue, passive=True).method
        return method.message_count, method.consumer_count
    finally:
        connection.close()


class Arrivals:
    """What the fake SendGrid received since it started: email id -> when its first request
    arrived, read a page at a time (each poll only fetches the requests it has not seen)."""

    def __init__(self, fake: str) -> None:
        self.fake = fake
        self.seen = 0
        self.at: dict[int, float] = {}

    def poll(self) -> "Arrivals":
        page = loads.get_json(f"{self.fake}/_fake/requests?since={self.seen}")
        for record in page["requests"]:
            for email_id in record["email_ids"]:
                self.at.setdefault(email_id, record["at"])
        self.seen = page["count"]
        return self

    def of(self, first: int, last: int) -> int:
        """How many of the emails `first`..`last` have arrived."""
        return sum(1 for email_id in self.at if first <= email_id <= last)


def fair(bench, context: dict[str, Any]) -> None:
    """While one user's backlog of 200 sends x 1,000 recipients drains (one sender, the fake at
    0 ms), another user POSTs one-recipient sends at 5/s: seconds from the POST to the fake. Then
    the same with the backlog in the normal lane, as one FIFO queue would hold it."""
    sends = BULK_SENDS // 5 if bench.quick else BULK_SENDS
    token = _small_sender_token()
    url = f"{context['web']}/api/v1/emails/sent-email/"
    payload = {"recipients": ["reset@example.com"], "subject": "Password reset", "body": "Your link"}

    def once(*, one_lane: bool, role: str) -> None:
        fake_restart(context, "--no-bodies")
        arrivals = Arrivals(context["fake"])
        first, last = _bulk_backlog(context["user"], sends, one_lane=one_lane)
        began = time.monotonic()
        started: dict[int, float] = {}
        with PeakRss(context["stack"].running[role][0].pid) as sender:
            # For as long as the backlog drains: until the fake has received every one of its sends.
            while arrivals.poll().of(first, last) < sends and time.monotonic() - began < SETTLE_SECONDS:
                started.update(loads.paced_sends(url, payload, token, rate=TRICKLE_PER_S, seconds=TRICKLE_WINDOW_S))
            drained = time.monotonic() - began
            settle(context)
        arrivals.poll()
        latencies = sorted(arrivals.at[i] - at for i, at in started.items() if i in arrivals.at)
        if len(latencies) < len(started):
            bench.notes.append(f"fair: {len(started) - len(latencies)} small sends did not reach the fake")
        backlog_at = [at for email_id, at in arrivals.at.items() if first <= email_id <= last]
        span = max(backlog_at) - min(backlog_at)
        bench.notes.append(
            f"fair{' (one lane)' if one_lane else ''}: {len(started)} small sends in {drained:.0f} s while "
            f"{sends * BULK_RECIPIENTS} bulk recipients drained (the fake received them over {span:.1f} s; "
            f"sender peak RSS {sender.peak_mb:.1f} MB)"
        )
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        if one_lane:
            bench.record("fair_small_send_p99_s_one_lane", p99)
        else:
            bench.record("fair_small_send_p50_s", statistics.median(latencies))
            bench.record("fair_small_send_p99_s", p99)
            bench.record("sender_rss_mb_bulk", sender.peak_mb)
        fake_restart(context)

    def both() -> None:
        once(one_lane=False, role="sender")
        # The control: the same backlog in the normal lane, which every send would share without
        # lanes. Its sender runs under a role of its own, so that its peak (32 workers on
        # 1,000-recipient messages, which lanes prevent) does not count as sender_rss_mb.
        stack = context["stack"]
        stack.stop("sender")
        stack.start(CONTROL_ROLE, stack.commands["sender"])
        try:
            once(one_lane=True, role=CONTROL_ROLE)
        finally:
            stack.stop(CONTROL_ROLE)
            stack.start("sender")

    bench.repeat("fair", both)


# --- pipeline_io: two senders bound by SendGrid, not the CPU --------------------------------

IO_LATENCY_MS = 200
IO_CONCURRENCY = 8
# Emails of 10 recipients: one sender takes about 30 s at 8 calls of 200 ms (quick: a third).
IO_EMAILS = 1200


def _drain_io(context: dict[str, Any], *, senders: int, emails: int) -> float:
    """Recipients per second `senders` senders of IO_CONCURRENCY calls each deliver to the fake at
    IO_LATENCY_MS: from the first request of the backlog the fake receives to the last one's answer."""
    stack = context["stack"]
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/mode", {"latency_ms": IO_LATENCY_MS}, token="")
    for _ in range(senders):
        stack.start("sender", env={**stack.env, "SENDER_CONCURRENCY": str(IO_CONCURRENCY)})
    work_queue = topology.work_queue(topology_prefix())
    deadline = time.monotonic() + 60
    while _queue(work_queue)[1] < senders:  # every sender consuming before the backlog exists
        if time.monotonic() > deadline:
            raise RuntimeError(f"the senders did not start consuming:\n{stack.diagnostics()}")
        time.sleep(0.2)
    before = loads.get_json(f"{context['fake']}/_fake/requests?summary=1")["total"]
    first, last = build_backlog(context["user"], emails=emails)
    settle(context)
    requests = loads.get_json(f"{context['fake']}/_fake/requests?since={before}")["requests"]
    backlog = [record for record in requests if any(first <= i <= last for i in record["email_ids"])]
    recipients = sum(len(record["delivery_ids"]) for record in backlog)
    elapsed = backlog[-1]["at"] - backlog[0]["at"] + IO_LATENCY_MS / 1000
    stack.stop("sender")
    loads.post_json(f"{context['fake']}/_fake/mode", {"latency_ms": 0}, token="")
    loads.post_json(f"{context['fake']}/_fake/reset", {}, token="")
    stack.start("sender")
    return recipients / elapsed


def pipeline_io(bench, context: dict[str, Any]) -> None:
    """A backlog of 1,200 emails x 10 recipients drained to the fake at 200 ms by one, then two
    senders of 8 concurrent calls each: bound by SendGrid's latency, two should deliver twice as much."""
    emails = IO_EMAILS // 3 if bench.quick else IO_EMAILS

    def pair() -> None:
        one = _drain_io(context, senders=1, emails=emails)
        two = _drain_io(context, senders=2, emails=emails)
        bench.record("pipeline_rcpt_per_s_200ms_c8", one)
        bench.record("pipeline_rcpt_per_s_200ms_c8_2_senders", two)
        bench.record("pipeline_scale_io_2_over_1", two / one)

    bench.repeat("pipeline 200 ms, 8 calls per sender", pair)
