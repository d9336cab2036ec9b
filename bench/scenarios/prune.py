"""The `prune` scenario: sends through the API while `manage.py prune` deletes a million old rows.

Seeds PRUNE_EMAILS emails accepted in 2000, each with two recipients and an event (4 rows per
email: 1,000,000 rows), then starts `prune` as the CronJob runs it, in its own process with its
defaults (batches of 250 deliveries' worth, each followed by a pause as long as it took), with
retentions that reach back to 2001 only, so nothing else in the bench database goes. While it
runs, the same send load as `api_send` (8 clients, the sender paused so that the figure is the
web's) runs in consecutive 10 s wrk windows until prune exits. `prune_send_p99_ms` is the
highest window's p99, against `api_send_p99_ms`'s bound; `prune_send_p99_ms_before` is the
highest p99 of CONTROL_WINDOWS windows of the same load just before prune starts, the same
statistic without prune (over fewer windows, so it leans low).
"""

import datetime
import json
import statistics
import time
from typing import Any

from django.utils import timezone

from bench import loads
from bench.scenarios.common import send_payload, settle
from bench.seed import PRUNE_CUTOFF, seed_prunable
from emailsystem.users.models import User

PRUNE_EMAILS = 250_000
# How long prune may take before the run is declared stuck.
PRUNE_SECONDS = 900
# Send windows of the same load just before prune starts, the control (quick: 2).
CONTROL_WINDOWS = 12


def prune(bench, context: dict[str, Any]) -> None:
    """PRUNE_EMAILS x 4 old rows deleted by `prune` under api_send's load."""
    owner, _ = User.objects.get_or_create(email="pruned@example.com", defaults={"username": "pruned"})

    def once() -> None:
        emails = PRUNE_EMAILS // 10 if bench.quick else PRUNE_EMAILS
        print(f"  seeding {emails * 4:,} rows to prune...", flush=True)
        rows = seed_prunable(user_id=owner.pk, emails=emails)
        stack = context["stack"]
        stack.stop("sender")

        def window() -> loads.WrkResult:
            return loads.wrk(
                f"{context['web']}/api/v1/emails/sent-email/",
                seconds=bench.seconds(10),
                method="POST",
                body=json.dumps(send_payload(context)),
                headers={"Authorization": f"Token {context['token']}", "Content-Type": "application/json"},
            )

        # The same load just before, on the same data: what prune adds is the difference.
        before = [window() for _ in range(2 if bench.quick else CONTROL_WINDOWS)]
        process = stack.start("prune", "python manage.py prune", env={**stack.env, **_retention(timezone.now())})
        started = time.monotonic()
        windows = []
        while process.popen.poll() is None and time.monotonic() - started < PRUNE_SECONDS:
            windows.append(window())
        code = process.popen.wait(timeout=max(1.0, PRUNE_SECONDS - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        stack.stop("prune")
        try:
            _record(bench, windows, before, code=code, rows=rows, elapsed=elapsed)
        finally:  # recorded first: a broker gone at this point costs the drain, not the figures
            stack.start("sender")
            settle(context)

    bench.repeat("prune", once)


def _record(
    bench, windows: list[loads.WrkResult], before: list[loads.WrkResult], *, code: int, rows: int, elapsed: float
) -> None:
    """The keys and notes of one run: the rows per second, each send window's p99 and their highest,
    during prune and in the control windows before it."""
    bench.record(
        "prune_send_p99_ms_before", _windows_noted(bench, before, f"prune: {len(before)} send window(s) before prune")
    )
    if code != 0:
        bench.notes.append(f"prune: exited {code} (bench/results/logs/prune*.log)")
    bench.record("prune_rows_per_s", rows / elapsed)
    if not windows:
        bench.notes.append(f"prune: {rows:,} rows in {elapsed:.0f} s, before a send window could start")
        return
    errors = sum(window.errors for window in windows)
    if errors:
        bench.notes.append(f"prune: {errors} of {sum(w.requests for w in windows)} sends failed during prune")
    during = f"prune: {rows:,} rows in {elapsed:.0f} s under {len(windows)} send window(s)"
    bench.record("prune_send_p99_ms", _windows_noted(bench, windows, during))
    bench.record("prune_send_rps", statistics.mean(window.rps for window in windows))


def _windows_noted(bench, windows: list[loads.WrkResult], what: str) -> float:
    """Note (and print) `what` with every window's p99 and their median; the highest p99."""
    p99s = sorted(window.p99_ms for window in windows)
    note = (
        f"{what}; their p99s {', '.join(f'{w.p99_ms:.0f}' for w in windows)} ms (median {statistics.median(p99s):.0f})"
    )
    bench.notes.append(note)
    print(f"  {note}", flush=True)
    return p99s[-1]


def _retention(now: datetime.datetime) -> dict[str, str]:
    """Retentions that delete the seeded year 2000 and nothing later; the other kinds kept."""
    days = (now.date() - datetime.date.fromisoformat(PRUNE_CUTOFF)).days
    return {
        "RETENTION_SENT_EMAILS_DAYS": str(days),
        "RETENTION_DELIVERY_EVENTS_DAYS": str(days),
        "RETENTION_DAILY_COUNTS_DAYS": "0",
        "RETENTION_OUTBOX_LEFTOVERS_DAYS": "0",
    }
