"""The development server that README walkthroughs run against (see test_readme.py and test_browser.py)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dev_server_env() -> dict[str, str]:
    """Variables added to the development server's environment; a test module overrides this
    fixture to point the server at, say, the fake SendGrid."""
    return {}


@pytest.fixture
def dev_server(tmp_path, dev_server_env):
    """`make run`'s server (DEBUG, SQLite, demo admin) on a free port, in a scratch folder."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_PASSWORD": "readme-admin-passphrase-1",
    }
    for name in ("RABBITMQ_URL", "SENDGRID_API_KEY"):  # make run's embedded defaults
        env.pop(name, None)
    env.update(dev_server_env)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=120)
    subprocess.run([*manage, "createsuperuser", "--noinput"], env=env, check=True, timeout=60)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo-admin.txt").write_text(env["DJANGO_SUPERUSER_PASSWORD"] + "\n")

    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the development server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)
