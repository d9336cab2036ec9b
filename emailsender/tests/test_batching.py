"""Outcomes recorded in batches: every outcome ready is published at once, and acked once the
broker has confirmed its whole batch.

The sender runs against the real RabbitMQ and the fake SendGrid. `BrokerCalls` wraps pika's
channel methods to see, in order, what the sender publishes, has confirmed and acks: publishes
and acks on the asynchronous `pika.channel.Channel`, which every publish and ack reaches
(through BlockingChannel or unflushed.py); the flush of a batch's publishes on
confirms.ConfirmedChannel; and the moment `BatchPublisher.confirmed` first answers yes for a
batch (a "commit" here: every publish of it is stored).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
from pika.channel import Channel

from emailsender import consumer, topology
from emailsender.confirms import ConfirmedChannel
from emailsender.publishing import BatchPublisher, InFlight
from emailsender.routing import Publish
from emailsender.testing.broker import RABBITMQ_TEST_URL
from emailsender.testing.polling import wait_for
from emailsender.testing.tcp_proxy import TcpProxy
from emailsender.tests.support import work_message

pytestmark = pytest.mark.rabbitmq


class BrokerCalls:
    """Publishes on confirm-mode channels, the confirms of their batches ("commit") and every ack, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # ("publish" | "commit" | "ack", how many publishes a commit covers (else 1), time.time())
        self.events: list[tuple[str, int, float]] = []
        # Called with 1 before the first batch's publishes are flushed to the broker, 2 before the second...
        self.before_commit: Callable[[int], None] = lambda _number: None
        # Whether to report a batch as not confirmed yet, whatever the broker said (a slow broker).
        self.hold: Callable[[InFlight], bool] = lambda _batch: False
        self.flushes = 0  # batches flushed to the broker so far
        self._confirm_channels: set[int] = set()
        self._lock = threading.Lock()
        calls = self
        original_init, original_flush = ConfirmedChannel.__init__, ConfirmedChannel.flush
        original_confirmed = BatchPublisher.confirmed
        original = {name: getattr(Channel, name) for name in ("basic_publish", "basic_ack")}

        def confirmed_channel(self, channel, *args, **kwargs):
            calls._confirm_channels.add(id(channel._impl))
            return original_init(self, channel, *args, **kwargs)

        def basic_publish(channel, *args, **kwargs):
            if id(channel) in calls._confirm_channels:
                calls._add("publish")
            return original["basic_publish"](channel, *args, **kwargs)

        def flush(self, *args, **kwargs):
            calls.flushes += 1
            calls.before_commit(calls.flushes)
            return original_flush(self, *args, **kwargs)

        def confirmed(self, batch, *args, **kwargs):
            if calls.hold(batch):
                return False
            done = original_confirmed(self, batch, *args, **kwargs)
            if done:
                calls._add("commit", len(batch.publishes))
            return done

        def basic_ack(channel, *args, **kwargs):
            calls._add("ack")
            return original["basic_ack"](channel, *args, **kwargs)

        for name, wrapper in (("basic_publish", basic_publish), ("basic_ack", basic_ack)):
            monkeypatch.setattr(Channel, name, wrapper)
        monkeypatch.setattr(ConfirmedChannel, "__init__", confirmed_channel)
        monkeypatch.setattr(ConfirmedChannel, "flush", flush)
        monkeypatch.setattr(BatchPublisher, "confirmed", confirmed)

    def _add(self, kind: str, count: int = 1) -> None:
        with self._lock:
            self.events.append((kind, count, time.time()))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind, _, _ in self.events]

    def commits(self) -> list[int]:
        """How many publishes each commit covered, in order."""
        with self._lock:
            return [count for kind, count, _ in self.events if kind == "commit"]

    def acks(self) -> int:
        with self._lock:
            return sum(1 for kind, _, _ in self.events if kind == "ack")

    def acked_before_commit(self) -> bool:
        """Whether an ack ever came before as many publishes were committed: a job acked before its
        outcome was stored (every job here has one publish, its result)."""
        committed = acked = 0
        with self._lock:
            for kind, count, _ in self.events:
                if kind == "commit":
                    committed += count
                elif kind == "ack":
                    acked += 1
                    if acked > committed:
                        return True
        return False


