"""The lean SendGrid sink of the one-recipient drain (emailsender/testing/sendgrid_sink.py), as its
own process, driven by the sender's SendGrid client and by plain HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from emailsender.clients import SendGridClient
from emailsender.handler import build_payload
from emailsender.testing.polling import wait_for
from emailsender.tests.support import REPO_ROOT, work_message


def _answers(port: int) -> bool:
    try:
        return _request(port, "GET", "/_fake/health")[0] == 200
    except OSError:
        return False


def _request(
    port: int, method: str, path: str, body: bytes | None = None, key: str | None = "SG.test"
) -> tuple[int, dict[str, str], dict | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data) if data else None
    finally:
        connection.close()


@pytest.fixture
def sink() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "emailsender.testing.sendgrid_sink", "--port", str(port)], cwd=REPO_ROOT
    )
    try:
        wait_for(lambda: _answers(port), timeout=20, what="the sink answering")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _summary(port: int) -> dict | None:
    return _request(port, "GET", "/_fake/requests?summary=1")[2]


def test_the_senders_client_gets_202s_on_one_connection_and_every_delivery_is_counted(sink):
    client = SendGridClient("SG.test", host=f"http://127.0.0.1:{sink}")
    messages = [work_message(deliveries=2) for _ in range(3)]
    responses = [client.send(build_payload(message)) for message in messages]
    assert [response.status_code for response in responses] == [202, 202, 202]
    assert all(response.header("X-Message-Id") for response in responses)
    assert client._library_client().connections_opened == 1
    assert _summary(sink) == {"total": 3, "deliveries": 6, "repeated": 0}

    client.send(build_payload(messages[0]))  # the same two deliveries again
    assert _summary(sink) == {"total": 4, "deliveries": 6, "repeated": 2}


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        (None, build_payload(work_message()), 401),
        ("", build_payload(work_message()), 401),
        ("SG.test", "not json", 400),
        ("SG.test", {"personalizations": [{"custom_args": {"delivery_id": "1"}}]}, 400),
        ("SG.test", {"personalizations": []}, 400),
    ],
)
def test_refuses_what_sendgrid_would_and_counts_none_of_it(sink, key, body, status):
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    assert _request(sink, "POST", "/v3/mail/send", data, key=key)[0] == status
    assert _summary(sink) == {"total": 0, "deliveries": 0, "repeated": 0}


def test_reset_clears_the_counts_and_mode_accepts_no_latency_but_zero(sink):
    _request(sink, "POST", "/v3/mail/send", json.dumps(build_payload(work_message())).encode())
    assert _summary(sink)["total"] == 1
    assert _request(sink, "POST", "/_fake/reset", b"{}")[0] == 200
    assert _summary(sink) == {"total": 0, "deliveries": 0, "repeated": 0}
    assert _request(sink, "POST", "/_fake/mode", json.dumps({"latency_ms": 0}).encode())[0] == 200
    status, _, answer = _request(sink, "POST", "/_fake/mode", json.dumps({"latency_ms": 50}).encode())
    assert status == 400
    assert "latency_ms" in answer["error"]
    assert _request(sink, "GET", "/v3/templates")[0] == 404
