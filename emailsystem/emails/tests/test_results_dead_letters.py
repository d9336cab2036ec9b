"""The results process dead-letters an unreadable result once, even when the database refuses its batch first."""

import pytest
from django.db import DatabaseError

from emailsender import topology
from emailsender.testing.polling import wait_for
from emailsystem.emails.delivery import results_consumer
from emailsystem.emails.delivery.results_consumer import ResultsConsumer
from emailsystem.emails.tests.loops import loop_running

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


def test_an_unreadable_result_is_dead_lettered_once_after_the_database_comes_back(broker, monkeypatch):
    applied = results_consumer.delivery_results_apply
    calls: list[int] = []

    def down_twice(**kwargs):
        calls.append(len(kwargs["results"]))
        if len(calls) <= 2:
            raise DatabaseError("connection refused")
        return applied(**kwargs)

    monkeypatch.setattr(results_consumer, "delivery_results_apply", down_twice)
    monkeypatch.setattr(results_consumer, "RECONNECT_MIN_SECONDS", 0.05)  # a short pause after each refusal
    broker.channel.basic_publish(
        exchange=topology.exchange_name(broker.prefix), routing_key=topology.RESULT_KEY, body=b"not a result"
    )
    with loop_running(lambda stop: ResultsConsumer(stop=stop).run()):
        wait_for(lambda: len(calls) >= 3, what="the batch applied once the database answered")

    # The consumer's channel is closed: anything it had not acked is back on the queue.
    assert broker.depth(topology.results_queue(broker.prefix)) == 0
    assert calls == [0, 0, 0]
    dead = broker.take(topology.dead_queue(broker.prefix))
    assert [body for _properties, body in dead] == [b"not a result"]
    assert "unreadable result" in dead[0][0].headers[topology.DEATH_REASON_HEADER]
