"""The consumer against the real RabbitMQ and the fake SendGrid over HTTP."""

from __future__ import annotations

import json
import logging

import pytest

from emailsender import topology
from emailsender.testing.polling import wait_for
from emailsender.tests.support import work_message

pytestmark = pytest.mark.rabbitmq


def test_sends_one_request_with_a_personalization_per_delivery(broker, fake, start_sender):
    settings = broker.settings(fake)
    message = work_message(deliveries=3, reply_to="bob@example.com", html="<p>Hello</p>")
    message_id = broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 1)

    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    body = request.body
    assert [p["to"] for p in body["personalizations"]] == [[{"email": d.to}] for d in message.deliveries]
    assert [p["custom_args"] for p in body["personalizations"]] == [
        {"delivery_id": str(d.id), "email_id": str(message.email_id)} for d in message.deliveries
    ]
    assert body["from"] == {"email": "alice@example.com"}
    assert body["reply_to"] == {"email": "bob@example.com"}
    assert body["content"] == [
        {"type": "text/plain", "value": "Hello there"},
        {"type": "text/html", "value": "<p>Hello</p>"},
    ]
    assert results == [
        {
            "v": 1,
            "email_id": message.email_id,
            "deliveries": list(message.delivery_ids),
            "outcome": "sent",
            "attempt": 1,
            "reason": "",
            "status_code": 202,
            "at": results[0]["at"],
            "provider": "sendgrid",
        }
    ]
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0
    assert message_id


