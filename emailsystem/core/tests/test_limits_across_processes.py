"""Limits that must hold across web processes: a real gunicorn with several workers, over HTTP.

The daily quota under parallel sends, and the per-IP throttle of log-in attempts.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token

from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.emails.models import DailySendCount, SentEmail
from emailsystem.users.tests.factories import UserFactory
from scripts.devstack import free_port

ROOT = Path(__file__).resolve().parents[3]
WORKERS = 3
QUOTA = 10  # recipients a day
RECIPIENTS_PER_SEND = 2
SENDS = 24  # 5 fit in the quota; 19 must be refused


def database_url() -> str:
    """The test database this test's transactions commit to, for the gunicorn workers to share."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def served_pids(access_log, path: str) -> set[str]:
    """The worker pids the access log shows serving `path`."""
    return set(re.findall(rf"pid=<?(\d+)>? \w+ \S*{re.escape(path)}", access_log.read_text()))


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    """`web` from the Procfile with WORKERS workers on a free port, for this module's tests.

    Yields (base url, access log). Tests using it also request `transactional_db`, so what
    they create is committed and visible to the workers.
    """
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.test_settings",
        "DATABASE_URL": database_url(),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "THROTTLE_AUTH": "3/min",
    }
    env.pop("RABBITMQ_URL", None)
    env.pop("SENDGRID_API_KEY", None)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "emailsystem.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)),
            # gunicorn.conf.py sends the access log to stdout (JSON lines); the pid is in its message.
            *("--access-logformat", "pid=%(p)s %(m)s %(U)s %(s)s"),
        ],
        cwd=ROOT,
        env=env,
        stdout=access_log.open("w"),
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base)
        yield base, access_log
    finally:
        server.send_signal(signal.SIGINT)  # quick shutdown; nothing in flight by now
        server.wait(timeout=30)


def wait_until_serving(server: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def post_send(base: str, token: str, index: int) -> int:
    body = json.dumps(
        {"recipients": [f"r{index}-{n}@example.com" for n in range(RECIPIENTS_PER_SEND)], "subject": "s", "body": "b"}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{base}/api/v1/emails/sent-email/",
        data=body,
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_the_daily_quota_holds_under_parallel_sends_to_several_gunicorn_workers(gunicorn, transactional_db):
    base, access_log = gunicorn
    user = UserFactory(daily_quota=QUOTA)
    token = Token.objects.create(user=user).key

    statuses = run_concurrently(SENDS, lambda index: post_send(base, token, index))

    accepted = QUOTA // RECIPIENTS_PER_SEND
    assert sorted(statuses) == [202] * accepted + [429] * (SENDS - accepted)
    assert SentEmail.objects.filter(sender=user).count() == accepted
    assert DailySendCount.objects.get(user=user).count == QUOTA
    served_by = served_pids(access_log, "/sent-email/")
    assert len(served_by) >= 2, f"the sends must reach several worker processes (pids: {served_by})"


def post_login(base: str, email: str) -> int:
    body = json.dumps({"username": email, "password": "wrong"}).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{base}/api/v1/users/login/", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.fixture
def throttle_counters_cleared(transactional_db):
    """No login throttle counters before or after this test.

    The throttle's counters live in the database cache table, which a transactional test's
    flush does not empty (it is no model's table). Before: an earlier transactional test that
    logged in from 127.0.0.1 (test_tokens' concurrent logins) would otherwise have used up
    this test's allowance. After: this test's own counters must not reach later tests.
    """
    cache.clear()
    yield
    cache.clear()


def test_the_login_throttle_counts_across_gunicorn_workers(gunicorn, throttle_counters_cleared):
    base, access_log = gunicorn
    user = UserFactory()

    statuses = [post_login(base, user.email) for _ in range(12)]

    assert statuses == [400] * 3 + [429] * 9  # THROTTLE_AUTH=3/min for the server
    served_by = served_pids(access_log, "/login/")
    assert len(served_by) >= 2, f"the attempts must reach several worker processes (pids: {served_by})"
