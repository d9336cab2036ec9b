"""The SendGrid client against the fake over HTTP, and the .eml outbox."""

from __future__ import annotations

import email
import email.policy
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from emailsender.clients import EmlFolderClient, SendGridClient, TransportError, client_from_settings
from emailsender.handler import build_payload
from emailsender.settings import Settings
from emailsender.tests.support import work_message


def test_sendgrid_client_maps_answers_to_responses(fake):
    client = SendGridClient("SG.key", fake.url, timeout=2)
    payload = build_payload(work_message(deliveries=2))

    accepted = client.send(payload)
    assert accepted.status_code == 202
    assert accepted.header("X-Message-Id")
    assert fake.requests[0].body == payload
    assert fake.requests[0].headers["Authorization"] == "Bearer SG.key"

    fake.set_mode(status=503, count=1)
    assert client.send(payload).status_code == 503

    fake.set_mode(status=429, count=1, reset_seconds=5)
    limited = client.send(payload)
    assert limited.status_code == 429
    assert limited.header("x-ratelimit-remaining") == "0"

    rejected = client.send({**payload, "content": []})
    assert rejected.status_code == 400
    assert b'"field": "content"' in rejected.body


def test_timeouts_and_refused_connections_are_transport_errors(fake):
    fake.set_mode(status="hang", hang_seconds=5, count=1)
    with pytest.raises(TransportError) as raised:
        SendGridClient("SG.key", fake.url, timeout=0.3).send(build_payload(work_message()))
    assert raised.value.kind == "timeout"

    fake.stop()
    with pytest.raises(TransportError) as raised:
        SendGridClient("SG.key", fake.url, timeout=0.3).send(build_payload(work_message()))
    assert raised.value.kind == "connection"


def test_sendgrid_client_is_safe_across_threads(fake):
    client = SendGridClient("SG.key", fake.url, timeout=5)
    messages = [work_message() for _ in range(200)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda m: client.send(build_payload(m)).status_code, messages))
    assert statuses == [202] * 200
    assert fake.delivery_counts() == {m.deliveries[0].id: 1 for m in messages}
    assert "SG.key" not in repr(client)


def test_outbox_writes_one_eml_per_recipient(tmp_path):
    message = work_message(deliveries=2, reply_to="bob@example.com", html="<p>Hi</p>", subject="Héllo")
    response = EmlFolderClient(tmp_path / "outbox").send(build_payload(message))
    assert response.status_code == 202

    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    assert not list((tmp_path / "outbox").glob(".*"))  # no temporary files left behind
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert sorted(p["To"] for p in parsed) == sorted(d.to for d in message.deliveries)
    first = next(p for p in parsed if p["To"] == message.deliveries[0].to)
    assert first["From"] == "alice@example.com"
    assert first["Reply-To"] == "bob@example.com"
    assert first["Subject"] == "Héllo"
    assert first["X-Delivery-Id"] == str(message.deliveries[0].id)
    assert first["X-Email-Id"] == str(message.email_id)
    assert first.get_body(("plain",)).get_content().strip() == "Hello there"
    assert first.get_body(("html",)).get_content().strip() == "<p>Hi</p>"
    assert f"-e{message.email_id}-d{message.deliveries[0].id}-" in files[0].name + files[1].name


def test_outbox_is_safe_across_threads(tmp_path):
    client = EmlFolderClient(tmp_path)
    threads = [
        threading.Thread(target=client.send, args=(build_payload(work_message(deliveries=5)),)) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list(tmp_path.glob("*.eml"))) == 50


def test_outbox_write_failure_is_a_transport_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TransportError):
        EmlFolderClient(blocker / "outbox").send(build_payload(work_message()))


def test_client_from_settings_chooses_by_api_key(tmp_path):
    assert isinstance(client_from_settings(Settings(outbox_dir=str(tmp_path))), EmlFolderClient)
    assert isinstance(client_from_settings(Settings(sendgrid_api_key="SG.x")), SendGridClient)