@pytest.fixture
def calls(monkeypatch) -> BrokerCalls:
    return BrokerCalls(monkeypatch)


def test_outcomes_ready_together_share_one_commit_and_are_acked_after_it(broker, fake, start_sender, calls):
    settings = broker.settings(fake, concurrency=4, prefetch=4)
    fake.set_mode(latency_ms=100)
    messages = [work_message() for _ in range(4)]
    for message in messages:
        broker.publish(message)

    def slow_first_commit(number: int) -> None:
        if number == 1:  # a slow loop: the other answers arrive before the first batch is even flushed
            fake.wait_until(lambda f: len(f.requests) == 4, timeout=5)
            time.sleep(0.3)

    calls.before_commit = slow_first_commit
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 4)

    assert sorted(r["email_id"] for r in results) == sorted(m.email_id for m in messages)
    # One publish (the result) and one ack per sent email; every ack follows its batch's commit.
    wait_for(lambda: calls.acks() == 4)
    commits = calls.commits()
    assert sum(commits) == 4
    assert not calls.acked_before_commit(), calls.events
    assert len(commits) <= 2 and max(commits) >= 2, commits
    assert calls.kinds()[0] == "publish"


def test_a_single_outcome_at_low_load_is_committed_at_once(broker, fake, start_sender, calls, monkeypatch):
    # A loop tick twice the wait for the result: a result that arrives within the wait was
    # committed on the worker's wake-up, since the loop cannot have woken up by itself yet.
    monkeypatch.setattr(consumer, "LOOP_TICK_SECONDS", 8.0)
    settings = broker.settings(fake)
    running = start_sender(settings)
    broker.publish(work_message())

    broker.collect_results(lambda r: len(r) >= 1, timeout=consumer.LOOP_TICK_SECONDS / 2)

    assert calls.commits() == [1]
    wait_for(lambda: calls.acks() == 1)
    # The counters are updated after the acks, a moment after the result is visible here.
    wait_for(lambda: running.sender.stats["sent"] == 1)


def test_a_batch_awaiting_its_confirms_does_not_hold_up_the_next(broker, fake, start_sender, calls):
    settings = broker.settings(fake)
    first, second = work_message(), work_message()
    broker.publish(first)
    held: list[InFlight] = []

    def publish_second_once_first_is_written(number: int) -> None:
        if number == 1:
            broker.publish(second)

    def hold_first_until_second_is_written(batch: InFlight) -> bool:
        if not held:
            held.append(batch)
        return batch is held[0] and calls.flushes < 2

    calls.before_commit = publish_second_once_first_is_written
    calls.hold = hold_first_until_second_is_written
    running = start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 2)

    # Had the loop waited for the first batch's confirms, the second would never have been written.
    assert sorted(r["email_id"] for r in results) == sorted([first.email_id, second.email_id])
    wait_for(lambda: calls.acks() == 2)
    assert calls.kinds()[:2] == ["publish", "publish"]
    assert not calls.acked_before_commit(), calls.events
    wait_for(lambda: running.sender.stats["sent"] == 2)


def test_a_batch_never_confirmed_ends_the_connection_and_is_not_sent_again(
    broker, fake, start_sender, calls, monkeypatch
):
    monkeypatch.setattr(consumer, "CONFIRM_TIMEOUT_SECONDS", 0.5)
    settings = broker.settings(fake)
    message = work_message()
    never: list[InFlight] = []

    def hold_the_first_batch_forever(batch: InFlight) -> bool:
        if not never:
            never.append(batch)
        return batch is never[0]

    calls.hold = hold_the_first_batch_forever
    running = start_sender(settings)
    broker.publish(message)

    wait_for(lambda: running.sender.stats["connections"] == 2, timeout=15)
    wait_for(lambda: running.sender.stats["sent"] == 1)
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)

    # The broker had stored the first result (only its confirm was ignored): a result may exist
    # twice, and results are idempotent. The email went to SendGrid once: the redelivery was
    # recorded from the outcome the sender remembered.
    results = broker.collect_results(lambda r: len(r) >= 1)
    assert {(r["email_id"], r["outcome"]) for r in results} == {(message.email_id, "sent")}
    assert len(fake.requests) == 1
    assert running.stop() == 0


