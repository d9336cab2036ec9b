"""Run the full stack locally: every Procfile process against PostgreSQL, RabbitMQ and the fake SendGrid.

    make run-stack            # http://127.0.0.1:8000, fake SendGrid on http://127.0.0.1:8025

The process list comes from the Procfile, so this runs exactly what a deployment runs. The
release step (migrate) runs first; then web, sender, results and relay run until Ctrl-C,
which stops them all with SIGTERM. Output lines are prefixed with the process name.
"""

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
FAKE_PORT = int(os.environ.get("FAKE_SENDGRID_PORT", "8025"))


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def ensure_database(url: str) -> None:
    """Create the stack's database on the local server if it does not exist yet."""
    import dj_database_url

    config = dj_database_url.parse(url)
    admin = psycopg2.connect(
        dbname="postgres", user=config["USER"], password=config["PASSWORD"], host=config["HOST"], port=config["PORT"]
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
    admin.close()


def stack_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emailsystem_stack")
    env.setdefault("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    env.setdefault("SENDGRID_API_KEY", "SG.fake-local-key")
    env.setdefault("SENDGRID_API_HOST", f"http://127.0.0.1:{FAKE_PORT}")
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
    env.setdefault("PORT", "8000")
    env.setdefault("DJANGO_HTTPS", "0")  # served over plain HTTP on 127.0.0.1
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def pump(name: str, stream) -> None:  # type: ignore[no-untyped-def]
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>7} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def start(name: str, command: str, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    threading.Thread(target=pump, args=(name, process.stdout), daemon=True).start()
    return process


def fake_webhook_key(fake_url: str, timeout: float = 15.0) -> str:
    """The fake SendGrid's test-only Event Webhook key, once the fake answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{fake_url}/_fake/events/public-key", timeout=2) as response:  # noqa: S310
                return json.loads(response.read())["public_key"]
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_once(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def main() -> int:
    env = stack_environment()
    ensure_database(env["DATABASE_URL"])
    entries = procfile()
    run_once(shlex.split(entries.pop("release")), env)
    run_once([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    run_once([sys.executable, "manage.py", "demo_admin"], {**env, "DJANGO_DEBUG": "1"})

    processes = {
        "fake": start("fake", f"{sys.executable} -m emailsender.testing.fake_sendgrid --port {FAKE_PORT}", env)
    }
    # The fake's signed event batches are then accepted by the web's webhook (README, "Delivery events").
    env.setdefault("SENDGRID_WEBHOOK_PUBLIC_KEY", fake_webhook_key(f"http://127.0.0.1:{FAKE_PORT}"))
    for name, command in entries.items():
        processes[name] = start(name, command, env)
    print(
        f"Stack up: API http://127.0.0.1:{env['PORT']}/api/v1/, fake SendGrid {env['SENDGRID_API_HOST']} "
        f"(GET /_fake/requests?summary=1). Ctrl-C stops everything.",
        flush=True,
    )

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.is_set():
        exited = [name for name, process in processes.items() if process.poll() is not None]
        if exited:
            print(f"{', '.join(exited)} exited; stopping the stack", flush=True)
            break
        stopping.wait(0.5)
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 30
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
