"""`make run`'s own commands, read from the Makefile and run in a copy of the project.

The copy has its own `db.sqlite3` (the default DATABASE_URL) and `var/`, as a developer's
checkout would, so nothing here touches this checkout's files. What a developer sees:
- each system check's message at most once, and no webhook-key warning (no webhook can reach
  a server on 127.0.0.1);
- the demo admin printed, with the password kept in var/demo-admin.txt, which still works
  after `db.sqlite3` is deleted;
- one log line per request, a 4xx included.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scripts.devstack import free_port

ROOT = Path(__file__).resolve().parents[3]
START_SECONDS = 60

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def make_run_commands(port: int) -> list[str]:
    """The `run` target's recipe, for bash (the Makefile's SHELL), with this interpreter and a free port."""
    makefile = (ROOT / "Makefile").read_text()
    dev_env_line = re.search(r"^DEV_ENV := (.*)$", makefile, re.MULTILINE)
    recipe_lines = re.search(r"^run: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert dev_env_line and recipe_lines, "the Makefile defines DEV_ENV and a run target"
    dev_env, recipe = dev_env_line.group(1), recipe_lines.group(1)
    return [
        line.strip()
        .replace("$(DEV_ENV)", dev_env)
        .replace("$(BIN)/python", shlex.quote(sys.executable))
        .replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for line in recipe.splitlines()
    ]


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The project's files without local state (database, var/, virtualenv, git)."""
    copy = tmp_path / "checkout"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", "var", "db.sqlite3*", "staticfiles", "__pycache__", "logs"),
    )
    return copy


def environment() -> dict[str, str]:
    """A developer's shell: none of the suite's or a deployment's settings."""
    env = dict(os.environ)
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "DATABASE_CONN_MAX_AGE",
        "DJANGO_HTTPS",
        "RABBITMQ_URL",
        "SENDGRID_API_KEY",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "OUTBOX_DIR",
    ):
        env.pop(name, None)
    return env


def call(method: str, url: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the test's own server)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def make_run(checkout: Path, probe: str) -> tuple[str, str]:
    """Run the recipe until the server answers, log in as the demo admin, send one 400; stop it.

    Returns everything printed and the password the demo admin logged in with.
    """
    port = free_port()
    *setup, serve = make_run_commands(port)
    env = environment()
    printed = ""
    for command in setup:
        done = subprocess.run(
            ["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        printed += done.stdout + done.stderr
        assert done.returncode == 0, printed
    demo_admin = re.search(r"^Demo admin: admin@example\.com / (\S+)$", printed, re.MULTILINE)
    assert demo_admin, printed
    password = demo_admin.group(1)

    log = checkout / f"runserver-{probe}.log"
    with log.open("w") as output:
        # Its own process group: runserver's autoreloader runs the server in a child process.
        server = subprocess.Popen(
            ["bash", "-c", serve],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if call("GET", f"{base}/api/v1/") == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        login = {"username": "admin@example.com", "password": password}
        assert call("POST", f"{base}/api/v1/users/login/", login) == 200
        assert call("POST", f"{base}/api/v1/users/login/?probe={probe}", {}) == 400
        # The access line is written after the answer is sent: wait for it before stopping the server.
        deadline = time.monotonic() + START_SECONDS
        while f"probe={probe}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    return printed + log.read_text(), password


def test_make_run_serves_prints_each_check_once_and_keeps_the_demo_admin_across_a_new_database(checkout):
    printed, password = make_run(checkout, "first")

    assert (checkout / "var" / "demo-admin.txt").read_text().strip() == password
    assert "emails.W001" not in printed
    assert printed.count("System check identified") == 1, printed
    probe_lines = [line for line in printed.splitlines() if "probe=first" in line]
    assert len(probe_lines) == 1, printed
    assert " 400 " in probe_lines[0]

    for path in checkout.glob("db.sqlite3*"):
        path.unlink()
    printed_again, password_again = make_run(checkout, "second")

    assert password_again == password, "docs/getting-started.md: the password stays the same between runs"
    assert "Demo admin: admin@example.com / " + password in printed_again
