"""The `webhooks` process: consume the webhooks queue, attempt each message in a thread pool.

pika's connection and the database are used from the consuming thread only, in batches: the
messages received are loaded in one query (their endpoints from a cache of ENDPOINT_CACHE_SECONDS),
pool threads make only the HTTP calls, and the attempts that finished are recorded in one
transaction; then each retry is published to its delay queue (publisher confirms) and only then
the message is acked. A process killed at any point leaves its unacked messages to be
delivered again: at least once.

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
from django.db import DatabaseError, close_old_connections
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import brokers, topology, unflushed
from emailsender.liveness import LivenessFile
from emailsender.reconnect import Backoff
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.outbound import topology as webhook_topology
from emailsystem.outbound.attempts import (
    Attempted,
    EndpointToCall,
    MessageToSend,
    attempt_make,
    attempts_record,
    endpoints_load,
    messages_load,
    messages_skip,
)
from emailsystem.outbound.delivery import TIMEOUT_SECONDS
from emailsystem.outbound.models import MessageState

logger = logging.getLogger(__name__)

# Attempts running at once: seven hanging receivers (10 s each) still leave threads for the rest.
THREADS = 128
# Messages the broker hands over unacked: the pool's threads, their waiting lines, and a margin.
PREFETCH = 512
# Per endpoint: attempts running at once (a receiver answering at once gets that many in
# parallel), and messages kept waiting while a slow one holds its fill; past both, parked.
PER_ENDPOINT_RUNNING = 32
PER_ENDPOINT_WAITING = 48
# No attempt of an endpoint with its fill running finished for this long: it is slow.
SLOW_SECONDS = 1.0
# Messages received are loaded from the database this many at a time at most.
LOAD_BATCH = 200
# Finished attempts are recorded in one transaction once this many wait, or the first of them
# has waited RECORD_WAIT_SECONDS: a commit per handful of attempts cost more than the attempts.
RECORD_BATCH = 200
RECORD_WAIT_SECONDS = 0.05
# An endpoint read from the database is used this long: a change of URL, secret or state
# reaches a running process within it.
ENDPOINT_CACHE_SECONDS = 2.0
# How long the consuming thread waits for the broker before looking at finished attempts.
POLL_SECONDS = 0.01
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
# On SIGTERM: attempts still running get this long to finish and be acked (Kubernetes' grace is 30 s).
DRAIN_SECONDS = TIMEOUT_SECONDS + 5
PARK = -1  # a retry delay meaning: come back after PARK_DELAY_MS, same attempt


@dataclass(frozen=True)
class Job:
    tag: int
    body: bytes
    message_id: int
    endpoint_id: int
    attempt: int


@dataclass(frozen=True)
class Ready:
    """A job with what its attempt needs."""

    job: Job
    message: MessageToSend
    endpoint: EndpointToCall


class WebhooksWorker:
    """Deliver webhook messages until `stop` is set, reconnecting with a capped backoff; touches LIVENESS_FILE."""

    def __init__(self, *, stop: threading.Event | None = None) -> None:
        config = sender_settings()
        assert config.rabbitmq_url
        self.url = config.rabbitmq_url
        self.retry_delays_ms = config.retry_delays_ms
        self.queue_type = config.queue_type
        self.prefix = settings.QUEUE_PREFIX
        self.schedule = tuple(settings.OUTBOUND_WEBHOOKS_RETRY_SCHEDULE)
        self.stop = stop or threading.Event()
        self.liveness = LivenessFile(config.liveness_file)
        self.pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="webhook")
        self.finished: queue.Queue[tuple[int, Job, Attempted]] = queue.Queue()
        self.generation = 0
        self.incoming: list[Job] = []
        self.running: dict[int, int] = defaultdict(int)
        self.waiting: dict[int, deque[Ready]] = defaultdict(deque)
        self.progress: dict[int, float] = {}  # per endpoint: when an attempt last finished (or, before any, started)
        self.endpoints: dict[int, tuple[float, EndpointToCall]] = {}
        self.done: list[tuple[Job, Attempted]] = []
        self.done_since = 0.0

    def run(self) -> None:
        backoff = Backoff(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        try:
            while not self.stop.is_set():
                self.liveness.touch()
                try:
                    self._consume()
                    backoff.reset()
                except (pika.exceptions.AMQPError, OSError, DatabaseError) as error:
                    delay = backoff.next_delay()
                    logger.warning("webhooks: connection failed (%s); retrying in %.1fs", error, delay)
                    close_old_connections()
                    self.liveness.wait(self.stop, delay)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _consume(self) -> None:
        self.generation += 1
        self.incoming.clear()
        self.done.clear()
        self.running.clear()
        self.waiting.clear()
        self.progress.clear()
        connection = brokers.connect(self.url, heartbeat=30)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            topology.declare(channel, self.prefix, self.retry_delays_ms, self.queue_type)
            webhook_topology.declare_webhooks(channel, self.prefix, self.schedule, self.queue_type)
            channel.basic_qos(prefetch_count=PREFETCH)
            name = webhook_topology.webhooks_queue(self.prefix)
            logger.info("webhooks: consuming %s", name)
            for method, _properties, body in channel.consume(name, inactivity_timeout=POLL_SECONDS):
                self.liveness.touch()
                if method is not None and body is not None:
                    assert method.delivery_tag is not None
                    self._received(channel, method.delivery_tag, body)
                if self.incoming and (method is None or len(self.incoming) >= LOAD_BATCH):
                    self._dispatch(channel)
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
        self.incoming.append(Job(tag, body, message_id, endpoint_id, max(attempt, 1)))

    def _dispatch(self, channel: BlockingChannel) -> None:
        """Load the received jobs' messages (one query) and endpoints (cached), then start, hold or settle each."""
        jobs, self.incoming = self.incoming, []
        messages = messages_load(job.message_id for job in jobs)
        endpoints = self._endpoints({job.endpoint_id for job in jobs})
        skipped = []
        for job in jobs:
            message = messages.get(job.message_id)
            endpoint = endpoints.get(job.endpoint_id)
            if message is None or endpoint is None or message.state == MessageState.DELIVERED:
                channel.basic_ack(job.tag)  # deleted, or delivered already (a repeat): nothing to do
            elif not endpoint.enabled:
                skipped.append(job.message_id)
                channel.basic_ack(job.tag)
            else:
                self._admit(channel, Ready(job, message, endpoint))
        messages_skip(message_ids=skipped)

    def _endpoints(self, ids: set[int]) -> dict[int, EndpointToCall]:
        now = time.monotonic()
        stale = {pk for pk in ids if pk not in self.endpoints or now - self.endpoints[pk][0] > ENDPOINT_CACHE_SECONDS}
        if stale:
            loaded = endpoints_load(stale)
            for pk in stale:
                if pk in loaded:
                    self.endpoints[pk] = (now, loaded[pk])
                else:
                    self.endpoints.pop(pk, None)
        return {pk: self.endpoints[pk][1] for pk in ids if pk in self.endpoints}

    def _admit(self, channel: BlockingChannel, ready: Ready) -> None:
        endpoint_id = ready.job.endpoint_id
        if self.running[endpoint_id] < PER_ENDPOINT_RUNNING:
            self._start(ready)
        elif len(self.waiting[endpoint_id]) < PER_ENDPOINT_WAITING or not self._slow(endpoint_id):
            self.waiting[endpoint_id].append(ready)
        else:
            self._delay(channel, ready.job, PARK)

    def _slow(self, endpoint_id: int) -> bool:
        return (
            self.running[endpoint_id] >= PER_ENDPOINT_RUNNING
            and time.monotonic() - self.progress.get(endpoint_id, 0.0) > SLOW_SECONDS
        )

    def _park_slow(self, channel: BlockingChannel) -> None:
        """Park what slow endpoints hold beyond PER_ENDPOINT_WAITING, newest first."""
        for endpoint_id, waiting in self.waiting.items():
            if len(waiting) > PER_ENDPOINT_WAITING and self._slow(endpoint_id):
                while len(waiting) > PER_ENDPOINT_WAITING:
                    self._delay(channel, waiting.pop().job, PARK)

    def _start(self, ready: Ready) -> None:
        endpoint_id = ready.job.endpoint_id
        if not self.running[endpoint_id]:
            self.progress[endpoint_id] = time.monotonic()
        self.running[endpoint_id] += 1
        self.pool.submit(self._attempt, ready, self.generation)

    def _attempt(self, ready: Ready, generation: int) -> None:
        """In a pool thread: the HTTP attempt only."""
        attempted = attempt_make(message=ready.message, endpoint=ready.endpoint, attempt=ready.job.attempt)
        self.finished.put((generation, ready.job, attempted))

    def _finish(self, channel: BlockingChannel, *, now: bool = False) -> None:
        """Start what waited behind finished attempts; record finished attempts in one transaction
        (RECORD_BATCH, RECORD_WAIT_SECONDS), then publish retries and ack, with one socket write for the acks."""
        while True:
            try:
                generation, job, attempted = self.finished.get_nowait()
            except queue.Empty:
                break
            if generation == self.generation:  # else its channel is gone; the broker delivers it again
                now_at = time.monotonic()
                if not self.done:
                    self.done_since = now_at
                self.done.append((job, attempted))
                # The endpoint's slot is free once its HTTP call is: waiting for the record (up to
                # RECORD_WAIT_SECONDS) while holding it capped a receiver answering at once near
                # PER_ENDPOINT_RUNNING / RECORD_WAIT_SECONDS.
                self.running[job.endpoint_id] -= 1
                self.progress[job.endpoint_id] = now_at
                if self.waiting[job.endpoint_id]:
                    self._start(self.waiting[job.endpoint_id].popleft())
        if not self.done:
            return
        if not now and len(self.done) < RECORD_BATCH and time.monotonic() - self.done_since < RECORD_WAIT_SECONDS:
            return
        done, self.done = self.done, []
        attempts_record(attempts=[attempted for _job, attempted in done])
        for job, attempted in done:
            if attempted.retry_after_seconds is not None:
                self._delay(channel, job, attempted.retry_after_seconds)
            else:
                unflushed.ack(channel, job.tag)
        unflushed.flush(channel)

    def _delay(self, channel: BlockingChannel, job: Job, retry_after_seconds: int) -> None:
        """Publish the job to a delay queue (the next attempt, or the same one when parked), then ack it."""
        if retry_after_seconds == PARK:
            delay_ms, body = webhook_topology.PARK_DELAY_MS, job.body
        else:
            delay_ms = retry_after_seconds * 1000
            next_attempt = job.attempt + 1
            body = webhook_topology.encode(message_id=job.message_id, endpoint_id=job.endpoint_id, attempt=next_attempt)
        channel.basic_publish(
            exchange="",
            routing_key=webhook_topology.webhook_retry_queue(self.prefix, delay_ms),
            body=body,
            properties=pika.BasicProperties(content_type=topology.CONTENT_TYPE, delivery_mode=topology.PERSISTENT),
            mandatory=True,
        )
        channel.basic_ack(job.tag)

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        """After a stop: let running attempts finish and be acked; return the others to the queue."""
        for job in self.incoming:
            channel.basic_nack(job.tag, requeue=True)
        self.incoming.clear()
        for waiting in self.waiting.values():
            for ready in waiting:
                channel.basic_nack(ready.job.tag, requeue=True)
        self.waiting.clear()
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(self.running.values()) and time.monotonic() < deadline:
            self.liveness.touch()
            connection.process_data_events(time_limit=POLL_SECONDS)
            self._finish(channel, now=True)
        self._finish(channel, now=True)  # attempts that finished before the stop and wait for their record
