"""The keep-alive transport under the sendgrid library, against the real fake over HTTP."""

import threading

import pytest

from emailsender.clients import SendGridClient, TransportError
from emailsender.testing.fake_sendgrid import FakeSendGrid

PAYLOAD = {
    "personalizations": [{"to": [{"email": "a@example.com"}]}],
    "from": {"email": "b@example.com"},
    "subject": "s",
    "content": [{"type": "text/plain", "value": "v"}],
}


@pytest.fixture
def fake():
    with FakeSendGrid() as server:
        yield server


def opened(client: SendGridClient) -> int:
    return client._library_client().connections_opened


def test_requests_from_one_thread_share_one_connection(fake):
    client = SendGridClient("SG.key", fake.url, timeout=2)

    statuses = [client.send(PAYLOAD).status_code for _ in range(25)]

    assert statuses == [202] * 25
    assert len(fake.requests) == 25
    assert opened(client) == 1
    headers = {name.lower(): value for name, value in fake.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer SG.key"
    assert headers["user-agent"].startswith("sendgrid/")
    assert "close" not in headers.get("connection", "")


def test_an_error_answer_keeps_the_connection(fake):
    client = SendGridClient("SG.key", fake.url, timeout=2)
    fake.set_mode(status=400, count=1)

    refused = client.send(PAYLOAD)
    accepted = client.send(PAYLOAD)

    assert (refused.status_code, accepted.status_code) == (400, 202)
    assert b'"errors"' in refused.body, "the error body reaches the handler, which puts it in the reason"
    assert opened(client) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error():
    with FakeSendGrid() as first:
        port = first.port
        client = SendGridClient("SG.key", first.url, timeout=2)
        assert client.send(PAYLOAD).status_code == 202
    # The server went away (a restart, or its idle timeout) while the connection sat idle.
    with FakeSendGrid(port=port) as second:
        assert client.send(PAYLOAD).status_code == 202
        assert len(second.requests) == 1
    assert opened(client) == 2


def test_a_timeout_is_still_a_timeout_and_the_next_request_gets_a_fresh_connection(fake):
    client = SendGridClient("SG.key", fake.url, timeout=0.5)
    assert client.send(PAYLOAD).status_code == 202
    fake.set_mode(status="hang", count=1, hang_seconds=2)

    with pytest.raises(TransportError) as raised:
        client.send(PAYLOAD)

    assert raised.value.kind == "timeout"
    assert client.send(PAYLOAD).status_code == 202
    assert opened(client) == 2


def test_a_refused_connection_is_a_connection_error():
    with FakeSendGrid() as server:
        url = server.url
    client = SendGridClient("SG.key", url, timeout=1)

    with pytest.raises(TransportError) as raised:
        client.send(PAYLOAD)

    assert raised.value.kind == "connection"


def test_each_thread_has_its_own_connection(fake):
    client = SendGridClient("SG.key", fake.url, timeout=2)
    statuses = []
    per_thread = []

    def work():
        statuses.extend(client.send(PAYLOAD).status_code for _ in range(5))
        per_thread.append(opened(client))  # this thread's own library client and connection

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert statuses == [202] * 20
    assert len(fake.requests) == 20
    assert per_thread == [1, 1, 1, 1]


def test_with_a_proxy_configured_requests_go_through_urllib_which_honours_it(fake, monkeypatch):
    # A "proxy" that is the fake itself: urllib sends the absolute URL to it, and it answers.
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = SendGridClient("SG.key", "http://sendgrid.invalid", timeout=2)

    assert client.send(PAYLOAD).status_code == 202
    assert opened(client) == 0, "the keep-alive connection was not used"
    assert len(fake.requests) == 1
