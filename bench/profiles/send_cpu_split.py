"""CPU per send of gunicorn, PostgreSQL and RabbitMQ under the api_send load.

    python bench/profiles/send_cpu_split.py
    python bench/profiles/send_cpu_split.py --batch    # api_batch's requests: CPU per message

Starts the web as the bench does (the Procfile's gunicorn, the bench database), runs 15 s of
`wrk -t2 -c8` POSTing the bench's send (with `--batch`, `-c4` POSTing api_batch's 100
one-recipient messages), and reads each process's utime + stime from /proc/<pid>/stat before
and after (PostgreSQL: the bench database's backends, those opened during the load counting
from 0). No sender runs, so the sends it published are purged from the bench's queue at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.profiles.send_cpu import purge_work_queue
from bench.run import LOGS, WEB_PORT, environment
from scripts.devstack import Stack, children, wait_for_http

SECONDS = 15


def ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def pids_of(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in found.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", action="store_true", help="POST api_batch's batches instead of single sends")
    args = parser.parse_args()
    env = environment()
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings

    from bench import loads, scenarios
    from bench.scenarios.batch import BATCH_SIZE, CLIENTS, batch_payload

    context = scenarios.prepare(seed=False)
    backends = f"postgres: .* {settings.DATABASES['default']['NAME']} "
    if args.batch:
        path, payload, per_request, connections = "batch/", batch_payload(context), BATCH_SIZE, CLIENTS
    else:
        path, payload, per_request, connections = "sent-email/", scenarios.send_payload(context), 1, 8
    stack = Stack(env, LOGS)
    web = stack.start("web")
    try:
        wait_for_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        time.sleep(1)
        groups = {
            "gunicorn": [web.popen.pid, *children(web.popen.pid)],
            "postgres": pids_of(backends),
            "rabbitmq": pids_of("beam.smp"),
        }
        before = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        result = loads.wrk(
            f"http://127.0.0.1:{WEB_PORT}/api/v1/emails/{path}",
            seconds=SECONDS,
            connections=connections,
            method="POST",
            body=json.dumps(payload),
            headers={"Authorization": f"Token {context['token']}", "Content-Type": "application/json"},
        )
        groups["postgres"] = sorted(set(groups["postgres"]) | set(pids_of(backends)))
        after = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        sends = result.rps * SECONDS * per_request
        unit = "message" if args.batch else "send"
        print(f"{sends / SECONDS:.0f} {unit}s/s ({result.errors} errors)")
        for name in groups:
            print(f"  {name:9s} {10 * (after[name] - before[name]) / sends:.3f} ms CPU per {unit}")  # ticks are 10 ms
    finally:
        stack.stop_all()
        purge_work_queue()


if __name__ == "__main__":
    main()
