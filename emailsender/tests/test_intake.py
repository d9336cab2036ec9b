"""The sender's byte bound (SENDER_MAX_INFLIGHT_BYTES), both lanes, against the real RabbitMQ and the fake SendGrid."""

from __future__ import annotations

import pytest

from emailsender import topology
from emailsender.messages import encode_work
from emailsender.testing.polling import wait_for
from emailsender.tests.support import RunningSender, work_message

pytestmark = pytest.mark.rabbitmq

# About 100 KB per work message: three fit in the bound below, the prefetch (8) would hold eight.
BODY_CHARS = 100_000
MAX_BYTES = 350_000


def test_a_backlog_of_large_messages_is_held_within_the_byte_bound(broker, fake, start_sender):
    settings = broker.settings(fake, concurrency=4, prefetch=8, max_inflight_bytes=MAX_BYTES)
    fake.set_mode(latency_ms=150)  # calls take a while, so what the sender holds piles up
    large = [work_message(text="x" * BODY_CHARS) for _ in range(12)]
    sizes = [len(encode_work(message)) for message in large]
    assert 3 * max(sizes) <= MAX_BYTES < 4 * min(sizes)
    for message in large:
        broker.publish(message)

    running = start_sender(settings)
    intake = running.sender._intakes[topology.WORK_KEY]
    wait_for(lambda: running.sender.stats["sent"] == len(large), timeout=30, what="every large message sent")

    assert intake.peak_bytes <= MAX_BYTES
    assert intake.refused == 0  # the credit followed the sizes: nothing had to go back
    assert set(fake.delivery_counts().values()) == {1}  # each sent once, those given back included
    assert set(fake.delivery_counts()) == {d for m in large for d in m.delivery_ids}
    wait_for(lambda: running.sender._jobs.bytes_in_hand == 0, what="nothing left in hand")

    # A backlog of small messages again: the prefetch climbs back to SENDER_PREFETCH.
    fake.set_mode(latency_ms=50)
    small = [work_message() for _ in range(40)]
    for message in small:
        broker.publish(message)
    wait_for(lambda: running.sender.stats["sent"] == len(large) + len(small), timeout=30, what="small ones sent")
    wait_for(
        lambda: intake.prefetch == settings.prefetch,
        what="prefetch back to SENDER_PREFETCH",
        diagnostics=lambda: f"prefetch {intake.prefetch}, sizes {list(intake.sizes)}",
    )
    assert intake.peak_bytes <= MAX_BYTES
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0


def test_messages_larger_than_the_credit_was_chosen_for_go_back_and_are_sent_once(broker, fake, start_sender):
    settings = broker.settings(fake, concurrency=4, prefetch=8, max_inflight_bytes=MAX_BYTES)
    fake.set_mode(latency_ms=150)
    small = [work_message() for _ in range(8)]
    large = [work_message(text="x" * BODY_CHARS) for _ in range(12)]
    for message in small + large:  # the small ones open the credit to 8, then the large ones arrive
        broker.publish(message)

    running = start_sender(settings)
    intake = running.sender._intakes[topology.WORK_KEY]
    wait_for(lambda: running.sender.stats["sent"] == 20, timeout=30, what="every message sent")

    assert intake.refused >= 1  # a prefetch window of large ones did not fit: some went back
    assert intake.peak_bytes <= MAX_BYTES
    assert set(fake.delivery_counts().values()) == {1}  # each sent once, those given back included
    assert set(fake.delivery_counts()) == {d for m in small + large for d in m.delivery_ids}
    wait_for(lambda: running.sender._jobs.bytes_in_hand == 0, what="nothing left in hand")
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0


def test_a_message_larger_than_the_bound_is_sent_alone(broker, fake, start_sender):
    settings = broker.settings(fake, concurrency=4, prefetch=8, max_inflight_bytes=50_000)
    fake.set_mode(latency_ms=100)
    messages = [work_message(text="y" * BODY_CHARS) for _ in range(3)]
    for message in messages:
        broker.publish(message)

    running = start_sender(settings)
    wait_for(lambda: running.sender.stats["sent"] == len(messages), timeout=30, what="every message sent")

    largest = max(len(encode_work(m)) for m in messages)
    assert running.sender._intakes[topology.WORK_KEY].peak_bytes == largest  # never two at once
    assert set(fake.delivery_counts().values()) == {1}
    assert len(fake.requests) == len(messages)


