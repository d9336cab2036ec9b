"""The development server that the README's curl session and the browser walkthrough run against.

See test_readme.py and test_browser.py; the walkthrough is in docs/getting-started.md.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emailsystem.core.tests.browser import Walkthrough, artifacts_dir, chromium_walk, outbox_dir
from scripts.devstack import free_port

ROOT = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def dev_server_running(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`make run`'s server (DEBUG, SQLite, demo admin) on a free port, in the scratch folder `workdir`,
    with `extra_env` added to its environment."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        "OUTBOX_DIR": str(outbox_dir(workdir)),  # where make run writes them, relative to its folder
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_PASSWORD": "readme-admin-passphrase-1",
    }
    for name in ("RABBITMQ_URL", "SENDGRID_API_KEY"):  # make run's embedded defaults
        env.pop(name, None)
    env.update(extra_env or {})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=120)
    subprocess.run([*manage, "createsuperuser", "--noinput"], env=env, check=True, timeout=60)
    (workdir / "var").mkdir(exist_ok=True)
    (workdir / "var" / "demo-admin.txt").write_text(env["DJANGO_SUPERUSER_PASSWORD"] + "\n")

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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def dev_server_env() -> dict[str, str]:
    """Variables added to the development server's environment; a test module overrides this
    fixture to point the server at, say, the fake SendGrid."""
    return {}


@pytest.fixture
def dev_server(tmp_path, dev_server_env):
    """`make run`'s server in this test's scratch folder: (base URL, folder)."""
    with dev_server_running(tmp_path, dev_server_env) as base_url:
        yield base_url, tmp_path


@pytest.fixture(scope="module")
def module_dev_server(tmp_path_factory):
    """One development server for a module's tests (each test works as users of its own): (base URL, folder)."""
    workdir = tmp_path_factory.mktemp("dev-server")
    with dev_server_running(workdir) as base_url:
        yield base_url, workdir


@pytest.fixture
def walk(dev_server, tmp_path) -> Iterator[Walkthrough]:
    """Headless Chromium on this test's development server (core/tests/browser.py)."""
    with chromium_walk(dev_server[0], artifacts_dir(tmp_path)) as walkthrough:
        yield walkthrough
