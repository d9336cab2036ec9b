"""The `webhooks` process: consume the webhooks queue, attempt each message in a thread pool.

pika's connection is used from the consuming thread only: pool threads make the HTTP attempt
and record it in the database, then hand the outcome back through a queue; the consuming
thread publishes any retry to its delay queue (publisher confirms) and only then acks. A
process killed at any point leaves its unacked messages to be delivered again: at least once.

No endpoint can hold up another: each has at most PER_ENDPOINT_RUNNING attempts running; the
rest of its messages wait here. An endpoint is slow when it has its fill running and none has
finished for SLOW_SECONDS: then it keeps at most PER_ENDPOINT_WAITING waiting, and the others
are parked (published to the PARK_DELAY_MS delay queue and acked), so a hanging receiver never
fills the prefetch while one that answers at once may use all of it.
"""

import logging
import queue
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pika
import pika.exceptions
from django.conf import settings
from django.db import close_old_connections
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import brokers, topology
from emailsender.liveness import LivenessFile
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.outbound import topology as webhook_topology
from emailsystem.outbound.attempts import Outcome, message_attempt
from emailsystem.outbound.delivery import TIMEOUT_SECONDS

logger = logging.getLogger(__name__)

# Attempts running at once: seven hanging receivers (10 s each) still leave threads for the rest.
THREADS = 64
# Messages the broker hands over unacked: the pool's threads, their waiting lines, and a margin.
PREFETCH = 512
# Per endpoint: attempts running at once (a busy receiver answering at once gets that many in
# parallel), and messages held here while they run; past both, a message is parked.
PER_ENDPOINT_RUNNING = 8
PER_ENDPOINT_WAITING = 56
# No attempt of an endpoint with its fill running finished for this long: it is slow.
SLOW_SECONDS = 1.0
# How long the consuming thread waits for the broker before looking at finished attempts.
POLL_SECONDS = 0.02
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
# On SIGTERM: attempts still running get this long to finish and be acked (Kubernetes' grace is 30 s).
DRAIN_SECONDS = TIMEOUT_SECONDS + 5
PARK = -1  # a Finished.retry_after_seconds: come back after PARK_DELAY_MS, same attempt


@dataclass(frozen=True)
class Job:
    tag: int
    body: bytes
    message_id: int
    endpoint_id: int
    attempt: int


@dataclass(frozen=True)
class Finished:
    job: Job
    generation: int
    retry_after_seconds: int | None