def test_retries_server_errors_through_the_delay_queues(broker, fake, start_sender):
    settings = broker.settings(fake, max_attempts=5)
    fake.set_mode(status=500, count=2)
    message = work_message(deliveries=2)
    broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: any(x["outcome"] == "sent" for x in r))

    assert [(r["outcome"], r["attempt"], r["status_code"]) for r in results] == [
        ("retrying", 1, 500),
        ("retrying", 2, 500),
        ("sent", 3, 202),
    ]
    assert results[0]["reason"] == "SendGrid 500: internal server error"
    assert [r.status for r in fake.requests] == [500, 500, 202]
    # Backoff 0.2 s then 0.8 s nominal, jittered into the upper half: at least 0.5 s in total.
    gaps = [b.at - a.at for a, b in zip(fake.requests, fake.requests[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.39, gaps
    assert fake.delivery_counts() == {d: 1 for d in message.delivery_ids}
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0


def test_gives_up_after_the_last_attempt_and_dead_letters(broker, fake, start_sender):
    settings = broker.settings(fake, max_attempts=3)
    fake.set_mode(status=503)
    message = work_message()
    message_id = broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: any(x["outcome"] == "failed" for x in r))

    assert [(r["outcome"], r["attempt"]) for r in results] == [("retrying", 1), ("retrying", 2), ("failed", 3)]
    assert results[-1]["reason"] == "SendGrid 503: service unavailable (gave up after 3 attempts)"
    dead = broker.take(topology.dead_queue(broker.prefix))
    assert len(dead) == 1
    properties, body = dead[0]
    assert json.loads(body)["email_id"] == message.email_id
    assert properties.message_id == message_id
    assert properties.headers["x-attempt"] == 3
    assert properties.headers["x-death-reason"] == results[-1]["reason"]
    assert "x-death" not in properties.headers
    assert len(fake.requests) == 3


def test_rate_limit_waits_for_the_reset_without_using_an_attempt(broker, fake, start_sender):
    settings = broker.settings(fake, max_attempts=2)
    fake.set_mode(status=429, count=2, reset_seconds=1)
    message = work_message()
    broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 1, timeout=20)

    # Two 429s would have exhausted max_attempts=2 if they counted; the send still succeeds.
    assert [(r["outcome"], r["attempt"]) for r in results] == [("sent", 1)]
    assert [r.status for r in fake.requests] == [429, 429, 202]
    gaps = [b.at - a.at for a, b in zip(fake.requests, fake.requests[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_a_hang_beyond_the_timeout_is_retried(broker, fake, start_sender):
    settings = broker.settings(fake, sendgrid_timeout_seconds=0.5)
    fake.set_mode(status="hang", hang_seconds=5, count=1)
    message = work_message()
    broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: any(x["outcome"] == "sent" for x in r))

    outcomes = [(r["outcome"], r["attempt"], r["status_code"]) for r in results]
    assert outcomes == [("retrying", 1, None), ("sent", 2, 202)]
    assert results[0]["reason"].startswith("SendGrid timeout")
    assert [r.status for r in fake.requests] == ["hang", 202]


def test_a_bad_request_fails_at_once(broker, fake, start_sender):
    settings = broker.settings(fake)
    fake.set_mode(status=400, count=1)
    message = work_message(deliveries=2)
    broker.publish(message)
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 1)

    assert [(r["outcome"], r["attempt"], r["status_code"]) for r in results] == [("failed", 1, 400)]
    assert results[0]["reason"] == "SendGrid 400: Bad Request"
    assert results[0]["deliveries"] == list(message.delivery_ids)
    dead = wait_for(lambda: broker.take(topology.dead_queue(broker.prefix)))
    assert dead[0][0].headers["x-death-reason"] == "SendGrid 400: Bad Request"
    # A later message goes through, and nothing waits in a delay queue: the 400 was not retried.
    later = work_message()
    broker.publish(later)
    after = broker.collect_results(lambda r: any(x["email_id"] == later.email_id for x in r))
    assert [(r["email_id"], r["outcome"]) for r in after] == [(later.email_id, "sent")]
    assert [request.email_ids for request in fake.requests] == [[message.email_id], [later.email_id]]
    assert all(broker.depth(topology.retry_queue(broker.prefix, delay)) == 0 for delay in settings.retry_delays_ms)
    assert broker.depth(topology.work_queue(broker.prefix)) == 0


def test_poison_is_dead_lettered_and_the_consumer_keeps_working(broker, fake, start_sender):
    settings = broker.settings(fake)
    poison_id = broker.publish(b"\xff\xfe not json")
    half_valid = work_message(deliveries=2)
    broker.publish(json.dumps({**half_valid.to_dict(), "subject": 42}).encode())
    good = work_message()
    broker.publish(good)
    running = start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 2)

    assert sorted((r["email_id"], r["outcome"]) for r in results) == sorted(
        [(half_valid.email_id, "failed"), (good.email_id, "sent")]
    )
    failed = next(r for r in results if r["outcome"] == "failed")
    assert failed["reason"] == "invalid message: subject must be a non-empty string"
    assert failed["deliveries"] == list(half_valid.delivery_ids)
    dead = broker.take(topology.dead_queue(broker.prefix))
    reasons = {p.message_id: p.headers["x-death-reason"] for p, _ in dead}
    assert reasons[poison_id].startswith("invalid message: body is not UTF-8 JSON")
    assert len(dead) == 2
    assert [r.email_ids for r in fake.requests] == [[good.email_id]]
    assert running.sender.stats["poison"] == 2
    assert running.thread.is_alive()


def test_competing_consumers_send_each_email_once(broker, fake, start_sender):
    settings = broker.settings(fake, concurrency=2, prefetch=2)
    fake.set_mode(latency_ms=10)
    messages = [work_message(deliveries=2) for _ in range(60)]
    for message in messages:
        broker.publish(message)
    first, second = start_sender(settings), start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= len(messages), timeout=30)

    assert sorted(r["email_id"] for r in results) == sorted(m.email_id for m in messages)
    counts = fake.delivery_counts()
    assert set(counts) == {d for m in messages for d in m.delivery_ids}
    assert set(counts.values()) == {1}
    assert first.sender.stats["sent"] > 0 and second.sender.stats["sent"] > 0
    assert first.sender.stats["sent"] + second.sender.stats["sent"] == len(messages)


def test_stop_finishes_in_flight_calls_and_requeues_the_rest(broker, fake, start_sender, caplog):
    settings = broker.settings(fake, concurrency=2, prefetch=6, shutdown_seconds=5)
    fake.set_mode(latency_ms=700)
    messages = [work_message() for _ in range(6)]
    for message in messages:
        broker.publish(message)
    running = start_sender(settings)
    wait_for(lambda: len(fake.requests) == 2)

    with caplog.at_level(logging.INFO, logger="emailsender"):
        assert running.stop() == 0

    # The two calls in flight finished within the limit: none was abandoned to the broker.
    stopped = [r for r in caplog.records if r.getMessage() == "stopped consuming"]
    assert [r.requeued_in_flight for r in stopped] == [0]

    sent = {r["email_id"] for r in broker.results() if r["outcome"] == "sent"}
    assert len(sent) == 2  # the two calls in flight finished and were recorded
    assert broker.depth(topology.work_queue(broker.prefix)) == len(messages) - 2  # the rest went back
    assert set(fake.delivery_counts().values()) == {1}
