"""CPU of each process while one sender drains a backlog to the fake SendGrid at 0 ms.

    python bench/profiles/drain_cpu_split.py                              # 5,000 emails x 10 recipients
    python bench/profiles/drain_cpu_split.py --emails 20000 --recipients 1

Which process limits `pipeline_rcpt_per_s_0ms` (or, with one recipient,
`pipeline_msgs_per_s_1rcpt_0ms`): records and publishes the bench's backlog, starts one sender,
and reads utime + stime of the sender, results, the fake SendGrid, RabbitMQ and the PostgreSQL
backends of the bench database from /proc/<pid>/stat over the drain. Prints cores (CPU seconds
per second of the drain) and CPU milliseconds per email of each.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.profiles.send_cpu_split import pids_of, ticks
from bench.run import FAKE_PORT, LOGS, environment
from scripts.devstack import Stack, wait_for_http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=10, choices=(1, 10))
    args = parser.parse_args()
    env = environment()
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from bench import loads, scenarios
    from emailsystem.emails.models import Delivery, DeliveryStatus

    context = scenarios.prepare(seed=False)
    database = settings.DATABASES["default"]["NAME"]
    stack = Stack(env, LOGS)
    fake = f"http://127.0.0.1:{FAKE_PORT}"
    stack.start_fake(FAKE_PORT)
    stack.start("results")
    try:
        wait_for_http(f"{fake}/_fake/health")
        loads.post_json(f"{fake}/_fake/mode", {"latency_ms": 0}, token="")
        first, last = scenarios.build_backlog(context["user"], emails=args.emails, recipients=args.recipients)
        backlog = Delivery.objects.filter(sent_email_id__gte=first, sent_email_id__lte=last)
        total = backlog.count()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (own_backend,) = cursor.fetchone()
        sender = stack.start("sender")

        def groups() -> dict[str, list[int]]:
            return {
                "sender": [sender.popen.pid],
                "results": [process.popen.pid for process in stack.running["results"]],
                "fake": [process.popen.pid for process in stack.running["fake"]],
                "rabbitmq": pids_of("beam.smp"),
                # This database's backends but this script's: other databases on the server are not the drain's.
                "postgres": [pid for pid in pids_of(f"postgres: .* {database} ") if pid != own_backend],
            }

        before = {pid: ticks(pid) for pids in groups().values() for pid in pids}
        started = time.monotonic()
        while backlog.filter(status=DeliveryStatus.SENT).count() < total:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        emails = last - first + 1
        print(f"{total / elapsed:.0f} rcpt/s, {emails / elapsed:.0f} emails/s over {elapsed:.1f}s")
        for name, pids in groups().items():
            seconds = sum(ticks(pid) - before.get(pid, 0) for pid in pids) / 100
            print(f"  {name:9s} {seconds / elapsed:.2f} cores  {seconds * 1000 / emails:.2f} ms/email")
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