class WebhooksWorker:
    """Deliver webhook messages until `stop` is set, reconnecting with a capped backoff; touches LIVENESS_FILE."""

    def __init__(self, *, stop: threading.Event | None = None) -> None:
        config = sender_settings()
        assert config.rabbitmq_url
        self.url = config.rabbitmq_url
        self.retry_delays_ms = config.retry_delays_ms
        self.prefix = settings.QUEUE_PREFIX
        self.schedule = tuple(settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE)
        self.stop = stop or threading.Event()
        self.liveness = LivenessFile(config.liveness_file)
        self.pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="webhook")
        self.finished: queue.Queue[Finished] = queue.Queue()
        self.generation = 0
        self.running: dict[int, int] = defaultdict(int)
        self.waiting: dict[int, deque[Job]] = defaultdict(deque)
        # Per endpoint: when an attempt last finished (or, before any, started).
        self.progress: dict[int, float] = {}

    def run(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        try:
            while not self.stop.is_set():
                self.liveness.touch()
                try:
                    self._consume()
                    delay = RECONNECT_MIN_SECONDS
                except (pika.exceptions.AMQPError, OSError) as error:
                    logger.warning("webhooks: broker connection failed (%s); retrying in %.1fs", error, delay)
                    self.liveness.wait(self.stop, delay)
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _consume(self) -> None:
        self.generation += 1
        self.running.clear()
        self.waiting.clear()
        self.progress.clear()
        connection = brokers.connect(self.url, heartbeat=30)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            topology.declare(channel, self.prefix, self.retry_delays_ms)
            webhook_topology.declare_webhooks(channel, self.prefix, self.schedule)
            channel.basic_qos(prefetch_count=PREFETCH)
            name = webhook_topology.webhooks_queue(self.prefix)
            logger.info("webhooks: consuming %s", name)
            for method, _properties, body in channel.consume(name, inactivity_timeout=POLL_SECONDS):
                self.liveness.touch()
                if method is not None and body is not None:
                    assert method.delivery_tag is not None
                    self._received(channel, method.delivery_tag, body)
                self._finish(channel)
                self._park_slow(channel)
                if self.stop.is_set():
                    break
            channel.cancel()
            self._drain(connection, channel)
        finally:
            if connection.is_open:
                connection.close()

    def _received(self, channel: BlockingChannel, tag: int, body: bytes) -> None:
        try:
            message_id, endpoint_id, attempt = webhook_topology.decode(body)
        except (ValueError, KeyError, TypeError) as error:
            logger.error("webhooks: dropping an unreadable queue message (%s): %r", error, body[:200])
            channel.basic_ack(tag)
            return
        job = Job(tag, body, message_id, endpoint_id, max(attempt, 1))
        if self.running[endpoint_id] < PER_ENDPOINT_RUNNING:
            self._start(job)
        elif len(self.waiting[endpoint_id]) < PER_ENDPOINT_WAITING or not self._slow(endpoint_id):
            self.waiting[endpoint_id].append(job)
        else:
            self._delay(channel, job, PARK)

    def _slow(self, endpoint_id: int) -> bool:
        return (
            self.running[endpoint_id] >= PER_ENDPOINT_RUNNING
            and time.monotonic() - self.progress.get(endpoint_id, 0.0) > SLOW_SECONDS
        )

    def _park_slow(self, channel: BlockingChannel) -> None:
        """Park what slow endpoints hold beyond PER_ENDPOINT_WAITING, newest first."""
        for endpoint_id, jobs in self.waiting.items():
            if len(jobs) > PER_ENDPOINT_WAITING and self._slow(endpoint_id):
                while len(jobs) > PER_ENDPOINT_WAITING:
                    self._delay(channel, jobs.pop(), PARK)

    def _start(self, job: Job) -> None:
        if not self.running[job.endpoint_id]:
            self.progress[job.endpoint_id] = time.monotonic()
        self.running[job.endpoint_id] += 1
        self.pool.submit(self._attempt, job, self.generation)

    def _attempt(self, job: Job, generation: int) -> None:
        """In a pool thread: the attempt and its record; any failure to record parks the message."""
        retry: int | None
        try:
            close_old_connections()
            outcome: Outcome = message_attempt(message_id=job.message_id, attempt=job.attempt)
            retry = outcome.retry_after_seconds
        except Exception:  # a pool thread's boundary: the message comes back after PARK_DELAY_MS
            logger.exception("webhooks: attempt %d of message %d failed to run", job.attempt, job.message_id)
            close_old_connections()
            retry = PARK
        self.finished.put(Finished(job, generation, retry))

    def _finish(self, channel: BlockingChannel) -> None:
        """In the consuming thread: publish each finished attempt's retry, ack it, start what waited."""
        while True:
            try:
                done = self.finished.get_nowait()
            except queue.Empty:
                return
            if done.generation != self.generation:
                continue  # its channel is gone; the broker delivers the message again
            job = done.job
            if done.retry_after_seconds is not None:
                self._delay(channel, job, done.retry_after_seconds)
            else:
                channel.basic_ack(job.tag)
            self.running[job.endpoint_id] -= 1
            self.progress[job.endpoint_id] = time.monotonic()
            if self.waiting[job.endpoint_id]:
                self._start(self.waiting[job.endpoint_id].popleft())

    def _delay(self, channel: BlockingChannel, job: Job, retry_after_seconds: int) -> None:
        """Publish the job to a delay queue (the next attempt, or the same one when parked), then ack it."""
        if retry_after_seconds == PARK:
            delay_ms, body = webhook_topology.PARK_DELAY_MS, job.body
        else:
            delay_ms = retry_after_seconds * 1000
            body = webhook_topology.encode(
                message_id=job.message_id, endpoint_id=job.endpoint_id, attempt=job.attempt + 1
            )
        channel.basic_publish(
            exchange="",
            routing_key=webhook_topology.webhook_retry_queue(self.prefix, delay_ms),
            body=body,
            properties=pika.BasicProperties(content_type=topology.CONTENT_TYPE, delivery_mode=topology.PERSISTENT),
            mandatory=True,
        )
        channel.basic_ack(job.tag)

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        """After a stop: let running attempts finish and be acked; return the waiting ones to the queue."""
        for jobs in self.waiting.values():
            for job in jobs:
                channel.basic_nack(job.tag, requeue=True)
        self.waiting.clear()
        deadline = DRAIN_SECONDS / POLL_SECONDS
        while any(self.running.values()) and deadline > 0:
            self.liveness.touch()
            connection.process_data_events(time_limit=POLL_SECONDS)
            self._finish(channel)
            deadline -= 1
