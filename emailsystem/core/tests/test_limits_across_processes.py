"""Limits that must hold across web processes: a real gunicorn with several workers, over HTTP.

The daily quota under parallel sends, and the log-in throttles (per IP, per account) under
parallel attempts on every login form.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from emailsystem.core.tests.concurrency import run_concurrently
from emailsystem.emails.models import DailySendCount, SentEmail
from emailsystem.users.tests.factories import DEFAULT_PASSWORD, UserFactory
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
        "THROTTLE_LOGIN_ACCOUNT": "4/hour",
        # As behind one proxy: X-Forwarded-For names the client, so a test can be many clients.
        "NUM_PROXIES": "1",
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
            stderr = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"gunicorn exited: {stderr[-2000:]}")
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


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A successful form log-in answers 302: report it rather than follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)
LOGIN_PATHS = ("/api/v1/users/login/", "/api-auth/login/", "/admin/login/")


def csrf_pair(base: str) -> tuple[str, str]:
    """A CSRF cookie and a form token for it, from the admin's login page (both forms accept them)."""
    with OPENER.open(f"{base}/admin/login/", timeout=30) as answer:
        page = answer.read().decode()
        cookie = re.search(r"csrftoken=([^;]+)", answer.headers["Set-Cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert cookie and token, page
    return cookie[1], token[1]


def post_login(base: str, path: str, name: str, password: str, client_ip: str, csrf: tuple[str, str]) -> int:
    """One log-in attempt on `path` from `client_ip` (the server trusts one proxy's X-Forwarded-For)."""
    headers = {"X-Forwarded-For": client_ip}
    if path.startswith("/api/v1/"):
        body = json.dumps({"username": name, "password": password}).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = urllib.parse.urlencode({"username": name, "password": password, "csrfmiddlewaretoken": csrf[1]}).encode()
        headers |= {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf[0]}"}
    request = urllib.request.Request(f"{base}{path}", data=body, method="POST", headers=headers)  # noqa: S310 (loopback)
    try:
        with OPENER.open(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_the_ip_limit_holds_under_parallel_logins_on_every_form_to_several_gunicorn_workers(gunicorn, transactional_db):
    base, access_log = gunicorn
    csrf = csrf_pair(base)

    statuses = run_concurrently(
        12,
        lambda n: post_login(base, LOGIN_PATHS[n % 3], f"nobody{n}@example.com", "wrong", "198.51.100.1", csrf),
    )

    assert statuses.count(429) == 9, statuses  # THROTTLE_AUTH=3/min for the server
    assert all(status in {400, 200} for status in statuses if status != 429), statuses
    served_by = served_pids(access_log, "/login/")
    assert len(served_by) >= 2, f"the attempts must reach several worker processes (pids: {served_by})"


def test_the_account_limit_holds_under_parallel_failures_from_many_ips_to_several_workers(gunicorn, transactional_db):
    base, access_log = gunicorn
    owner = UserFactory()
    csrf = csrf_pair(base)

    statuses = run_concurrently(
        12, lambda n: post_login(base, LOGIN_PATHS[n % 3], owner.email, "wrong", f"198.51.100.{100 + n}", csrf)
    )
    right_password = post_login(base, "/admin/login/", owner.email, DEFAULT_PASSWORD, "198.51.100.200", csrf)

    assert statuses.count(429) == 8, statuses  # THROTTLE_LOGIN_ACCOUNT=4/hour for the server
    assert all(status in {400, 200} for status in statuses if status != 429), statuses
    assert right_password == 429
    served_by = served_pids(access_log, "/login/")
    assert len(served_by) >= 2, f"the attempts must reach several worker processes (pids: {served_by})"
