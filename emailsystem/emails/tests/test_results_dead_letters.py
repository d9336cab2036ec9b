"""The results process dead-letters an unreadable result once, even when the database refuses its batch first."""

import threading

import pytest
from django.db import DatabaseError, connections

from emailsender import topology
from emailsender.testing.polling import wait_for
from emailsystem.emails.delivery import results_consumer
from emailsystem.emails.delivery.results_consumer import ResultsConsumer

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
    stop = threading.Event()
    consumer = ResultsConsumer(stop=stop)

    def run() -> None:
        try:
            consumer.run()
        finally:
            connections.close_all()  # this thread's connection, so the test database can be dropped

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(calls) >= 3, what="the batch applied once the database answered")
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()

    # The consumer's channel is closed: anything it had not acked is back on the queue.
    assert broker.depth(topology.results_queue(broker.prefix)) == 0
    assert calls == [0, 0, 0]
    dead = broker.take(topology.dead_queue(broker.prefix))
    assert [body for _properties, body in dead] == [b"not a result"]
    assert "unreadable result" in dead[0][0].headers[topology.DEATH_REASON_HEADER]
