"""The sender's metrics: SendGrid calls timed by their answer, outcomes counted in their series, queue depths."""

import pytest
from prometheus_client import REGISTRY

from emailsender import metrics, topology
from emailsender.clients import Response, TransportError
from emailsender.testing.polling import wait_for
from emailsender.tests.support import work_message


def value(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Answers:
    def __init__(self, *answers):
        self.answers = list(answers)

    def send(self, payload):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_each_sendgrid_call_is_timed_under_its_answer_and_in_flight_returns_to_zero():
    client = metrics.TimedClient(
        Answers(Response(202), Response(429), Response(503), Response(400), TransportError("timeout", "no answer"))
    )
    labels = ("2xx", "429", "5xx", "4xx", "timeout")
    before = {label: value("emailsender_sendgrid_request_seconds_count", result=label) for label in labels}
    for _ in range(4):
        client.send({})
    with pytest.raises(TransportError):
        client.send({})
    for label in labels:
        assert value("emailsender_sendgrid_request_seconds_count", result=label) == before[label] + 1, label
    assert value("emailsender_in_flight") == 0


def test_outcomes_feed_messages_retries_and_dead_letters():
    before = {
        "sent": value("emailsender_messages_total", outcome="sent"),
        "retry": value("emailsender_retries_total", reason="retry"),
        "limited": value("emailsender_retries_total", reason="rate_limited"),
        "poison": value("emailsender_dead_letters_total", reason="poison"),
        "failed": value("emailsender_dead_letters_total", reason="failed"),
    }
    for kind in ("sent", "retry", "rate_limited", "poison", "failed", "failed"):
        metrics.record_outcome(kind)
    assert value("emailsender_messages_total", outcome="sent") == before["sent"] + 1
    assert value("emailsender_retries_total", reason="retry") == before["retry"] + 1
    assert value("emailsender_retries_total", reason="rate_limited") == before["limited"] + 1
    assert value("emailsender_dead_letters_total", reason="poison") == before["poison"] + 1
    assert value("emailsender_dead_letters_total", reason="failed") == before["failed"] + 2


@pytest.mark.rabbitmq
def test_a_missing_queue_costs_the_sender_neither_its_connection_nor_the_other_queues_depths(
    broker, fake, start_sender, monkeypatch
):
    monkeypatch.setattr(metrics, "QUEUE_DEPTH_INTERVAL_SECONDS", 0.05)
    settings = broker.settings(fake)
    running = start_sender(settings)
    dead = topology.dead_queue(broker.prefix)
    broker.channel.queue_delete(dead)
    others = [name for name in topology.all_queues(broker.prefix, settings.retry_delays_ms) if name != dead]
    for name in others:
        metrics.record_queue_depth(name, -1, -1)  # read again only by a depth read after the deletion
    messages = [work_message() for _ in range(3)]
    for message in messages:
        broker.publish(message)

    results = broker.collect_results(lambda r: len(r) >= len(messages))
    wait_for(lambda: all(value("emailsender_queue_consumers", queue=name) >= 0 for name in others))

    assert sorted(r["email_id"] for r in results) == sorted(m.email_id for m in messages)
    assert running.sender.stats["connections"] == 1  # the passive declare did not close the publish channel
    # The work lane's consumer is replaced by one with a larger prefetch once its first message is
    # in hand (intake.py); a quorum queue may count the old one for a moment after the cancel.
    wait_for(lambda: value("emailsender_queue_consumers", queue=topology.work_queue(broker.prefix)) == 1)