def sent_behind_a_bulk_backlog(broker, fake, start_sender, settings, backlog: list, send) -> tuple[RunningSender, int]:
    """Publish `backlog` to the bulk lane, start a sender with `settings`, and once its bulk lane
    holds three of them publish `send` to the normal lane; (the running sender, how many calls
    reached the fake before `send`'s)."""
    for message in backlog:
        broker.publish(message, lane=topology.BULK_KEY)
    running = start_sender(settings)
    bulk_size = len(encode_work(backlog[0]))
    held = running.sender._jobs.lane_bytes
    wait_for(lambda: held[topology.BULK_KEY] >= 3 * bulk_size, timeout=15, what="the bulk lane at its share")
    broker.publish(send)

    def arrived() -> list[str]:
        return [request.body["personalizations"][0]["custom_args"]["email_id"] for request in fake.requests]

    wait_for(lambda: str(send.email_id) in arrived(), timeout=10, what="the normal send at the fake")
    return running, arrived().index(str(send.email_id))


def test_a_bulk_backlog_leaves_room_for_a_normal_send(broker, fake, start_sender):
    # Three of four workers and three quarters of the bytes for bulk: 105,000 bytes, three bulk
    # messages. The normal send fits beside three of them, not beside the four the whole bound holds.
    settings = broker.settings(fake, concurrency=4, bulk_concurrency=3, prefetch=8, max_inflight_bytes=140_000)
    assert settings.bulk_max_inflight_bytes == 105_000
    fake.set_mode(latency_ms=300)
    backlog = [work_message(text="b" * 30_000) for _ in range(12)]
    normal_send = work_message(text="n" * 40_000)
    bulk_size, normal_size = len(encode_work(backlog[0])), len(encode_work(normal_send))
    assert 3 * bulk_size <= settings.bulk_max_inflight_bytes < 4 * bulk_size
    assert 3 * bulk_size + normal_size <= settings.max_inflight_bytes < 4 * bulk_size + normal_size
    running, position = sent_behind_a_bulk_backlog(broker, fake, start_sender, settings, backlog, normal_send)
    normal, bulk = running.sender._intakes[topology.WORK_KEY], running.sender._intakes[topology.BULK_KEY]
    # Three bulk calls at a time take 300 ms each: at most the wave in flight when it was
    # published and the next one arrive before it, and most of the backlog is still to come.
    assert position <= 6
    assert normal.refused == 0  # it went into the room the bulk lane leaves, never back to the queue
    wait_for(lambda: len(fake.requests) == len(backlog) + 1, timeout=30, what="the backlog drained")
    assert bulk.peak_bytes <= settings.bulk_max_inflight_bytes
    assert normal.peak_bytes <= settings.max_inflight_bytes  # the normal send counted with the bulk bytes
    assert set(fake.delivery_counts().values()) == {1}  # each sent once, those given back included
    wait_for(lambda: running.sender._jobs.bytes_in_hand == 0, what="nothing left in hand")
    assert broker.depth(topology.bulk_queue(broker.prefix)) == 0
    assert broker.depth(topology.dead_queue(broker.prefix)) == 0


def test_a_normal_send_larger_than_the_room_left_by_bulk_goes_alone_without_waiting_for_it(broker, fake, start_sender):
    settings = broker.settings(fake, concurrency=4, bulk_concurrency=3, prefetch=8, max_inflight_bytes=140_000)
    fake.set_mode(latency_ms=300)
    backlog = [work_message(text="b" * 30_000) for _ in range(12)]
    large_send = work_message(text="n" * 60_000)
    bulk_size, large_size = len(encode_work(backlog[0])), len(encode_work(large_send))
    assert 3 * bulk_size + large_size > settings.max_inflight_bytes  # no room beside the bulk lane's share
    running, position = sent_behind_a_bulk_backlog(broker, fake, start_sender, settings, backlog, large_send)
    normal = running.sender._intakes[topology.WORK_KEY]
    # Taken alone as the normal lane held nothing: it waited for no bulk call to end.
    assert position <= 6
    assert normal.refused == 0
    assert normal.peak_bytes <= settings.bulk_max_inflight_bytes + large_size
    wait_for(lambda: len(fake.requests) == len(backlog) + 1, timeout=30, what="the backlog drained")
    assert set(fake.delivery_counts().values()) == {1}
    wait_for(lambda: running.sender._jobs.bytes_in_hand == 0, what="nothing left in hand")
