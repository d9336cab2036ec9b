"""Run the full stack locally: every Procfile process against PostgreSQL, RabbitMQ and the fake SendGrid.

    make run-stack            # http://127.0.0.1:8000, fake SendGrid on http://127.0.0.1:8025

The process list comes from the Procfile, so this runs exactly what a deployment runs. The
release step (migrate) runs first; then web, sender, results, relay and webhooks run until Ctrl-C,
which stops them all with SIGTERM. Output lines are prefixed with the process name.
A variable set in the shell (DATABASE_URL, RABBITMQ_URL, PORT...) wins over the defaults.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import devstack

FAKE_PORT = int(os.environ.get("FAKE_SENDGRID_PORT", "8025"))


def stack_environment() -> dict[str, str]:
    """The local stack's settings on the usual ports, under what the shell already sets."""
    env = devstack.stack_environment(
        database_url="postgres://postgres@127.0.0.1:5432/emailsystem_stack",
        rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/",
        fake_port=FAKE_PORT,
        web_port=8000,
    )
    env.update(os.environ)
    return devstack.with_this_python(env)


def fake_webhook_key(fake_url: str, timeout: float = 15.0) -> str:
    """The fake SendGrid's test-only Event Webhook key, once the fake answers."""
    devstack.wait_for_http(f"{fake_url}/_fake/health", timeout=timeout)
    with urllib.request.urlopen(f"{fake_url}/_fake/events/public-key", timeout=2) as response:  # noqa: S310
        return json.loads(response.read())["public_key"]


def run_once(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, cwd=devstack.ROOT, env=env, check=True)


def main() -> int:
    env = stack_environment()
    devstack.ensure_database(env["DATABASE_URL"])
    entries = devstack.procfile()
    run_once(shlex.split(entries.pop("release")), env)
    run_once([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    run_once([sys.executable, "manage.py", "demo_admin"], {**env, "DJANGO_DEBUG": "1"})

    stack = devstack.Stack(env)
    stack.start_fake(FAKE_PORT)
    # The fake's signed event batches are then accepted by the web's webhook (docs/delivery/events.md).
    try:
        stack.env.setdefault("SENDGRID_WEBHOOK_PUBLIC_KEY", fake_webhook_key(f"http://127.0.0.1:{FAKE_PORT}"))
    except (RuntimeError, urllib.error.URLError):
        stack.stop_all()
        raise
    for name in entries:
        stack.start(name)
    print(
        f"Stack up: API http://127.0.0.1:{env['PORT']}/api/v1/, fake SendGrid {env['SENDGRID_API_HOST']} "
        f"(GET /_fake/requests?summary=1). Ctrl-C stops everything.",
        flush=True,
    )

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.is_set():
        exited = stack.exited()
        if exited:
            print(f"{', '.join(exited)} exited; stopping the stack", flush=True)
            break
        stopping.wait(0.5)
    stack.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
