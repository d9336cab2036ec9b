"""Fixtures for the sender: a real fake SendGrid over HTTP and a real RabbitMQ with per-test queues."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pika.exceptions
import pytest

from emailsender.consumer import Sender
from emailsender.settings import Settings
from emailsender.testing.broker import RABBITMQ_TEST_URL, Broker, sender_env
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsender.testing.polling import wait_for
from emailsender.testing.smtp_sink import SmtpSink
from emailsender.tests.support import REPO_ROOT, RunningSender


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server in the test process (aiosmtpd) that keeps what it receives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd's own warnings about its event loop and TLS
        with SmtpSink() as server:
            yield server


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


@pytest.fixture
def broker() -> Iterator[Broker]:
    try:
        broker = Broker(RABBITMQ_TEST_URL)
    except pika.exceptions.AMQPConnectionError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {RABBITMQ_TEST_URL}: {exc!r}")
    yield broker
    broker.close()


@pytest.fixture
def start_sender() -> Iterator[Callable[[Settings], RunningSender]]:
    """Run `Sender.run()` on a thread (it has its own connection, as in production)."""
    running: list[RunningSender] = []

    def start(settings: Settings) -> RunningSender:
        sender = Sender(settings)
        holder = RunningSender(sender, threading.Thread(target=lambda: None))

        def target() -> None:
            holder.exit_code = sender.run()

        holder.thread = threading.Thread(target=target, daemon=True, name="sender-under-test")
        holder.thread.start()
        assert sender.consuming.wait(10), "sender did not start consuming"
        running.append(holder)
        return holder

    yield start
    for holder in running:
        if holder.thread.is_alive():
            holder.stop()


@pytest.fixture
def spawn_sender(tmp_path: Path) -> Iterator[Callable[[Settings], subprocess.Popen]]:
    """Start `python -m emailsender` as a real process; its JSON log goes to a file in tmp_path."""
    processes: list[subprocess.Popen] = []

    def spawn(settings: Settings) -> subprocess.Popen:
        log_path = tmp_path / f"sender-{len(processes)}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "emailsender"],
            cwd=REPO_ROOT,
            env=sender_env(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        process.log_path = log_path  # type: ignore[attr-defined]
        processes.append(process)
        wait_for(lambda: b'"consuming"' in log_path.read_bytes() or process.poll() is not None, timeout=15)
        assert process.poll() is None, log_path.read_text()
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(5)
