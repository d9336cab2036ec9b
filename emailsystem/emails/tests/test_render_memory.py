"""A send cannot make a web worker grow: the output cap stops a render as soon as it is passed.

The issue's reproduction runs through a real gunicorn worker over HTTP, and the worker's peak
resident memory (VmHWM in /proc/<pid>/status, which only ever grows) is read before and after.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from emailsystem.emails.models import SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.users.tests.factories import UserFactory
from scripts.devstack import free_port

ROOT = Path(__file__).resolve().parents[3]
# What the issue measured: 103 MB -> 2,009 MB for one 215 KB request.
MAX_GROWTH_KB = 50 * 1024
LOOP = "{% for item in items %}- {{ item }} from {{ company }}\n{% endfor %}"

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def only_worker(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) == 1:
            return int(children[0])
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start exactly one worker")


def post(base: str, token: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{base}/api/v1/emails/sent-email/",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


@pytest.fixture
def one_worker(transactional_db, tmp_path) -> Iterator[tuple[str, int]]:
    """`web` from the Procfile with one sync worker on a free port: (base url, the worker's pid)."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.pop("RABBITMQ_URL", None)
    env.pop("SENDGRID_API_KEY", None)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "emailsystem.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz within 60 s"
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310 (loopback)
                    break
            except OSError:
                time.sleep(0.2)
        yield base, only_worker(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def test_a_render_past_the_output_cap_stops_at_once_without_growing_the_worker(one_worker):
    base, worker = one_worker
    user = UserFactory()
    token = Token.objects.create(user=user).key
    template = EmailTemplateFactory(subject="Hi", body=LOOP, html_body="")
    send = {"recipients": ["a@example.com"], "template": template.pk}
    # The same request size, rendered within the cap: the worker has parsed and rendered a
    # 215 KB send before the baseline is taken, so only the attack's extra memory counts.
    status, answer = post(base, token, {**send, "context": {"company": "C" * 200_000, "items": [0]}})
    assert status == 202, answer
    before = peak_rss_kb(worker)

    status, answer = post(base, token, {**send, "context": {"company": "C" * 200_000, "items": [0] * 5000}})

    growth = peak_rss_kb(worker) - before
    assert status == 400
    assert answer["context"] == ["The rendered body is longer than 1000000 characters."]
    assert growth < MAX_GROWTH_KB, f"the worker's peak RSS grew by {growth} kB"
    assert SentEmail.objects.count() == 1
