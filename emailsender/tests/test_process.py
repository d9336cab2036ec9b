"""`python -m emailsender` as a real process: crashes, signals, broker outages, fatal errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest

from emailsender import topology
from emailsender.testing.broker import RABBITMQ_TEST_URL, sender_env
from emailsender.testing.polling import wait_for
from emailsender.testing.tcp_proxy import TcpProxy
from emailsender.tests.support import REPO_ROOT, log_lines, work_message

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def sent_email_ids(results):
    return {r["email_id"] for r in results if r["outcome"] == "sent"}


def test_sigkill_mid_batch_loses_nothing_and_duplicates_only_in_flight_emails(broker, fake, spawn_sender):
    settings = broker.settings(fake, concurrency=4, prefetch=8)
    fake.set_mode(latency_ms=300)
    messages = [work_message() for _ in range(30)]
    for message in messages:
        broker.publish(message)

    first = spawn_sender(settings)
    wait_for(lambda: len(fake.requests) >= 10, timeout=15)
    first.send_signal(signal.SIGKILL)
    first.wait(5)
    # Everything the dead process sent has been read and recorded once its connections are gone.
    wait_for(lambda: fake.open_connections() == 0, timeout=15)
    requested_by_first = {e for r in fake.requests for e in r.email_ids}
    spawn_sender(settings)

    results = broker.collect_results(lambda r: sent_email_ids(r) == {m.email_id for m in messages}, timeout=30)

    counts = fake.delivery_counts()
    assert set(counts) == {d for m in messages for d in m.delivery_ids}, "an email was lost"
    duplicated = {m.email_id for m in messages if counts[m.deliveries[0].id] > 1}
    # Only emails the killed process had started can be sent twice, and at most one prefetch window of them.
    assert duplicated <= requested_by_first
    assert len(duplicated) <= settings.prefetch
    assert max(counts.values()) <= 2
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == 0)
    assert len(results) >= len(messages)


def test_sigterm_finishes_in_flight_calls_and_requeues_the_rest(broker, fake, spawn_sender):
    settings = broker.settings(fake, concurrency=2, prefetch=6, shutdown_seconds=5)
    fake.set_mode(latency_ms=1000)
    messages = [work_message() for _ in range(8)]
    for message in messages:
        broker.publish(message)
    process = spawn_sender(settings)
    wait_for(lambda: len(fake.requests) == 2, timeout=10)

    process.send_signal(signal.SIGTERM)
    assert process.wait(settings.shutdown_seconds + 3) == 0

    # The two 1 s calls finished (nothing was abandoned at the limit) and were recorded.
    assert [line["requeued_in_flight"] for line in log_lines(process) if line.get("msg") == "stopped consuming"] == [0]
    assert len(sent_email_ids(broker.results())) == 2
    assert broker.depth(topology.work_queue(broker.prefix)) == len(messages) - 2
    assert set(fake.delivery_counts().values()) == {1}
    lines = log_lines(process)
    assert any(line.get("msg") == "stopped" for line in lines)
    sent = [line for line in lines if line.get("msg") == "sent"]
    assert len(sent) == 2
    assert all(line["message_id"].startswith("msg-") and line["email_id"] for line in sent)
    assert "SG.test-key" not in process.log_path.read_text()  # the API key is never logged


def test_sigterm_requeues_calls_still_hanging_at_the_limit(broker, fake, spawn_sender):
    settings = broker.settings(fake, concurrency=2, prefetch=4, shutdown_seconds=1, sendgrid_timeout_seconds=30)
    fake.set_mode(status="hang", hang_seconds=60)
    messages = [work_message() for _ in range(3)]
    for message in messages:
        broker.publish(message)
    process = spawn_sender(settings)
    wait_for(lambda: len(fake.requests) == 2, timeout=10)

    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0  # the 60 s hangs were not waited out

    assert broker.results() == []
    wait_for(lambda: broker.depth(topology.work_queue(broker.prefix)) == len(messages))
    stopped = [line for line in log_lines(process) if line.get("msg") == "stopped consuming"]
    assert stopped[0]["requeued_in_flight"] == 2


def test_reconnects_after_the_broker_connection_drops(broker, fake, start_sender):
    target = urlsplit(RABBITMQ_TEST_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    try:
        via_proxy = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
        settings = broker.settings(fake, rabbitmq_url=via_proxy, concurrency=4, prefetch=4)
        fake.set_mode(latency_ms=400)
        messages = [work_message() for _ in range(12)]
        for message in messages:
            broker.publish(message)
        running = start_sender(settings)
        wait_for(lambda: len(fake.requests) >= 4)

        proxy.cut()  # the calls in flight finish during the 1 s reconnect backoff

        broker.collect_results(lambda r: sent_email_ids(r) == {m.email_id for m in messages}, timeout=30)
        assert running.sender.stats["connections"] == 2
        # The redelivered messages that this process had already sent were recorded, not sent again.
        assert set(fake.delivery_counts().values()) == {1}
        assert running.stop() == 0
    finally:
        proxy.close()


def test_wrong_credentials_exit_non_zero(broker):
    target = urlsplit(RABBITMQ_TEST_URL)
    wrong = urlunsplit(target._replace(netloc=f"nobody:wrong@{target.hostname}:{target.port or 5672}"))
    settings = replace(broker.settings(), rabbitmq_url=wrong)
    result = subprocess.run(
        [sys.executable, "-m", "emailsender"],
        cwd=REPO_ROOT,
        env=sender_env(settings),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert b"cannot continue" in result.stderr
    assert b"wrong" not in result.stderr  # the password is masked


def test_help_and_missing_configuration_need_no_broker():
    env = {k: v for k, v in os.environ.items() if k not in ("RABBITMQ_URL", "SENDER_CONCURRENCY")}
    shown = subprocess.run([sys.executable, "-m", "emailsender", "--help"], cwd=REPO_ROOT, env=env, capture_output=True)
    assert shown.returncode == 0
    assert b"SENDER_CONCURRENCY" in shown.stdout

    env["SENDER_CONCURRENCY"] = "many"
    failed = subprocess.run([sys.executable, "-m", "emailsender"], cwd=REPO_ROOT, env=env, capture_output=True)
    assert failed.returncode == 2
    assert b"RABBITMQ_URL is required" in failed.stderr
    assert b"SENDER_CONCURRENCY must be an integer" in failed.stderr
