"""`make run` under sustained sends: the in-process worker records deliveries in the same SQLite
database the requests write to, and no send may be refused because of it.

SQLite allows one writer at a time. Without WAL, IMMEDIATE transactions and a busy timeout, a
send that met the worker's write got "database is locked", which the API answers as
`503 database_unavailable`: about half of 150 sends in a row from one client, and four in five
of 4 x 60 concurrent sends, on a 2-core machine.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from emailsystem.core.tests.browser import outbox_dir

ROOT = Path(__file__).resolve().parents[3]

SEQUENTIAL_SENDS = 150
CLIENTS = 4
SENDS_PER_CLIENT = 60
# How long the worker may take to deliver everything; the test ends as soon as it has.
DELIVERY_DEADLINE_SECONDS = 120


def call(method: str, url: str, *, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (the test's own server)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def admin_token(base_url: str) -> str:
    status, body = call(
        "POST",
        f"{base_url}/api/v1/users/login/",
        body={"username": "admin@example.com", "password": "readme-admin-passphrase-1"},
    )
    assert status == 200, body
    return body["token"]


def send_loop(base_url: str, token: str, client: int, count: int, answers: Counter) -> None:
    for number in range(count):
        status, body = call(
            "POST",
            f"{base_url}/api/v1/emails/sent-email/",
            token=token,
            body={"recipients": [f"c{client}-{number}@example.com"], "subject": "Loop", "body": f"Send {number}."},
        )
        answers[status if status == 202 else (status, body.get("code"))] += 1


def wait_until_all_sent(base_url: str, token: str, expected: int) -> int:
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
    while True:
        status, body = call("GET", f"{base_url}/api/v1/emails/sent-email/?status=sent&page_size=1", token=token)
        assert status == 200, body
        if body["count"] == expected or time.monotonic() > deadline:
            return body["count"]
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sustained_sends_from_one_and_from_four_clients_are_all_accepted_and_delivered(dev_server):
    base_url, workdir = dev_server
    token = admin_token(base_url)

    sequential = Counter()
    send_loop(base_url, token, 0, SEQUENTIAL_SENDS, sequential)

    per_client = [Counter() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=send_loop, args=(base_url, token, client + 1, SENDS_PER_CLIENT, per_client[client]))
        for client in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    concurrent = sum(per_client, Counter())

    answers = {"one client": sequential, f"{CLIENTS} clients": concurrent}
    assert answers == {
        "one client": Counter({202: SEQUENTIAL_SENDS}),
        f"{CLIENTS} clients": Counter({202: CLIENTS * SENDS_PER_CLIENT}),
    }

    total = SEQUENTIAL_SENDS + CLIENTS * SENDS_PER_CLIENT
    assert wait_until_all_sent(base_url, token, total) == total
    assert len(list(outbox_dir(workdir).rglob("*.eml"))) == total


def test_a_sqlite_database_runs_in_wal_mode_with_immediate_transactions_and_a_busy_timeout(tmp_path):
    probe = (
        "import django; django.setup(); from django.db import connection;"
        "cursor = connection.cursor();"
        "print(cursor.execute('PRAGMA journal_mode').fetchone()[0],"
        " cursor.execute('PRAGMA busy_timeout').fetchone()[0], connection.transaction_mode)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["wal", "20000", "IMMEDIATE"]
