"""Liveness of the `results` and `relay` processes: their loops touch LIVENESS_FILE while they pass
or wait out an outage, and stop touching it when blocked in a call (emailsender/liveness.py)."""

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import DatabaseError

from emailsender import liveness, topology
from emailsender.testing.polling import wait_for
from emailsystem.emails.delivery import results_consumer
from emailsystem.emails.delivery.results_consumer import ResultsConsumer
from emailsystem.emails.management.commands import relay
from emailsystem.emails.tests.loops import loop_running
from emailsystem.outbound.worker import WebhooksWorker

# Small enough that a stuck loop shows within seconds; three touch intervals above the healthy age.
MAX_AGE = 3.0
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture
def liveness_file(tmp_path, monkeypatch):
    """LIVENESS_FILE and a small LIVENESS_MAX_AGE_SECONDS for the loops and the check of this test."""
    path = tmp_path / "liveness"
    monkeypatch.setenv("LIVENESS_FILE", str(path))
    monkeypatch.setenv("LIVENESS_MAX_AGE_SECONDS", str(MAX_AGE))
    return path


@pytest.fixture
def run_loop() -> Iterator[Callable[[Callable[[threading.Event], None]], object]]:
    """Run `loop(stop)` on a thread (tests/loops.py); stopped and joined at the end of the test."""
    with contextlib.ExitStack() as running:
        yield lambda loop: running.enter_context(loop_running(loop))


def check() -> int:
    """The exec probe's exit code, as `python -m emailsender.liveness` computes it from the environment."""
    return liveness.main([])


def touched_again(path) -> bool:
    """Backdate the file, then poll this: true once the loop touched it again."""
    return time.time() - os.stat(path).st_mtime < MAX_AGE


def backdate(path) -> None:
    then = time.time() - 3600
    os.utime(path, (then, then))


class Blocking:
    """A stand-in for a call inside a loop that never returns until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: object, **kwargs: object) -> int:
        self.entered.set()
        self.release.wait()
        return 0


def assert_stuck_then_alive(blocking: Blocking) -> None:
    assert blocking.entered.wait(15), "the loop never reached the blocking call"
    try:
        wait_for(lambda: check() == 1, timeout=MAX_AGE + 10, what="the check to fail on the blocked loop")
    finally:
        blocking.release.set()
    wait_for(lambda: check() == 0, what="the check to pass once the loop moves again")


def keeps_touching(path) -> None:
    wait_for(path.exists, what="the loop touched the file")
    for _ in range(2):
        backdate(path)
        wait_for(lambda: touched_again(path), what="the loop touched the file again")
    assert check() == 0


# --- results ---------------------------------------------------------------------------------


def publish_result(broker, body: bytes = b"not a result") -> None:
    """Any body: an unreadable one is dead-lettered and the (empty) batch is still applied."""
    broker.channel.basic_publish(
        exchange=topology.exchange_name(broker.prefix), routing_key=topology.RESULT_KEY, body=body
    )


@pytest.mark.rabbitmq
def test_the_results_loop_touches_the_file_while_idle(broker, liveness_file, run_loop):
    run_loop(lambda stop: ResultsConsumer(stop=stop).run())
    keeps_touching(liveness_file)


@pytest.mark.rabbitmq
def test_results_blocked_on_the_database_stop_touching_and_the_check_fails(
    broker, liveness_file, run_loop, monkeypatch
):
    blocking = Blocking()
    monkeypatch.setattr(results_consumer, "delivery_results_apply", blocking)
    run_loop(lambda stop: ResultsConsumer(stop=stop).run())
    wait_for(lambda: check() == 0, what="a passing check")
    publish_result(broker)
    assert_stuck_then_alive(blocking)


@pytest.mark.rabbitmq
def test_results_with_the_database_down_retry_and_keep_touching(broker, liveness_file, run_loop, monkeypatch):
    calls = []

    def database_down(**kwargs: object) -> int:
        calls.append(kwargs)
        raise DatabaseError("connection refused")

    monkeypatch.setattr(results_consumer, "delivery_results_apply", database_down)
    run_loop(lambda stop: ResultsConsumer(stop=stop).run())
    publish_result(broker)
    wait_for(lambda: calls, what="a database error")
    keeps_touching(liveness_file)
    wait_for(lambda: len(calls) >= 2, what="the requeued batch tried again after the pause")
    assert check() == 0


def test_results_with_the_broker_down_keep_touching_between_attempts(settings, liveness_file, run_loop):
    settings.RABBITMQ_URL = UNREACHABLE
    run_loop(lambda stop: ResultsConsumer(stop=stop).run())
    keeps_touching(liveness_file)


def test_webhooks_with_the_broker_down_keep_touching_between_attempts(settings, liveness_file, run_loop):
    settings.RABBITMQ_URL = UNREACHABLE
    run_loop(lambda stop: WebhooksWorker(stop=stop).run())
    keeps_touching(liveness_file)


# --- relay -----------------------------------------------------------------------------------


def test_the_relay_loop_touches_the_file_while_idle(liveness_file, run_loop, monkeypatch):
    monkeypatch.setattr(relay, "outbox_relay", lambda: 0)
    monkeypatch.setattr(relay, "webhook_messages_relay", lambda: 0)
    run_loop(relay.relay_loop)
    keeps_touching(liveness_file)


def test_the_relay_with_the_database_down_keeps_touching(liveness_file, run_loop, monkeypatch):
    def database_down() -> int:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(relay, "outbox_relay", database_down)
    monkeypatch.setattr(relay, "webhook_messages_relay", database_down)
    run_loop(relay.relay_loop)
    keeps_touching(liveness_file)


def test_a_relay_blocked_in_a_call_stops_touching_and_the_check_fails(liveness_file, run_loop, monkeypatch):
    blocking = Blocking()
    monkeypatch.setattr(relay, "outbox_relay", blocking)
    monkeypatch.setattr(relay, "webhook_messages_relay", lambda: 0)
    run_loop(relay.relay_loop)
    assert_stuck_then_alive(blocking)
