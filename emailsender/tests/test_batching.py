"""Outcomes recorded in batches: one wait for the confirms of everything ready, then the acks.

The sender runs against the real RabbitMQ and the fake SendGrid. `BrokerCalls` wraps pika's
channel methods to see, in order, what the sender publishes, has confirmed and acks: publishes
and acks on the asynchronous `pika.channel.Channel`, which every publish and ack reaches
(through BlockingChannel or unflushed.py), and the confirms' wait (a "commit" here) on
confirms.ConfirmedChannel, which returns once the broker has confirmed every publish.
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
from emailsender.publishing import BatchPublisher
from emailsender.routing import Publish
from emailsender.testing.broker import RABBITMQ_TEST_URL
from emailsender.testing.polling import wait_for
from emailsender.testing.tcp_proxy import TcpProxy
from emailsender.tests.support import work_message

pytestmark = pytest.mark.rabbitmq


class BrokerCalls:
    """Publishes on confirm-mode channels, their confirms' waits ("commit") and every ack, in call order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, float]] = []  # ("publish" | "commit" | "ack", time.time())
        self.before_commit: Callable[[int], None] = lambda _number: None  # called with 1 before the first commit
        self._commits_started = 0
        self._confirm_channels: set[int] = set()
        self._lock = threading.Lock()
        calls = self
        original_init, original_wait = ConfirmedChannel.__init__, ConfirmedChannel.wait
        original = {name: getattr(Channel, name) for name in ("basic_publish", "basic_ack")}

        def confirmed(self, channel, *args, **kwargs):
            calls._confirm_channels.add(id(channel._impl))
            return original_init(self, channel, *args, **kwargs)

        def basic_publish(channel, *args, **kwargs):
            if id(channel) in calls._confirm_channels:
                calls._add("publish")
            return original["basic_publish"](channel, *args, **kwargs)

        def wait(self, *args, **kwargs):
            calls._commits_started += 1
            calls.before_commit(calls._commits_started)
            result = original_wait(self, *args, **kwargs)
            calls._add("commit")
            return result

        def basic_ack(channel, *args, **kwargs):
            calls._add("ack")
            return original["basic_ack"](channel, *args, **kwargs)

        for name, wrapper in (("basic_publish", basic_publish), ("basic_ack", basic_ack)):
            monkeypatch.setattr(Channel, name, wrapper)
        monkeypatch.setattr(ConfirmedChannel, "__init__", confirmed)
        monkeypatch.setattr(ConfirmedChannel, "wait", wait)

    def _add(self, kind: str) -> None:
        with self._lock:
            self.events.append((kind, time.time()))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind, _ in self.events]

    def commits(self) -> list[float]:
        with self._lock:
            return [at for kind, at in self.events if kind == "commit"]

    def batches(self) -> list[tuple[int, int]]:
        """(publishes committed, acks sent after that commit and before the next publish) per commit."""
        batches: list[tuple[int, int]] = []
        publishes = 0
        for kind in self.kinds():
            if kind == "publish":
                publishes += 1
            elif kind == "commit":
                batches.append((publishes, 0))
                publishes = 0
            elif batches:
                batches[-1] = (batches[-1][0], batches[-1][1] + 1)
        assert publishes == 0, "publishes left uncommitted"
        return batches


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
        if number == 1:  # a slow broker: the other answers arrive while this commit waits
            fake.wait_until(lambda f: len(f.requests) == 4, timeout=5)
            time.sleep(0.3)

    calls.before_commit = slow_first_commit
    start_sender(settings)

    results = broker.collect_results(lambda r: len(r) >= 4)

    assert sorted(r["email_id"] for r in results) == sorted(m.email_id for m in messages)
    # One publish (the result) and one ack per sent email; every ack follows its batch's commit.
    batches = calls.batches()
    assert sum(published for published, _ in batches) == 4
    assert all(published == acked for published, acked in batches), batches
    assert len(batches) <= 2 and max(published for published, _ in batches) >= 2, batches
    assert calls.kinds()[0] == "publish"  # nothing is acked before the first commit


def test_a_single_outcome_at_low_load_is_committed_at_once(broker, fake, start_sender, calls, monkeypatch):
    # A loop tick twice the wait for the result: a result that arrives within the wait was
    # committed on the worker's wake-up, since the loop cannot have woken up by itself yet.
    monkeypatch.setattr(consumer, "LOOP_TICK_SECONDS", 8.0)
    settings = broker.settings(fake)
    running = start_sender(settings)
    broker.publish(work_message())

    broker.collect_results(lambda r: len(r) >= 1, timeout=consumer.LOOP_TICK_SECONDS / 2)

    assert calls.batches() == [(1, 1)]
    # The counters are updated after the acks, a moment after the result is visible here.
    wait_for(lambda: running.sender.stats["sent"] == 1)


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
            if number == 1:  # every call has been answered; the batch is published but not committed
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

    assert calls.batches() == [(5, 0)]
    assert [body for _, body in broker.take(topology.results_queue(broker.prefix))] == [b"0", b"1", b"2", b"3", b"4"]


def test_publisher_refuses_a_message_it_cannot_route_and_commits_nothing_more(broker, publisher):
    nowhere = Publish("retry", "", "no-such-queue-" + broker.prefix, b"lost")

    with pytest.raises(pika.exceptions.UnroutableError):
        publisher.publish([result_publish(broker, b"kept"), nowhere])

    # The routable part was confirmed in the first wait; only the stray one is refused.
    assert [body for _, body in broker.take(topology.results_queue(broker.prefix))] == [b"kept"]
