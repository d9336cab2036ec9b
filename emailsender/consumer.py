"""The sender process: consume work messages, call SendGrid on a thread pool, record outcomes.

Threads: pika is not thread-safe, so every channel operation (consume, publish, ack, nack)
happens on the thread that runs `Sender.run()`. Worker threads only run `handler.handle()`
and put the finished job on a queue, waking the connection thread with
`add_callback_threadsafe`.

Delivery guarantee: a work message is acked only after the publishes its outcome needs
(result, retry copy, dead letter) are confirmed by the broker. Outcomes are recorded in
batches: every job finished when the loop looks is published at once, and acked on a later
pass of the loop once the broker has confirmed the whole batch (publishing.py); meanwhile the
loop goes on receiving and starting work, so several batches may await their confirms. If
the process dies between SendGrid's 202 and that ack, RabbitMQ redelivers the message and the
email is sent again: at most the two lanes' prefetch windows (`prefetch` + `bulk_prefetch`)
per crashed process.

This module is one connection's life. The parts around it live beside it: where each job
stands and its log lines (jobs.py), the reconnect policy and its loop (reconnect.py), the memory of sent
outcomes not yet acked (recently_sent.py), what to publish for an outcome (routing.py), how to
classify SendGrid's answer (handler.py), how a batch reaches the broker (publishing.py),
how the two lanes of work are consumed (lanes.py) and held within one budget in bytes (intake.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions

from emailsender import brokers, metrics, topology, unflushed
from emailsender.clients import Client
from emailsender.handler import handle, unexpected_error
from emailsender.jobs import Job, Jobs, job_fields, job_publishes, log_dropped, log_recorded
from emailsender.lanes import consume_lanes, lane_intakes, lanes_described
from emailsender.liveness import LivenessFile
from emailsender.outcomes import OutcomeKind
from emailsender.providers import providers_from_settings
from emailsender.publishing import BatchPublisher, InFlight
from emailsender.recently_sent import RecentlySent
from emailsender.reconnect import ConsumerCancelled, FatalError, run_reconnecting
from emailsender.settings import Settings, mask_url_password

log = logging.getLogger("emailsender")

# RabbitMQ closes the connection after two missed heartbeats; the loop services them at least
# every LOOP_TICK, so 30 s only has to cover a stuck publish, not the HTTP calls.
HEARTBEAT_SECONDS = 30
# How long the loop blocks when idle: bounds how late it notices SIGTERM or the end of a 429 pause.
LOOP_TICK_SECONDS = 0.2
# If RabbitMQ blocks publishers (memory or disk alarm) this long, reconnect rather than hang.
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60
# If the broker has not confirmed a batch of outcomes this long, reconnect: the jobs are redelivered
# and their outcomes published again (a connection that is alive but never confirms would
# otherwise hold the process's whole prefetch while the loop, and its liveness, go on).
CONFIRM_TIMEOUT_SECONDS = 30


class ConfirmsOverdue(pika.exceptions.AMQPError):
    """The broker has not confirmed a batch of outcomes within CONFIRM_TIMEOUT_SECONDS."""


class Sender:
    """One sender process: a consuming connection plus a pool of HTTP worker threads."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        if not settings.rabbitmq_url:
            raise FatalError("RABBITMQ_URL is not set")
        self.settings = settings
        self.client = client if client is not None else providers_from_settings(settings)
        self._timed_client = metrics.TimedClient(self.client)
        self.stats: Counter[str] = Counter()
        self.consuming = threading.Event()  # set while a connection is consuming; for tests and probes
        self._stop_requested = False
        self._pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send")
        self._jobs = Jobs()
        self._intakes = lane_intakes(settings, self._jobs)  # normal lane first
        self._paused_until = 0.0
        self._connection: pika.BlockingConnection | None = None
        self._consumed_since_connect = False
        self._cancelled_by_broker = False
        self._recently_sent = RecentlySent()
        # Jobs whose outcomes are published and await the broker's confirms, oldest first.
        self._unconfirmed: deque[tuple[list[Job], InFlight]] = deque()
        self._liveness = LivenessFile(settings.liveness_file)

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to shut down cleanly. Only sets a flag, so it is safe in a signal handler."""
        self._stop_requested = True

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: self.stop())

    def close(self) -> None:
        """Release the worker pool without waiting for calls still hanging in it."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Consume until `stop()`; reconnect on broker failures (reconnect.run_reconnecting). Returns
        the process exit code: 0 after a clean stop; 2 for errors no reconnect can fix
        (credentials, permissions, conflicting queue arguments); 1 for a bug, after logging it."""
        self._liveness.touch()
        try:
            code = run_reconnecting(self)
        finally:
            self.consuming.clear()
        if code == 0:
            log.info("stopped", extra={"stats": dict(self.stats)})
        return code

    # -- what the reconnect policy drives (reconnect.Reconnectable) --------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def take_consumed(self) -> bool:
        """Whether the last connection got as far as consuming; asking clears it."""
        consumed, self._consumed_since_connect = self._consumed_since_connect, False
        return consumed

    def wait(self, seconds: float) -> None:
        """Wait before reconnecting, still touching the liveness file and settling finished jobs."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(min(LOOP_TICK_SECONDS, max(deadline - time.monotonic(), 0)))
            self._liveness.touch()  # waiting to reconnect is retrying, not stuck
            self._drain(None, None)  # no connection: every finished job is discarded (and remembered if sent)

    def lost_connection(self, error: BaseException) -> None:
        self.consuming.clear()
        log.warning(
            "broker connection lost; unacked messages will be redelivered",
            extra={"error": repr(error), "held": len(self._jobs.held)},
        )
        for jobs, _batch in self._unconfirmed:  # maybe stored, maybe not: redeliveries must not send again
            for job in jobs:
                self._recently_sent.remember(job.outcome)
                self._jobs.release(job)
        self._unconfirmed.clear()
        self._jobs.disconnected()
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self._connection.close()
        self._connection = None

    def _connect(self) -> pika.BlockingConnection:
        assert self.settings.rabbitmq_url
        log.info("connecting", extra={"broker": mask_url_password(self.settings.rabbitmq_url)})
        return brokers.connect(
            self.settings.rabbitmq_url,
            heartbeat=HEARTBEAT_SECONDS,
            blocked_connection_timeout=BLOCKED_CONNECTION_TIMEOUT_SECONDS,
            client_properties={"connection_name": f"emailsender@{socket.gethostname()}:{os.getpid()}"},
        )

    def serve(self) -> None:
        """One connection's life: declare, consume, and on stop drain and close. Raises what
        ends the connection otherwise (reconnect.RECOVERABLE, or a FatalError's cause)."""
        connection = self._connect()
        self._connection = connection
        self._jobs.connected()
        queue_depths = metrics.QueueDepthReader(
            topology.all_queues(self.settings.queue_prefix, self.settings.retry_delays_ms)
        )
        consume_channel = connection.channel()
        publish_channel = connection.channel()
        prefix = self.settings.queue_prefix
        topology.declare(publish_channel, prefix, self.settings.retry_delays_ms, self.settings.queue_type)
        publisher = BatchPublisher(connection, publish_channel, self.settings)
        self._drain(None, None)  # remember what finished while disconnected before redeliveries arrive
        self._cancelled_by_broker = False
        consume_channel.add_on_cancel_callback(self._on_cancelled)
        consume_lanes(consume_channel, self.settings, self._intakes, self._on_message)
        self._consumed_since_connect = True
        self.stats["connections"] += 1
        self.consuming.set()
        log.info("consuming", extra={**lanes_described(self.settings), "client": repr(self.client)})
        while not self._stop_requested:
            connection.process_data_events(time_limit=LOOP_TICK_SECONDS)
            self._liveness.touch()
            self._drain(publisher, consume_channel)
            if self._cancelled_by_broker:
                # Without a consumer the loop would idle with no error: start over on a new connection.
                raise ConsumerCancelled("the broker cancelled a consumer of the work queues")
            for intake in self._intakes.values():
                intake.adjust()
            self._start_pending()
            metrics.HELD.set(len(self._jobs.held))
            metrics.HELD_BYTES.set(self._jobs.bytes_in_hand)
            queue_depths.read_when_due(connection)
        self._shutdown(connection, consume_channel, publisher)

    def _on_cancelled(self, _method_frame: Any) -> None:
        log.warning("consumer cancelled by the broker; reconnecting", extra={"held": len(self._jobs.held)})
        self._cancelled_by_broker = True

    # -- receiving and working ------------------------------------------------------------

    def _on_message(self, lane: str, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        if not self._intakes[lane].admit(len(body)):  # over the byte bound: back to the queue, unsent
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            return
        job = self._jobs.receive(method.delivery_tag, properties, body, lane, consumer_tag=method.consumer_tag)
        remembered = self._recently_sent.get_for_work(body) if method.redelivered else None
        if remembered is not None:
            log.info("redelivered message was already sent; recording it", extra=job_fields(job))
            self._jobs.finish_now(job, remembered)
            return
        self._jobs.wait(job)

    def _start_pending(self) -> None:
        if time.monotonic() < self._paused_until:
            return
        limits = {"limit": self.settings.concurrency, "bulk_limit": self.settings.bulk_workers}
        while (job := self._jobs.start_next(**limits)) is not None:
            self._pool.submit(self._work, job, self._connection)

    def _work(self, job: Job, connection: pika.BlockingConnection | None) -> None:
        """Runs on a worker thread: no pika calls here except the thread-safe wake-up."""
        try:
            job.outcome = handle(job.body, job.attempt, self._timed_client, self.settings)
        except Exception as exc:  # a bug in a client must not kill the worker or lose the message
            log.exception("unexpected error while sending", extra=job_fields(job))
            job.outcome = unexpected_error(job.body, job.attempt, self.settings, exc)
        if self._jobs.finish(job) and connection is not None:
            # Best effort (the connection may be closing); the loop polls the queue every tick anyway.
            with contextlib.suppress(Exception):
                connection.add_callback_threadsafe(_wake)

    # -- recording outcomes ---------------------------------------------------------------

    def _drain(self, publisher: BatchPublisher | None, consume_channel: Any | None) -> None:
        """Publish the outcomes of every job finished so far as one batch, then ack the jobs of every
        batch the broker has confirmed by now (this one's, usually, on a later pass).

        The batch is whatever is ready now, never waited for: at low load it is one job.
        """
        batch, stale = self._jobs.take_finished(connected=consume_channel is not None)
        for job in stale:  # its connection is gone, so it cannot be acked; the broker redelivers it
            self._recently_sent.remember(job.outcome)
            log_dropped(job)
        for job in batch:
            assert job.outcome is not None
            if job.outcome.kind is OutcomeKind.RATE_LIMITED:
                # Every worker would hit the same limit: stop starting calls until the window resets.
                self._paused_until = max(self._paused_until, time.monotonic() + job.outcome.delay_seconds)
        if publisher is None or consume_channel is None:
            return
        if batch:
            self._start_pending()  # the freed workers call SendGrid while this batch waits for the broker
            publishes = [publish for job in batch for publish in job_publishes(job, self.settings)]
            try:
                self._unconfirmed.append((batch, publisher.start(publishes)))
            except BaseException:
                for job in batch:  # the connection is going away: redeliveries of these must not send again
                    self._recently_sent.remember(job.outcome)
                raise
        if self._unconfirmed:
            self._ack_confirmed(publisher, consume_channel)

    def _ack_confirmed(self, publisher: BatchPublisher, consume_channel: Any) -> None:
        """Ack the jobs of every batch whose outcomes the broker has confirmed (in any order).
        Raises what `BatchPublisher.confirmed` raises, or ConfirmsOverdue; lost_connection then
        remembers the outcomes of every batch still unconfirmed."""
        confirmed: list[tuple[list[Job], InFlight]] = []
        waiting: deque[tuple[list[Job], InFlight]] = deque()
        for jobs, batch in self._unconfirmed:
            (confirmed if publisher.confirmed(batch) else waiting).append((jobs, batch))
        self._unconfirmed = waiting
        for jobs, _batch in confirmed:
            self.stats["batches"] += 1
            for job in jobs:
                unflushed.ack(consume_channel, job.delivery_tag)
                self._jobs.release(job)
                self._recorded(job)
        if confirmed:
            unflushed.flush(consume_channel)
        if self._unconfirmed and time.monotonic() - self._unconfirmed[0][1].since > CONFIRM_TIMEOUT_SECONDS:
            raise ConfirmsOverdue(f"no confirm for {len(self._unconfirmed)} batches of outcomes")

    def _recorded(self, job: Job) -> None:
        """Bookkeeping and the log line of a job whose outcome is published and acked."""
        assert job.outcome is not None
        self._recently_sent.forget(job.outcome)
        self.stats[job.outcome.kind.value] += 1
        metrics.record_outcome(job.outcome.kind.value)
        metrics.HELD.set(len(self._jobs.held))
        log_recorded(job)

    # -- shutdown -------------------------------------------------------------------------

    def _shutdown(self, connection: Any, consume_channel: Any, publisher: BatchPublisher) -> None:
        """Stop taking work, finish what is in flight within the limit, requeue the rest, close."""
        deadline = time.monotonic() + self.settings.shutdown_seconds
        for intake in self._intakes.values():
            intake.cancel()  # pika nacks deliveries not yet dispatched to us
        jobs = self._jobs
        requeued = jobs.take_pending()
        for job in requeued:
            consume_channel.basic_nack(delivery_tag=job.delivery_tag, requeue=True)
        log.info("stopping", extra={"in_flight": len(jobs.held), "requeued": len(requeued)})
        while jobs.held and time.monotonic() < deadline:
            connection.process_data_events(time_limit=min(LOOP_TICK_SECONDS, max(deadline - time.monotonic(), 0)))
            self._liveness.touch()
            self._drain(publisher, consume_channel)
        for tag in list(jobs.held):
            # Still in an HTTP call: if SendGrid accepts it after this, the redelivery sends it again.
            consume_channel.basic_nack(delivery_tag=tag, requeue=True)
        log.info("stopped consuming", extra={"requeued_in_flight": len(jobs.held)})
        jobs.abandon_held()
        self.consuming.clear()
        connection.close()
        self._connection = None


def _wake() -> None:
    """Scheduled on the connection thread just to end `process_data_events` early."""
