"""Kept connections: the pool's threads share one set of idle connections per checked target."""

import threading

import pytest

from emailsystem.outbound import delivery, targets
from emailsystem.outbound.delivery import attempt_post
from emailsystem.outbound.tests.receiver import Receiver


@pytest.fixture(autouse=True)
def private_targets(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True


def _post_in_a_thread(url: str, webhook_id: str) -> bool:
    results = []
    thread = threading.Thread(
        target=lambda: results.append(attempt_post(url=url, secrets=[], webhook_id=webhook_id, body="{}").succeeded)
    )
    thread.start()
    thread.join(30)
    return results == [True]


def test_one_thread_reuses_the_connection_another_left_open():
    with Receiver() as receiver:
        assert _post_in_a_thread(receiver.url, "msg_a")
        assert _post_in_a_thread(receiver.url, "msg_b")
        first, second = receiver.wait_for(2)
    assert first.client_port == second.client_port


def test_a_kept_connection_the_receiver_dropped_is_replaced_and_the_attempt_succeeds():
    with Receiver(drop_idle=True) as receiver:
        assert _post_in_a_thread(receiver.url, "msg_a")
        assert _post_in_a_thread(receiver.url, "msg_b")
        first, second = receiver.wait_for(2)
    assert [first.headers["webhook-id"], second.headers["webhook-id"]] == ["msg_a", "msg_b"]
    assert first.client_port != second.client_port


def test_the_host_is_resolved_and_checked_for_a_new_connection_not_for_each_attempt(monkeypatch):
    resolved = []

    def counting_resolve(host: str, port: int) -> str:
        resolved.append(host)
        return targets.target_resolve(host, port)

    monkeypatch.setattr(delivery, "target_resolve", counting_resolve)
    with Receiver() as receiver:
        assert _post_in_a_thread(receiver.url, "msg_a")
        assert _post_in_a_thread(receiver.url, "msg_b")
        receiver.wait_for(2)
    assert resolved == ["127.0.0.1"]