@pytest.mark.slow
def test_a_connection_lost_during_the_commit_leaves_the_whole_batch_unacked(broker, fake, start_sender, calls):
    target = urlsplit(RABBITMQ_TEST_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    try:
        via_proxy = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
        settings = broker.settings(fake, rabbitmq_url=via_proxy, concurrency=4, prefetch=4)
        fake.set_mode(latency_ms=100)
        messages = [work_message() for _ in range(4)]
        for message in messages:
            broker.publish(message)

        def cut_during_first_commit(number: int) -> None:
            if number == 1:  # every call has been answered; the batch is written but not flushed or confirmed
                fake.wait_until(lambda f: len(f.requests) == 4, timeout=5)
                time.sleep(0.3)
                proxy.cut()

        calls.before_commit = cut_during_first_commit
        running = start_sender(settings)

        results = broker.collect_results(lambda r: len(r) >= 4, timeout=30)

        # Had anything been acked before its commit, its result would be missing now.
        assert sorted(r["email_id"] for r in results) == sorted(m.email_id for m in messages)
        assert {r["outcome"] for r in results} == {"sent"}
        assert running.sender.stats["connections"] == 2
        # Redelivered to this process, the emails it had sent were recorded without another call.
        assert set(fake.delivery_counts().values()) == {1}
        assert len(fake.requests) == 4
        wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)
        assert running.stop() == 0
    finally:
        proxy.close()


def queue_exists(broker, name: str) -> bool:
    channel = broker.connection.channel()  # a passive declare of a missing queue closes its channel
    try:
        channel.queue_declare(queue=name, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    channel.close()
    return True


def test_a_deleted_results_queue_is_declared_again_and_the_result_kept(broker, fake, start_sender):
    settings = broker.settings(fake)
    running = start_sender(settings)
    broker.channel.queue_delete(topology.results_queue(broker.prefix))
    message = work_message()
    broker.publish(message)

    wait_for(lambda: queue_exists(broker, topology.results_queue(broker.prefix)))
    results = broker.collect_results(lambda r: len(r) >= 1)

    assert [(r["email_id"], r["outcome"]) for r in results] == [(message.email_id, "sent")]
    wait_for(lambda: running.sender.stats["sent"] == 1)  # counted after the ack, just after the result shows
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)


# -- BatchPublisher on its own -----------------------------------------------------------


@pytest.fixture
def publisher(broker):
    settings = broker.settings()
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield BatchPublisher(connection, connection.channel(), settings)
    connection.close()


def result_publish(broker, body: bytes) -> Publish:
    return Publish("result", topology.exchange_name(broker.prefix), topology.RESULT_KEY, body, correlation_id="m")


def test_publisher_commits_a_batch_once(calls, broker, publisher):
    publisher.publish([result_publish(broker, f"{n}".encode()) for n in range(5)])

    assert calls.commits() == [5]
    assert calls.acks() == 0
    assert [body for _, body in broker.take(topology.results_queue(broker.prefix))] == [b"0", b"1", b"2", b"3", b"4"]


def test_publisher_refuses_a_message_it_cannot_route_and_commits_nothing_more(broker, publisher):
    nowhere = Publish("retry", "", "no-such-queue-" + broker.prefix, b"lost")

    with pytest.raises(pika.exceptions.UnroutableError):
        publisher.publish([result_publish(broker, b"kept"), nowhere])

    # The routable part was confirmed in the first wait; only the stray one is refused.
    assert [body for _, body in broker.take(topology.results_queue(broker.prefix))] == [b"kept"]
