"""Where and when each delivery arrived, and the verdicts that read those times.

A copy is one provider accepting one delivery: a request the fake SendGrid answered 202,
carrying the delivery id in its `custom_args`, or a message the SMTP sink received, carrying
it in `X-Delivery-Id` (mime.payload_mime).
"""

import itertools
import json
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chaos.faults import SENDGRID_429_RESET_SECONDS, Fault
from chaos.load import Answer
from chaos.outcome import Outcome
from emailsender.testing.smtp_sink import Received
from emailsystem.emails.delivery.config import sender_settings

# Slack for the time between the fake recording a request and the sender reading its answer.
SPACING_SLACK_SECONDS = 0.25
# Requests that reached the fake in the instant before it was told to fail were still accepted.
MODE_SWITCH_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class Copy:
    at: float  # time.time() when the provider took it: the request's arrival, the end of SMTP DATA
    provider: str  # as EMAIL_PROVIDERS and Delivery.provider name it: sendgrid, smtp


def fake_requests(fake: str, since: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{fake}/_fake/requests?since={since}", timeout=30) as response:
        return json.load(response)["requests"]


def fake_count(fake: str) -> int:
    with urllib.request.urlopen(f"{fake}/_fake/requests?summary=1", timeout=10) as response:
        return json.load(response)["total"]


def copies(requests: list[dict[str, Any]], received: Iterable[Received]) -> dict[int, list[Copy]]:
    """Every accepted copy per delivery id, oldest first."""
    found: dict[int, list[Copy]] = {}
    for request in requests:
        if request["status"] == 202:
            for delivery_id in request["delivery_ids"]:
                found.setdefault(delivery_id, []).append(Copy(request["at"], "sendgrid"))
    for message in received:
        delivery_id = message.message["X-Delivery-Id"]
        if delivery_id is not None and str(delivery_id).isdigit():
            found.setdefault(int(delivery_id), []).append(Copy(message.at, "smtp"))
    for found_copies in found.values():
        found_copies.sort(key=lambda copy: copy.at)
    return found


def check_retry_spacing(
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


def check_schedule(
    outcome: Outcome, fault: Fault, send_at: dict[int, float], rows: list[tuple], found: dict[int, list[Copy]]
) -> None:
    """No copy of a scheduled send arrives before its send_at; and some came due during the fault."""
    early = [row[0] for row in rows if row[1] in send_at and any(c.at < send_at[row[1]] for c in found.get(row[0], []))]
    outcome.early = len(early)
    if early:
        outcome.failures.append(
            f"{len(early)} scheduled deliveries reached a provider before send_at (ids {early[:5]})"
        )
    outcome.scheduled_due_in_fault = sum(1 for at in send_at.values() if fault.began <= at <= fault.cleared)
    if send_at and not outcome.scheduled_due_in_fault:
        outcome.failures.append("no accepted scheduled send came due during the fault")


def check_failover(outcome: Outcome, fault: Fault, found: dict[int, list[Copy]], ours: set[int]) -> None:
    """While SendGrid is down mail goes out through SMTP; once it is back, through SendGrid again."""
    outcome.via_smtp = sum(1 for pk in ours if any(c.provider == "smtp" for c in found.get(pk, [])))
    if fault.sendgrid_down is None or fault.failback_by is None:
        return
    began, cleared = fault.sendgrid_down
    ours_copies = [copy for pk in ours for copy in found.get(pk, [])]
    counts = {
        "smtp_during_outage": sum(1 for c in ours_copies if c.provider == "smtp" and began <= c.at <= cleared),
        "sendgrid_during_outage": sum(
            1 for c in ours_copies if c.provider == "sendgrid" and began + MODE_SWITCH_SLACK_SECONDS <= c.at <= cleared
        ),
        "sendgrid_after": sum(1 for c in ours_copies if c.provider == "sendgrid" and c.at > cleared),
        "smtp_after_failback": sum(1 for c in ours_copies if c.provider == "smtp" and c.at > fault.failback_by),
    }
    outcome.failover = counts
    failures = outcome.failures
    if not counts["smtp_during_outage"]:
        failures.append("SMTP carried nothing while SendGrid was down")
    if counts["sendgrid_during_outage"]:
        failures.append(f"SendGrid accepted {counts['sendgrid_during_outage']} recipients while down: was it down?")
    if not counts["sendgrid_after"]:
        failures.append("SendGrid carried nothing after it came back")
    if counts["smtp_after_failback"]:
        seconds = round(fault.failback_by - cleared, 1)
        failures.append(
            f"{counts['smtp_after_failback']} recipients went through SMTP more than {seconds}s after SendGrid was back"
        )


def check_recovery(
    outcome: Outcome, fault: Fault, answers: list[Answer], rows: list[tuple], found: dict[int, list[Copy]]
) -> None:
    """Recovery: from the fault's end until every send due by then (accepted, and past its
    send_at) reached a provider and had its status recorded."""
    due_at = {
        email_id: max(answer.ended, answer.send_at or 0.0)
        for answer in answers
        if answer.status == 202
        for email_id in answer.email_ids
    }
    done_at = [
        max(found[pk][0].at, updated.timestamp())
        for pk, email_id, _status, updated, _provider in rows
        if due_at.get(email_id, 0) <= fault.cleared and pk in found
    ]
    outcome.recovery_seconds = round(max([0.0, *(at - fault.cleared for at in done_at)]), 1)
