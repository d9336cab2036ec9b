"""CPU of each process while one sender drains 5,000 emails x 10 recipients at 0 ms.

    python bench/profiles/drain_cpu_split.py

Which process limits `pipeline_rcpt_per_s_0ms`: records and publishes the bench's backlog,
starts one sender, and reads utime + stime of the sender, results, the fake SendGrid,
RabbitMQ and PostgreSQL from /proc/<pid>/stat over the drain.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.profiles.send_cpu_split import pids_of, ticks
from bench.run import FAKE_PORT, LOGS, environment
from scripts.devstack import Stack, wait_for_http


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
    try:
        wait_for_http(f"{fake}/_fake/health")
        loads.post_json(f"{fake}/_fake/mode", {"latency_ms": 0}, token="")
        first, last = scenarios.build_backlog(context["user"], emails=5000)
        backlog = Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last)
        total = backlog.count()
        sender = stack.start("sender")
        groups = {
            "sender": [sender.popen.pid],
            "results": [process.popen.pid for process in stack.running["results"]],
            "fake": [process.popen.pid for process in stack.running["fake"]],
            "rabbitmq": pids_of("beam.smp"),
            "postgres": pids_of("postgres:"),
        }
        before = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        started = time.monotonic()
        while backlog.filter(status=DeliveryStatus.SENT).count() < total:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        after = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        print(f"{total / elapsed:.0f} rcpt/s over {elapsed:.1f}s")
        for name in groups:
            print(f"  {name:9s} {(after[name] - before[name]) / 100 / elapsed:.2f} cores")
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
