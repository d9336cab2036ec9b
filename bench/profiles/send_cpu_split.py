"""CPU per send of gunicorn, PostgreSQL and RabbitMQ under the api_send load.

    python bench/profiles/send_cpu_split.py

Starts the web as the bench does (the Procfile's gunicorn, the bench database), runs 15 s of
`wrk -t2 -c8` POSTing the bench's send, and reads each process's utime + stime from
/proc/<pid>/stat before and after (PostgreSQL backends opened during the load count from 0).
No sender runs, so the sends it published are purged from the bench's queue at the end.
"""

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
    env = environment()
    os.environ.update(env)
    import django

    django.setup()
    from bench import loads, scenarios

    context = scenarios.prepare()
    stack = Stack(env, LOGS)
    web = stack.start("web")
    try:
        wait_for_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        time.sleep(1)
        groups = {
            "gunicorn": [web.popen.pid, *children(web.popen.pid)],
            "postgres": pids_of("postgres:"),
            "rabbitmq": pids_of("beam.smp"),
        }
        before = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        result = loads.wrk(
            f"http://127.0.0.1:{WEB_PORT}/api/v1/emails/sent-email/",
            seconds=SECONDS,
            method="POST",
            body=json.dumps(scenarios.send_payload(context)),
            headers={"Authorization": f"Token {context['token']}", "Content-Type": "application/json"},
        )
        groups["postgres"] = sorted(set(groups["postgres"]) | set(pids_of("postgres:")))
        after = {name: sum(ticks(pid) for pid in pids) for name, pids in groups.items()}
        sends = result.rps * SECONDS
        print(f"{result.rps:.0f} sends/s")
        for name in groups:
            print(f"  {name:9s} {10 * (after[name] - before[name]) / sends:.2f} ms CPU per send")  # ticks are 10 ms
    finally:
        stack.stop_all()
        purge_work_queue()


if __name__ == "__main__":
    main()
