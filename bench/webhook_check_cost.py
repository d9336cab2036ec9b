"""Cost of the outbound-webhook check on the results path (docs/outbound-webhooks.md).

delivery_results_apply on batches of 500 `sent` results, with the check (results_watch) and with
it replaced by a no-op, alternating; then the check alone. It records sends, so point it at a
migrated scratch database:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emailsystem_scratch DJANGO_DEBUG=1 \
        python -m bench.webhook_check_cost [--other-endpoint]

--other-endpoint first gives another user an enabled endpoint, so the check takes its join.
"""

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsystem.settings")
django.setup()

from django.utils import timezone  # noqa: E402 (after django.setup)

from emailsender.result_messages import ResultMessage  # noqa: E402
from emailsystem.emails.delivery import results as results_module  # noqa: E402
from emailsystem.emails.models import Delivery, DeliveryStatus  # noqa: E402
from emailsystem.emails.tests.factories import sent_email  # noqa: E402
from emailsystem.outbound.events import results_watch  # noqa: E402
from emailsystem.outbound.models import WebhookEndpoint  # noqa: E402
from emailsystem.outbound.services import endpoint_create  # noqa: E402
from emailsystem.users.models import User  # noqa: E402

BATCH = 500
RUNS = 16


def queued_deliveries(user: User) -> list[tuple[int, int]]:
    rows = Delivery.objects.filter(status=DeliveryStatus.QUEUED, sent_email__sender=user)
    return list(rows.values_list("sent_email_id", "pk"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other-endpoint", action="store_true")
    args = parser.parse_args()
    user, _ = User.objects.get_or_create(username="bench-webhooks", defaults={"email": "bench-webhooks@example.com"})
    User.objects.filter(pk=user.pk).update(verified_email=user.email, daily_quota=10**9)
    user.refresh_from_db()
    if args.other_endpoint:
        other, _ = User.objects.get_or_create(username="bench-other", defaults={"email": "bench-other@example.com"})
        if not WebhookEndpoint.objects.filter(user=other).exists():
            endpoint_create(user=other, url="https://93.184.215.14/", events=["email.sent"])
    queued = queued_deliveries(user)
    for n in range(BATCH * RUNS - len(queued)):
        sent_email(user=user, recipients=[f"r{n}-{time.time_ns()}@example.com"])
    queued = queued_deliveries(user)
    now = timezone.now()
    timings: dict[str, list[float]] = {"check on": [], "check replaced by a no-op": []}
    check_only = []
    for run in range(RUNS):
        chunk = queued[run * BATCH : (run + 1) * BATCH]
        batch = [
            ResultMessage(email_id=e, deliveries=(d,), outcome="sent", attempt=1, reason="", status_code=202, at=now)
            for e, d in chunk
        ]
        mode = "check on" if run % 2 == 0 else "check replaced by a no-op"
        results_module.__dict__["results_watch"] = results_watch if run % 2 == 0 else (lambda **kwargs: None)
        started = time.perf_counter()
        results_module.delivery_results_apply(results=batch)
        timings[mode].append((time.perf_counter() - started) * 1000)
        by_email = {e: [d] for e, d in chunk}
        started = time.perf_counter()
        results_watch(deliveries_by_email=by_email)
        check_only.append((time.perf_counter() - started) * 1000)
    for mode, values in timings.items():
        print(f"delivery_results_apply, {mode}: median {statistics.median(values):.1f} ms per {BATCH} results")
    print(f"the check alone: median {statistics.median(check_only):.2f} ms per {BATCH} results")
    print("enabled endpoints:", WebhookEndpoint.objects.filter(enabled=True).count())


if __name__ == "__main__":
    main()
