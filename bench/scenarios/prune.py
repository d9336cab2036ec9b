"""The `prune` scenario: sends through the API while `manage.py prune` deletes a million old rows.

Seeds PRUNE_EMAILS emails accepted in 2000, each with two recipients and an event (4 rows per
email: 1,000,000 rows), then starts `prune` as the CronJob runs it, in its own process with its
defaults (batches of 250 deliveries' worth, each followed by a pause three times as long as it
took), with retentions that reach back to 2001 only, so nothing else in the bench database goes.
The same send load as `api_send` (8 clients, the sender paused so that the figure is the web's)
runs for CONTROL_SECONDS just before prune starts, then again from prune's start until it exits.
`prune_send_p99_ms` is the p99 of every send made while prune ran, against `api_send_p99_ms`'s
bound; `prune_send_p99_ms_before` is the p99 of the sends of the control period.

The figure is one percentile over all of prune's sends, not the highest of many windows' p99s:
the highest p99 of 80 consecutive 10 s windows of this load with nothing pruned (prune's command
replaced by a sleep as long) was 142 ms on the 2-core bench machine, its median 84 ms, so that
statistic measured how noisy the machine was rather than what prune adds.
"""

import datetime
import json
import time
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from bench import loads
from bench.scenarios.common import send_payload, settle
from bench.seed import PRUNE_CUTOFF, seed_prunable
from emailsystem.users.models import User

PRUNE_EMAILS = 250_000
# How long prune may take before the run is declared stuck.
PRUNE_SECONDS = 900
# Seconds of the same load just before prune starts, the control (quick: a quarter).
CONTROL_SECONDS = 120


def prune(bench, context: dict[str, Any]) -> None:
    """PRUNE_EMAILS x 4 old rows deleted by `prune` under api_send's load."""
    owner, _ = User.objects.get_or_create(email="pruned@example.com", defaults={"username": "pruned"})

    def once() -> None:
        emails = PRUNE_EMAILS // 10 if bench.quick else PRUNE_EMAILS
        print(f"  seeding {emails * 4:,} rows to prune...", flush=True)
        rows = seed_prunable(user_id=owner.pk, emails=emails)
        stack = context["stack"]
        stack.stop("sender")

        def sends(seconds: int, until: Callable[[], bool] | None = None) -> loads.WrkResult:
            return loads.wrk(
                f"{context['web']}/api/v1/emails/sent-email/",
                seconds=seconds,
                method="POST",
                body=json.dumps(send_payload(context)),
                headers={"Authorization": f"Token {context['token']}", "Content-Type": "application/json"},
                until=until,
            )

        # The same load just before, on the same data: what prune adds is the difference.
        before = sends(bench.seconds(CONTROL_SECONDS))
        process = stack.start("prune", "python manage.py prune", env={**stack.env, **_retention(timezone.now())})
        started = time.monotonic()
        during = sends(PRUNE_SECONDS, until=lambda: process.popen.poll() is not None)
        code = process.popen.wait(timeout=max(1.0, PRUNE_SECONDS - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        stack.stop("prune")
        try:
            _record(bench, during, before, code=code, rows=rows, elapsed=elapsed)
        finally:  # recorded first: a broker gone at this point costs the drain, not the figures
            stack.start("sender")
            settle(context)

    bench.repeat("prune", once)


def _record(bench, during: loads.WrkResult, before: loads.WrkResult, *, code: int, rows: int, elapsed: float) -> None:
    """The keys and notes of one run: the rows per second, and the sends' p99 during prune and in
    the control period before it."""
    bench.record("prune_send_p99_ms_before", before.p99_ms)
    if code != 0:
        bench.notes.append(f"prune: exited {code} (bench/results/logs/prune*.log)")
    bench.record("prune_rows_per_s", rows / elapsed)
    errors = during.errors + before.errors
    if errors:
        bench.notes.append(f"prune: {errors} of {during.requests + before.requests} sends failed")
    note = (
        f"prune: {rows:,} rows in {elapsed:.0f} s under {during.requests:,} sends, p50 {during.p50_ms:.0f} ms,"
        f" p99 {during.p99_ms:.0f} ms; the {before.requests:,} sends before it: p50 {before.p50_ms:.0f} ms,"
        f" p99 {before.p99_ms:.0f} ms"
    )
    bench.notes.append(note)
    print(f"  {note}", flush=True)
    bench.record("prune_send_p99_ms", during.p99_ms)
    bench.record("prune_send_rps", during.rps)


def _retention(now: datetime.datetime) -> dict[str, str]:
    """Retentions that delete the seeded year 2000 and nothing later; the other kinds kept."""
    days = (now.date() - datetime.date.fromisoformat(PRUNE_CUTOFF)).days
    return {
        "RETENTION_SENT_EMAILS_DAYS": str(days),
        "RETENTION_DELIVERY_EVENTS_DAYS": str(days),
        "RETENTION_DAILY_COUNTS_DAYS": "0",
        "RETENTION_OUTBOX_LEFTOVERS_DAYS": "0",
    }
