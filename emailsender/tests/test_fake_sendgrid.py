"""The fake SendGrid, through its Python API and its HTTP control endpoints."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from emailsender.handler import build_payload
from emailsender.testing.fake_client import call, mail_send
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsender.testing.polling import wait_for
from emailsender.tests.support import REPO_ROOT, work_message


def test_accepts_a_valid_request_with_a_message_id(fake):
    message = work_message(deliveries=3)
    before = time.time()
    status, headers, body = mail_send(fake, build_payload(message))
    after = time.time()
    assert (status, body) == (202, None)
    assert headers["X-Message-Id"]
    [recorded] = fake.requests
    assert recorded.delivery_ids == list(message.delivery_ids)
    assert recorded.email_ids == [message.email_id]
    assert recorded.status == 202
    assert before <= recorded.at <= after


@pytest.mark.parametrize("key", [None, "", "None"])
def test_requires_a_bearer_key(fake, key):
    status, _, body = mail_send(fake, build_payload(work_message()), key=key)
    assert status == 401
    assert body["errors"][0]["message"].startswith("The provided authorization grant is invalid")
    assert fake.summary()["accepted"] == 0


def test_validates_the_shape_like_sendgrid(fake):
    payload = build_payload(work_message())
    broken = {**payload, "personalizations": [{"to": []}], "from": {}, "subject": "", "content": []}
    status, _, body = mail_send(fake, broken)
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["personalizations.0.to", "from.email", "subject", "content"]
    too_many = {**payload, "personalizations": payload["personalizations"] * 1001}
    assert mail_send(fake, too_many)[2]["errors"][0]["field"] == "personalizations"
    numbers = {**payload, "personalizations": [{"to": [{"email": "a@b.c"}], "custom_args": {"delivery_id": 1}}]}
    assert mail_send(fake, numbers)[2]["errors"][0]["field"] == "personalizations.0.custom_args"
    html_first = {**payload, "content": [{"type": "text/html", "value": "<p>"}, {"type": "text/plain", "value": "x"}]}
    assert mail_send(fake, html_first)[0] == 400


def test_forced_status_for_the_next_n_requests_then_back_to_202(fake):
    payload = build_payload(work_message())
    fake.set_mode(status=500, count=2)
    assert [mail_send(fake, payload)[0] for _ in range(3)] == [500, 500, 202]
    fake.set_mode(status=413)
    assert [mail_send(fake, payload)[0] for _ in range(2)] == [413, 413]
    fake.set_mode(status=202)
    assert mail_send(fake, payload)[0] == 202
    assert fake.summary()["by_status"] == {"500": 2, "202": 2, "413": 2}


def test_rate_limit_headers(fake):
    fake.set_mode(status=429, count=1, reset_seconds=3, retry_after=3)
    before = time.time()
    status, headers, body = mail_send(fake, build_payload(work_message()))
    after = time.time()
    assert status == 429
    assert headers["X-RateLimit-Limit"] == "600"
    assert headers["X-RateLimit-Remaining"] == "0"
    # Epoch seconds 3 s after the request arrived, rounded up to a whole second.
    assert math.floor(before + 3) <= int(headers["X-RateLimit-Reset"]) <= math.ceil(after + 3)
    assert headers["Retry-After"] == "3"
    assert body["errors"][0]["message"] == "too many requests"


def test_latency_and_hang(fake):
    payload = build_payload(work_message())
    fake.set_mode(latency_ms=200)
    started = time.monotonic()
    assert mail_send(fake, payload)[0] == 202
    assert time.monotonic() - started >= 0.2

    fake.set_mode(latency_ms=0, status="hang", hang_seconds=2, count=1)
    with pytest.raises(TimeoutError):
        mail_send_with_timeout(fake, payload, 0.3)
    assert fake.requests[-1].status == "hang"
    assert mail_send(fake, payload)[0] == 202


def mail_send_with_timeout(fake, payload, timeout):
    return call(f"{fake.url}/v3/mail/send", payload, {"Authorization": "Bearer k"}, timeout=timeout)


def test_http_control_endpoints(fake):
    payload = build_payload(work_message(deliveries=2))
    status, _, mode = call(f"{fake.url}/_fake/mode", {"status": 503, "count": 1, "latency_ms": 5})
    assert (status, mode["status"], mode["count"], mode["latency_ms"]) == (200, 503, 1, 5)
    assert mail_send(fake, payload)[0] == 503
    assert call(f"{fake.url}/_fake/mode")[2]["status"] == 202
    mail_send(fake, payload)
    mail_send(fake, payload)

    listing = call(f"{fake.url}/_fake/requests")[2]
    assert listing["count"] == 3
    assert [r["status"] for r in listing["requests"]] == [503, 202, 202]
    assert listing["requests"][0]["body"] == payload
    assert call(f"{fake.url}/_fake/requests?since=2")[2]["requests"][0]["index"] == 2

    summary = call(f"{fake.url}/_fake/requests?summary=1")[2]
    ids = [str(p["custom_args"]["delivery_id"]) for p in payload["personalizations"]]
    assert summary["total"] == 3
    assert summary["accepted"] == 2
    assert summary["deliveries"] == {ids[0]: 2, ids[1]: 2}
    assert summary["duplicates"] == summary["deliveries"]
    assert "requests" not in summary

    assert call(f"{fake.url}/_fake/mode", {"status": 418})[0] == 400
    assert call(f"{fake.url}/_fake/reset", {})[0] == 200
    assert call(f"{fake.url}/_fake/requests?summary=1")[2]["total"] == 0
    assert call(f"{fake.url}/_fake/mode")[2]["latency_ms"] == 0


def test_without_bodies_it_still_counts_deliveries():
    with FakeSendGrid(record_bodies=False) as fake:
        message = work_message(deliveries=2)
        mail_send(fake, build_payload(message))
        assert fake.requests[0].body is None
        assert fake.delivery_counts() == {d: 1 for d in message.delivery_ids}


def test_command_line_server(tmp_path):
    with FakeSendGrid() as probe:  # borrow a free port
        port = probe.port
    process = subprocess.Popen(
        [sys.executable, "-m", "emailsender.testing.fake_sendgrid", "--port", str(port), "--latency-ms", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert b"listening on http://127.0.0.1:" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: call(f"{url}/_fake/health")[0] == 200)
        assert call(f"{url}/_fake/mode")[2]["latency_ms"] == 1
    finally:
        process.terminate()
        assert process.wait(5) == 0
