"""Whole-machine CPU use while one, then two senders drain 5,000 emails x 10 recipients at 50 ms.

    python bench/profiles/cpu_during_drain.py

The evidence behind `pipeline_scale_2_over_1` (bench/profiles/README.md): it starts the fake
SendGrid (50 ms latency) and the results process, records and publishes a backlog as the
benchmark does, and reads /proc/stat before and after each drain.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.run import FAKE_PORT, LOGS, environment
from scripts.devstack import Stack, wait_for_http


def cpu_ticks() -> tuple[int, int]:
    """(all ticks, idle ticks) of the whole machine since boot."""
    values = list(map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:]))
    return sum(values), values[3] + values[4]


def main() -> None:
    env = environment()
    os.environ.update(env)
    import django

    django.setup()
    from bench import loads, scenarios
    from emailsystem.emails.models import Delivery, DeliveryStatus

    context = scenarios.prepare()
    stack = Stack(env, LOGS)
    fake = f"http://127.0.0.1:{FAKE_PORT}"
    stack.start_fake(FAKE_PORT)
    stack.start("results")
    wait_for_http(f"{fake}/_fake/health")
    loads.post_json(f"{fake}/_fake/mode", {"latency_ms": 50}, token="")
    try:
        for senders in (1, 2):
            first, last = scenarios.build_backlog(context["user"], emails=5000)
            backlog = Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last)
            total = backlog.count()
            ticks, idle = cpu_ticks()
            started = time.monotonic()
            for _ in range(senders):
                stack.start("sender")
            while backlog.filter(status=DeliveryStatus.SENT).count() < total:
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            ticks_after, idle_after = cpu_ticks()
            busy = 100 * (1 - (idle_after - idle) / (ticks_after - ticks))
            print(
                f"{senders} sender(s): {total / elapsed:.0f} rcpt/s, machine CPU busy {busy:.0f}% over {elapsed:.1f}s"
            )
            stack.stop("sender")
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
