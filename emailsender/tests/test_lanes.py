"""The two lanes of work: the normal lane goes first and keeps workers the bulk lane cannot take,
retries go back to their own lane, and a normal send overtakes a bulk backlog through the real
broker and the fake SendGrid."""

from __future__ import annotations

import pika
import pytest

from emailsender import routing, topology
from emailsender.jobs import Jobs
from emailsender.outcomes import Outcome, OutcomeKind
from emailsender.settings import Settings, SettingsError
from emailsender.testing.polling import wait_for
from emailsender.tests.support import work_message

BULK, NORMAL = topology.BULK_KEY, topology.WORK_KEY
BROKER = {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/"}


def _receive(jobs: Jobs, tag: int, lane: str):
    job = jobs.receive(tag, pika.BasicProperties(headers={}), b"{}", lane)
    jobs.wait(job)
    return job


def test_the_normal_lane_starts_first_and_bulk_never_takes_the_reserved_workers():
    jobs = Jobs()
    jobs.connected()
    for tag in range(1, 6):
        _receive(jobs, tag, BULK)
    started = [jobs.start_next(limit=4, bulk_limit=3) for _ in range(4)]
    # Three bulk jobs start; the fourth worker is kept although two bulk jobs wait.
    assert [job.lane if job else None for job in started] == [BULK, BULK, BULK, None]
    normal = _receive(jobs, 6, NORMAL)
    assert jobs.start_next(limit=4, bulk_limit=3) is normal
    assert jobs.start_next(limit=4, bulk_limit=3) is None  # all four workers busy
    # A normal job received after the waiting bulk jobs starts before them.
    later = _receive(jobs, 7, NORMAL)
    first = started[0]
    assert first is not None
    first.outcome = Outcome(kind=OutcomeKind.SENT, email_id=1, delivery_ids=(1,), attempt=1)
    jobs.finish(first)
    assert jobs.take_finished(connected=True) == ([first], [])
    assert jobs.start_next(limit=4, bulk_limit=3) is later
    assert (jobs.running, jobs.running_bulk) == (4, 2)


def test_taking_pending_returns_both_lanes():
    jobs = Jobs()
    jobs.connected()
    _receive(jobs, 1, BULK), _receive(jobs, 2, NORMAL)
    assert sorted(job.delivery_tag for job in jobs.take_pending()) == [1, 2]
    assert jobs.held == {}


def test_a_retry_goes_to_the_delay_tier_of_the_lane_it_came_from():
    settings = Settings(queue_prefix="p")
    outcome = Outcome(kind=OutcomeKind.RETRY, email_id=1, delivery_ids=(1,), attempt=1, delay_seconds=2.0)
    for lane, queue in ((BULK, "p.bulk.retry.2000"), (NORMAL, "p.retry.2000")):
        [retry, _result] = routing.plan(outcome, body=b"{}", headers={}, message_id="m", settings=settings, lane=lane)
        assert (retry.exchange, retry.routing_key) == ("", queue)


def test_bulk_workers_default_to_three_quarters_and_cannot_exceed_concurrency():
    settings = Settings.from_env(BROKER)
    assert (settings.bulk_workers, settings.bulk_window) == (24, 24)
    assert Settings.from_env({**BROKER, "SENDER_CONCURRENCY": "8"}).bulk_workers == 6
    assert Settings.from_env({**BROKER, "SENDER_CONCURRENCY": "1"}).bulk_workers == 1
    custom = Settings.from_env({**BROKER, "SENDER_BULK_CONCURRENCY": "2", "SENDER_BULK_PREFETCH": "5"})
    assert (custom.bulk_workers, custom.bulk_window) == (2, 5)
    with pytest.raises(SettingsError, match=r"SENDER_BULK_CONCURRENCY \(9\) must be <= SENDER_CONCURRENCY \(8\)"):
        Settings.from_env({**BROKER, "SENDER_CONCURRENCY": "8", "SENDER_BULK_CONCURRENCY": "9"})


@pytest.mark.rabbitmq
def test_a_normal_send_overtakes_a_bulk_backlog(broker, fake, start_sender):
    fake.set_mode(latency_ms=300)
    settings = broker.settings(fake, concurrency=4, bulk_concurrency=3, bulk_prefetch=3)
    backlog = [work_message(deliveries=10) for _ in range(12)]
    for message in backlog:
        broker.publish(message, lane=BULK)
    start_sender(settings)
    wait_for(lambda: len(fake.requests) >= 3, what="the first bulk requests")
    small = work_message(deliveries=1)
    broker.publish(small)

    def arrived() -> list[int]:
        return [request.body["personalizations"][0]["custom_args"]["email_id"] for request in fake.requests]

    wait_for(lambda: str(small.email_id) in arrived(), timeout=10, what="the small send at the fake")
    position = arrived().index(str(small.email_id))
    # Three bulk calls at a time take 300 ms each: at most the wave in flight when it was
    # published and the next one arrive before it, and most of the backlog is still to come.
    assert position <= 6
    wait_for(lambda: len(fake.requests) == 13, timeout=15, what="the backlog drained")
    assert broker.depth(topology.bulk_queue(broker.prefix)) == 0


@pytest.mark.rabbitmq
def test_a_broker_cancel_of_the_bulk_consumer_reconnects_and_both_lanes_go_on(broker, fake, start_sender, caplog):
    running = start_sender(broker.settings(fake))
    # Deleting the bulk queue makes RabbitMQ cancel that consumer alone (as a node failover does).
    with caplog.at_level("WARNING", logger="emailsender"):
        broker.channel.queue_delete(topology.bulk_queue(broker.prefix))
        wait_for(lambda: running.sender.stats["connections"] == 2, timeout=15)
    assert any(r.getMessage() == "consumer cancelled by the broker; reconnecting" for r in caplog.records)

    wait_for(running.sender.consuming.is_set)
    bulk, normal = work_message(deliveries=2), work_message()
    broker.publish(bulk, lane=BULK)
    broker.publish(normal)
    results = broker.collect_results(lambda r: {x["email_id"] for x in r} == {bulk.email_id, normal.email_id})
    assert {x["outcome"] for x in results} == {"sent"}
    assert running.stop() == 0
