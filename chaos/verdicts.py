"""After a scenario: wait for the stack to settle, then hold it to the delivery guarantees.

Evidence comes from the database (statuses), the fake SendGrid's record (what actually
arrived, per delivery id from `custom_args`) and the broker (the dead-letter queue).
"""

import itertools
import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pika.exceptions
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import QuerySet

from chaos.faults import SENDGRID_429_RESET_SECONDS, Fault
from chaos.load import Answer
from emailsender import topology
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage

# Upper bound on settling after a fault: the longest retry wait (RETRY_MAX_SECONDS) plus margin.
SETTLE_SECONDS = 120


@dataclass
class Outcome:
    scenario: str
    description: str
    offered: int = 0
    accepted: int = 0
    recipients: int = 0
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    recovery_seconds: float = 0.0
    settle_seconds: float = 0.0
    web_5xx: int = 0
    readyz_503: int = 0
    answers_by_status: dict[str, int] = field(default_factory=dict)
    sendgrid_by_status: dict[str, int] = field(default_factory=dict)  # the fake's answers to this scenario
    # (delivery id, seconds from the fault's start to each accepted copy), for the first few
    duplicate_examples: list[tuple[int, list[float]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _fake_requests(fake: str, since: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{fake}/_fake/requests?since={since}", timeout=30) as response:
        return json.load(response)["requests"]


def fake_count(fake: str) -> int:
    with urllib.request.urlopen(f"{fake}/_fake/requests?summary=1", timeout=10) as response:
        return json.load(response)["total"]


def queue_depths(ctx: dict[str, Any]) -> dict[str, int]:
    config = sender_settings()
    rabbitmq = ctx["servers"].rabbitmq
    return {
        queue: rabbitmq.queue_depth(queue) for queue in topology.all_queues(config.queue_prefix, config.retry_delays_ms)
    }


def _this_scenario(first_delivery_id: int) -> QuerySet[Delivery]:
    return Delivery.objects.filter(pk__gte=first_delivery_id)


def settle(ctx: dict[str, Any], first_delivery_id: int) -> float:
    """Wait (bounded) until no delivery of this scenario is queued and no queue but the dead letters holds anything."""
    started = time.monotonic()
    dead = topology.dead_queue(sender_settings().queue_prefix)
    while True:
        close_old_connections()
        try:
            pending = _this_scenario(first_delivery_id).filter(status=DeliveryStatus.QUEUED).exists()
            pending = pending or OutboxMessage.objects.exists()
            depths = queue_depths(ctx)
        except (DatabaseError, pika.exceptions.AMQPError, OSError):  # still coming back: keep waiting
            connections.close_all()
            pending, depths = True, {}
        if not pending and not any(n for queue, n in depths.items() if queue != dead):
            return time.monotonic() - started
        if time.monotonic() - started > SETTLE_SECONDS:
            return -1.0
        time.sleep(0.5)


def check(
    *,
    ctx: dict[str, Any],
    outcome: Outcome,
    fault: Fault,
    answers: list[Answer],
    readyz: list[tuple[float, int]],
    first_delivery_id: int,
    fake_since: int,
    dead_before: int,
) -> None:
    """Fill `outcome` with the figures and every broken guarantee as a failure line."""
    failures = outcome.failures
    accepted_ids = {a.email_id for a in answers if a.status == 202 and a.email_id is not None}
    outcome.offered = len(answers)
    outcome.accepted = len(accepted_ids)
    _check_answers(outcome, fault, answers)
    _check_readyz(outcome, fault, readyz)

    close_old_connections()
    rows = list(_this_scenario(first_delivery_id).values_list("pk", "sent_email_id", "status", "updated"))
    accepted_rows = [row for row in rows if row[1] in accepted_ids]
    outcome.recipients = len(accepted_rows)
    stuck = [row for row in rows if row[2] == DeliveryStatus.QUEUED]
    if stuck:
        failures.append(f"{len(stuck)} deliveries still queued after settling (e.g. {stuck[:3]})")
    failed = [row for row in accepted_rows if row[2] == DeliveryStatus.FAILED]
    if failed:
        failures.append(f"{len(failed)} deliveries failed although every fault was temporary (e.g. {failed[:3]})")

    requests = _fake_requests(ctx["fake"], fake_since)
    outcome.sendgrid_by_status = dict(Counter(str(request["status"]) for request in requests))
    accepted_at: dict[int, list[float]] = {}
    for request in requests:
        if request["status"] == 202:
            for delivery_id in request["delivery_ids"]:
                accepted_at.setdefault(delivery_id, []).append(request["at"])
    ours = {row[0] for row in accepted_rows}
    outcome.delivered = sum(1 for pk in ours if pk in accepted_at)
    outcome.lost = len(ours) - outcome.delivered
    if outcome.lost:
        missing = sorted(ours - accepted_at.keys())
        failures.append(f"{outcome.lost} accepted recipients never reached SendGrid (delivery ids {missing[:5]}...)")
    sent_not_seen = [row[0] for row in rows if row[2] == DeliveryStatus.SENT and row[0] not in accepted_at]
    if sent_not_seen:
        failures.append(f"{len(sent_not_seen)} deliveries say sent but SendGrid never accepted them")
    _check_duplicates(outcome, fault, {pk: times for pk, times in accepted_at.items() if pk in ours})
    _check_retry_spacing(outcome, requests, ours, sendgrid_timeout=ctx["sendgrid_timeout"])
    _check_recovery(outcome, fault, answers, accepted_rows, accepted_at)

    dead_now = queue_depths(ctx)[topology.dead_queue(sender_settings().queue_prefix)]
    if dead_now != dead_before:
        failures.append(f"{dead_now - dead_before} messages dead-lettered; every fault here was one to retry")


def _check_answers(outcome: Outcome, fault: Fault, answers: list[Answer]) -> None:
    """Only 202 while the database is up; 503 (never another 5xx) only for requests that overlapped the outage."""
    down = fault.database_down
    outcome.web_5xx = sum(1 for a in answers if a.status >= 500)
    outcome.answers_by_status = dict(Counter(str(a.status or "no answer") for a in answers))
    bad: Counter[str] = Counter()
    for answer in answers:
        during_outage = down is not None and answer.started <= down[1] and answer.ended >= down[0]
        if answer.status == 202 or (answer.status == 503 and during_outage):
            continue
        bad[f"{answer.status or answer.error[:60]}{' during the outage' if during_outage else ''}"] += 1
    for what, count in bad.items():
        outcome.failures.append(f"web answered {what} to {count} sends")
    if down is not None and not outcome.web_5xx:
        outcome.failures.append("no 5xx while the database was down: was it really down?")


def _check_readyz(outcome: Outcome, fault: Fault, samples: list[tuple[float, int]]) -> None:
    """503 while the database is down (and only then); 200 otherwise, broker outage included."""
    down = fault.database_down
    outcome.readyz_503 = sum(1 for _at, status in samples if status == 503)
    # A probe started just before the outage (or during it) may answer on either side of its edge.
    edge = 5.0
    wrong = [
        (round(at - fault.began, 1), status)
        for at, status in samples
        if status != 200 and not (down is not None and down[0] - edge <= at <= down[1])
    ]
    if wrong:
        outcome.failures.append(f"/readyz not 200 outside a database outage: {wrong[:5]} (s after the fault, status)")
    if down is not None:
        inside = [status for at, status in samples if down[0] + 1 <= at <= down[1] - 1]
        if not inside or any(status != 503 for status in inside):
            outcome.failures.append(f"/readyz during the database outage answered {Counter(inside)}, expected 503")


def _check_duplicates(outcome: Outcome, fault: Fault, accepted_at: dict[int, list[float]]) -> None:
    """A delivery accepted twice is allowed only in the documented crash window: first copy before the crash."""
    duplicates = {pk: sorted(times) for pk, times in accepted_at.items() if len(times) > 1}
    outcome.duplicated = len(duplicates)
    outcome.duplicate_examples = [
        (pk, [round(at - fault.began, 2) for at in times]) for pk, times in sorted(duplicates.items())[:10]
    ]
    if not duplicates:
        return
    if fault.crash_at is None:
        outcome.failures.append(f"{len(duplicates)} deliveries reached SendGrid twice with no crash to explain it")
        return
    if len(duplicates) > fault.duplicate_bound:
        outcome.failures.append(
            f"{len(duplicates)} duplicated deliveries, more than the {fault.duplicate_bound} the crash could hold"
        )
    unexplained = [pk for pk, times in duplicates.items() if times[0] > fault.crash_at]
    if unexplained:
        outcome.failures.append(
            f"{len(unexplained)} duplicates whose first copy was accepted after the crash (ids {unexplained[:5]})"
        )


# Slack for the time between the fake recording a request and the sender reading its answer.
SPACING_SLACK_SECONDS = 0.25


def _check_retry_spacing(
    outcome: Outcome, requests: list[dict[str, Any]], ours: set[int], *, sendgrid_timeout: float
) -> None:
    """A failed request is retried only after its wait: the backoff's floor after a 5xx, the
    window's reset after a 429 (X-RateLimit-Reset), the timeout plus the backoff after a hang."""
    settings = sender_settings()
    backoff_floor = settings.backoff_seconds(1) / 2  # jitter keeps at least half the nominal delay
    seen: dict[int, list[tuple[float, Any]]] = {}
    for request in requests:
        for delivery_id in request["delivery_ids"]:
            if delivery_id in ours:
                seen.setdefault(delivery_id, []).append((request["at"], request["status"]))
    early: Counter[str] = Counter()
    for attempts in seen.values():
        attempts.sort(key=lambda attempt: attempt[0])
        for (at, status), (next_at, _next_status) in itertools.pairwise(attempts):
            if status == 429:
                floor = SENDGRID_429_RESET_SECONDS
            elif status == "hang":
                floor = sendgrid_timeout + backoff_floor
            elif isinstance(status, int) and status >= 500:
                floor = backoff_floor
            else:
                continue
            if next_at - at < floor - SPACING_SLACK_SECONDS:
                early[str(status)] += 1
    for status, count in early.items():
        outcome.failures.append(f"{count} retries after a {status} came before their wait was over")


def _check_recovery(
    outcome: Outcome,
    fault: Fault,
    answers: list[Answer],
    accepted_rows: list[tuple],
    accepted_at: dict[int, list[float]],
) -> None:
    """Recovery: from the fault's end until every send accepted by then reached SendGrid and had its status."""
    answered_at = {a.email_id: a.ended for a in answers if a.status == 202}
    done_at = [
        max(min(accepted_at[pk]), updated.timestamp())
        for pk, email_id, _status, updated in accepted_rows
        if answered_at.get(email_id, 0) <= fault.cleared and pk in accepted_at
    ]
    outcome.recovery_seconds = round(max([0.0, *(at - fault.cleared for at in done_at)]), 1)
