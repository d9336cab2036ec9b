"""After a scenario: wait for the stack to settle, then hold it to the delivery guarantees.

Evidence comes from the database (statuses and the provider recorded per recipient), what
actually arrived at the providers (chaos/arrivals.py: the fake SendGrid's record and the SMTP
sink's messages, per delivery id) and the broker (the dead-letter queue).
"""

import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pika.exceptions
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import QuerySet

from chaos import arrivals
from chaos.faults import Fault
from chaos.load import Answer
from chaos.outcome import Outcome
from emailsender import topology
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.models import Delivery, DeliveryStatus, OutboxMessage

# Upper bound on settling after a fault: the longest retry wait (RETRY_MAX_SECONDS) plus margin.
SETTLE_SECONDS = 120


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
    sink_since: int,
    dead_before: int,
) -> None:
    """Fill `outcome` with the figures and every broken guarantee as a failure line."""
    failures = outcome.failures
    accepted = [(email_id, a) for a in answers if a.status == 202 for email_id in a.email_ids]
    accepted_ids = {email_id for email_id, _answer in accepted}
    send_at = {email_id: a.send_at for email_id, a in accepted if a.send_at is not None}
    outcome.offered = sum(a.messages for a in answers)
    outcome.accepted = len(accepted_ids)
    outcome.emails_by_kind = dict(Counter(a.kind for _email_id, a in accepted))
    _check_answers(outcome, fault, answers)
    _check_readyz(outcome, fault, readyz)

    close_old_connections()
    fields = ("pk", "sent_email_id", "status", "updated", "provider")
    rows = list(_this_scenario(first_delivery_id).values_list(*fields))
    accepted_rows = [row for row in rows if row[1] in accepted_ids]
    outcome.recipients = len(accepted_rows)
    stuck = [row[:3] for row in rows if row[2] == DeliveryStatus.QUEUED]
    if stuck:
        failures.append(f"{len(stuck)} deliveries still queued after settling (e.g. {stuck[:3]})")
    failed = [row[:3] for row in accepted_rows if row[2] == DeliveryStatus.FAILED]
    if failed:
        failures.append(f"{len(failed)} deliveries failed although every fault was temporary (e.g. {failed[:3]})")

    requests = arrivals.fake_requests(ctx["fake"], fake_since)
    outcome.sendgrid_by_status = dict(Counter(str(request["status"]) for request in requests))
    found = arrivals.copies(requests, ctx["sink"].received_since(sink_since))
    ours = {row[0] for row in accepted_rows}
    outcome.delivered = sum(1 for pk in ours if pk in found)
    outcome.lost = len(ours) - outcome.delivered
    if outcome.lost:
        missing = sorted(ours - found.keys())
        failures.append(f"{outcome.lost} accepted recipients never reached a provider (delivery ids {missing[:5]}...)")
    _check_recorded_provider(outcome, rows, found)
    email_of = {row[0]: row[1] for row in accepted_rows}
    _check_duplicates(outcome, fault, {pk: [c.at for c in found[pk]] for pk in ours if pk in found}, email_of)
    arrivals.check_retry_spacing(outcome, requests, ours, sendgrid_timeout=ctx["sendgrid_timeout"])
    arrivals.check_schedule(outcome, fault, send_at, accepted_rows, found)
    arrivals.check_failover(outcome, fault, found, ours)
    _check_breakers(outcome, fault, ctx["stack"].logs)
    arrivals.check_recovery(outcome, fault, answers, accepted_rows, found)

    dead_now = queue_depths(ctx)[topology.dead_queue(sender_settings().queue_prefix)]
    if dead_now != dead_before:
        failures.append(f"{dead_now - dead_before} messages dead-lettered; every fault here was one to retry")


def _check_recorded_provider(outcome: Outcome, rows: list[tuple], found: dict[int, list[arrivals.Copy]]) -> None:
    """A delivery recorded `sent` arrived at a provider, and at the one recorded with it."""
    sent = [(pk, provider) for pk, _email_id, status, _updated, provider in rows if status == DeliveryStatus.SENT]
    unseen = [pk for pk, _provider in sent if pk not in found]
    if unseen:
        outcome.failures.append(f"{len(unseen)} deliveries say sent but no provider accepted them (ids {unseen[:5]})")
    elsewhere = Counter(
        provider for pk, provider in sent if pk in found and provider not in {c.provider for c in found[pk]}
    )
    for provider, count in elsewhere.items():
        outcome.failures.append(f"{count} deliveries record provider {provider!r} but arrived through another")


def _check_answers(outcome: Outcome, fault: Fault, answers: list[Answer]) -> None:
    """Only 202 while the database is up; 503 (never another 5xx) only for requests that overlapped the outage."""
    down = fault.database_down
    outcome.web_5xx = sum(1 for a in answers if a.status >= 500)
    outcome.answers_by_status = dict(Counter(str(a.status or "no answer") for a in answers))
    bad: Counter[str] = Counter()
    for answer in answers:
        during_outage = down is not None and answer.started <= down[1] and answer.ended >= down[0]
        if (answer.status == 202 and len(answer.email_ids) == answer.messages) or (
            answer.status == 503 and during_outage
        ):
            continue
        what = answer.status if answer.status != 202 else f"202 without the ids ({answer.error[:60]})"
        bad[f"{what or answer.error[:60]}{' during the outage' if during_outage else ''}"] += 1
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


def _check_duplicates(
    outcome: Outcome, fault: Fault, accepted_at: dict[int, list[float]], email_of: dict[int, int]
) -> None:
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
        emails = sorted({email_of[pk] for pk in unexplained})
        copies = [[round(at - fault.crash_at, 2) for at in duplicates[pk]] for pk in unexplained[:3]]
        outcome.failures.append(
            f"{len(unexplained)} duplicates whose first copy was accepted after the crash (ids {unexplained[:5]}, "
            f"emails {emails[:5]}; copies at {copies} s after the crash)"
        )


def _breaker_move(entry: dict[str, Any]) -> str:
    """What one breaker log line (emailsender.breaker) says happened to SendGrid's breaker."""
    if entry.get("provider") != "sendgrid":
        return "other_provider"
    if entry.get("breaker_to") == "closed":
        return "breaker_closed"
    if entry.get("breaker_to") != "open":
        return "probing"
    message = str(entry.get("msg", ""))
    if not message.startswith("provider sendgrid breaker open: probe failed"):
        return "breaker_opened"
    if "status 503" in message:
        return "probe_failed_503"
    return "probe_failed_refused" if "Connection refused" in message else "probe_failed_other"


def _check_breakers(outcome: Outcome, fault: Fault, logs: Path) -> None:
    """sendgrid_outage: the senders' SendGrid breakers opened, their probes failed on the 503s and
    on the closed port, and closed once SendGrid was back (read from the senders' log lines)."""
    if fault.sendgrid_down is None or fault.failback_by is None:
        return
    moves: Counter[str] = Counter()
    for path in sorted(logs.glob("sender*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"emailsender.breaker"' not in line:
                continue
            try:
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["ts"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if fault.began <= at <= fault.failback_by:
                moves[_breaker_move(entry)] += 1
    moves.pop("probing", None)
    moves.pop("other_provider", None)
    outcome.failover.update(moves)
    for move, meaning in (
        ("breaker_opened", "no SendGrid breaker opened"),
        ("probe_failed_503", "no probe met the 503s"),
        ("probe_failed_refused", "no probe met the closed port"),
        ("breaker_closed", "no SendGrid breaker closed after the outage"),
    ):
        if not moves[move]:
            outcome.failures.append(meaning)
