"""A test's own RabbitMQ connection on a topology of its own, and the environment of a sender
process; used by the sender's tests and the web's delivery and pipeline tests."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions

from emailsender import topology
from emailsender.messages import WorkMessage, encode_work
from emailsender.settings import Settings
from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsender.testing.polling import wait_for

RABBITMQ_TEST_URL = os.environ.get("RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672/")


class Broker:
    """The test's own connection to RabbitMQ, on a topology with a unique prefix."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"emailsender-test-{uuid.uuid4().hex[:12]}"
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self._tiers: set[int] = set(topology.DEFAULT_RETRY_DELAYS_MS)

    def settings(self, fake: FakeSendGrid | None = None, **overrides: Any) -> Settings:
        """Settings for a sender on this prefix, talking to `fake`; tests pass short timings."""
        values: dict[str, Any] = {
            "rabbitmq_url": self.url,
            "queue_prefix": self.prefix,
            "concurrency": 4,
            "prefetch": 8,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 5.0,
            "sendgrid_timeout_seconds": 2.0,
            "shutdown_seconds": 5.0,
        }
        if fake is not None:
            values.update(sendgrid_api_key="SG.test-key", sendgrid_api_host=fake.url)
        values.update(overrides)
        settings = Settings(**values)
        self.declare(settings)
        return settings

    def declare(self, settings: Settings) -> None:
        self.declare_tiers(settings.retry_delays_ms)
        topology.declare(self.channel, self.prefix, settings.retry_delays_ms, settings.queue_type)

    def declare_tiers(self, tiers: tuple[int, ...]) -> None:
        """Remember retry tiers declared outside `settings()`, so tear-down deletes their queues."""
        self._tiers |= set(tiers)

    def publish(
        self,
        message: WorkMessage | bytes,
        *,
        attempt: int = 0,
        message_id: str | None = None,
        lane: str = topology.WORK_KEY,
    ) -> str:
        message_id = message_id or f"msg-{uuid.uuid4().hex[:10]}"
        body = message if isinstance(message, bytes) else encode_work(message)
        self.channel.basic_publish(
            exchange=topology.exchange_name(self.prefix),
            routing_key=lane,
            body=body,
            properties=topology.work_properties(message_id, attempt),
            mandatory=True,
        )
        return message_id

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue=queue, passive=True).method.message_count

    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        """Remove and return every message currently in `queue`."""
        taken: list[tuple[pika.BasicProperties, bytes]] = []
        while True:
            method, properties, body = self.channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                return taken
            assert properties is not None and body is not None  # basic_get returns all three or none
            taken.append((properties, body))

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.take(topology.results_queue(self.prefix))]

    def collect_results(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Accumulate results from the results queue until `predicate(all_so_far)` holds."""
        collected: list[dict[str, Any]] = []

        def done() -> bool:
            collected.extend(self.results())
            return predicate(collected)

        wait_for(done, timeout=timeout, interval=0.1, what="the expected results")
        return collected

    def close(self) -> None:
        """Delete this test's queues and exchange, on a fresh connection in case the test's one died."""
        with contextlib.suppress(pika.exceptions.AMQPError):
            self.connection.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.url))
                try:
                    topology.delete(connection.channel(), self.prefix, sorted(self._tiers))
                finally:
                    connection.close()
                return
            except pika.exceptions.AMQPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def sender_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `python -m emailsender` build `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENDGRID_", "SENDER_", "RETRY_", "QUEUE_", "LIVENESS_"))
    }
    env.update(
        RABBITMQ_URL=settings.rabbitmq_url or "",
        QUEUE_PREFIX=settings.queue_prefix,
        SENDER_CONCURRENCY=str(settings.concurrency),
        SENDER_PREFETCH=str(settings.prefetch),
        SENDER_BULK_CONCURRENCY=str(settings.bulk_workers),
        SENDER_BULK_PREFETCH=str(settings.bulk_window),
        SENDER_MAX_INFLIGHT_BYTES=str(settings.max_inflight_bytes),
        SEND_MAX_ATTEMPTS=str(settings.max_attempts),
        RETRY_BASE_SECONDS=str(settings.retry_base_seconds),
        RETRY_MAX_SECONDS=str(settings.retry_max_seconds),
        SENDGRID_TIMEOUT_SECONDS=str(settings.sendgrid_timeout_seconds),
        SENDER_SHUTDOWN_SECONDS=str(settings.shutdown_seconds),
        SENDGRID_API_HOST=settings.sendgrid_api_host,
        LIVENESS_MAX_AGE_SECONDS=str(settings.liveness_max_age_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.liveness_file:
        env["LIVENESS_FILE"] = settings.liveness_file
    if settings.sendgrid_api_key:
        env["SENDGRID_API_KEY"] = settings.sendgrid_api_key
    return env
