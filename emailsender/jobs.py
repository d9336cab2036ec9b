"""The sender's jobs: each work message from its delivery to its ack, where it stands, and the
log line of its outcome.

A job is held from delivery until acked (or the connection is gone), pending until a worker is
free, running on a worker thread, then finished: its outcome waits on a queue for the
connection thread. Only the connection thread (consumer.Sender) reads or changes this
bookkeeping; worker threads only call `Jobs.finish`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from emailsender import routing, topology
from emailsender.outcomes import Outcome, OutcomeKind
from emailsender.settings import Settings

log = logging.getLogger("emailsender")


@dataclass
class Job:
    delivery_tag: int
    generation: int  # which connection delivered it; tags are meaningless on any other
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    attempt: int
    lane: str = topology.WORK_KEY  # the lane (work queue) it came from; its retries go back there
    request_id: str | None = None  # the API request the send came from (x-request-id header), for logs
    started: float = 0.0
    outcome: Outcome | None = None
    consumer_tag: str = ""  # which consumer of the channel it came from (intake.py)
    in_hand: bool = True  # its body counts in Jobs.bytes_in_hand until the process is done with it


class Jobs:
    """Held, pending, running and finished jobs of one sender process, across its connections."""

    def __init__(self) -> None:
        self.generation = 0  # the current connection's number
        self.held: dict[int, Job] = {}  # unacked jobs of the current connection, by delivery tag
        # Received, waiting for a free worker or the end of a pause: one queue per lane.
        self.pending: dict[str, deque[Job]] = {lane: deque() for lane in topology.LANES}
        self.running = 0  # jobs started (or finished at once) and not yet taken back, any connection
        self.running_bulk = 0  # of which from the bulk lane
        # Bodies of jobs received and not yet acked, given back or dropped, any connection, per lane (intake.py).
        self.lane_bytes: dict[str, int] = {lane: 0 for lane in topology.LANES}
        self._finished: queue.SimpleQueue[Job] = queue.SimpleQueue()
        # Whether a job finished since the loop last took them: only the first one wakes the loop.
        self._wake_sent = False
        self._wake_lock = threading.Lock()

    def connected(self) -> int:
        """A new connection: its generation."""
        self.generation += 1
        return self.generation

    @property
    def bytes_in_hand(self) -> int:
        """Bodies in hand, both lanes together."""
        return sum(self.lane_bytes.values())

    def held_consumer_tags(self) -> list[str]:
        """The consumer tag of each held job."""
        return [job.consumer_tag for job in self.held.values()]

    def disconnected(self) -> None:
        """The connection is gone: the broker redelivers everything it had given us. Jobs still
        running stay in hand until they come back from their worker."""
        self.held.clear()
        for pending in self.pending.values():
            for job in pending:
                self._let_go(job)
            pending.clear()

    def receive(
        self, delivery_tag: int, properties: Any, body: bytes, lane: str = topology.WORK_KEY, *, consumer_tag: str = ""
    ) -> Job:
        """The job of a delivered message (pika's BasicProperties) from `lane`'s queue, held until it
        is acked or nacked."""
        headers = dict(properties.headers or {})
        job = Job(
            delivery_tag=delivery_tag,
            generation=self.generation,
            body=body,
            headers=headers,
            message_id=properties.message_id,
            attempt=routing.attempt_from_headers(headers),
            lane=lane,
            request_id=routing.request_id_from_headers(headers),
            consumer_tag=consumer_tag,
        )
        self.held[delivery_tag] = job
        self.lane_bytes[lane] += len(body)
        return job

    def wait(self, job: Job) -> None:
        """The job waits for a free worker."""
        self.pending[job.lane].append(job)

    def start_next(self, *, limit: int, bulk_limit: int) -> Job | None:
        """The next pending job to hand to a worker, while fewer than `limit` run; None otherwise.

        The normal lane goes first, and bulk jobs never hold more than `bulk_limit` workers, so
        a normal job waits for neither the bulk jobs received before it nor a worker they hold.
        """
        if self.running >= limit:
            return None
        normal, bulk = self.pending[topology.WORK_KEY], self.pending[topology.BULK_KEY]
        if normal:
            job = normal.popleft()
        elif bulk and self.running_bulk < bulk_limit:
            job = bulk.popleft()
        else:
            return None
        job.started = time.monotonic()
        self._count_start(job)
        return job

    def _count_start(self, job: Job) -> None:
        self.running += 1
        if job.lane == topology.BULK_KEY:
            self.running_bulk += 1

    def finish(self, job: Job) -> bool:
        """A job's outcome is known (safe from any thread). True when the caller should wake the
        loop: no other job finished since the loop last took them (which woke it already)."""
        self._finished.put(job)
        with self._wake_lock:
            wake, self._wake_sent = not self._wake_sent, True
        return wake

    def finish_now(self, job: Job, outcome: Outcome) -> None:
        """Finish a job without running it (its outcome is already known)."""
        job.outcome = outcome
        self._count_start(job)
        self._finished.put(job)

    def take_finished(self, *, connected: bool) -> tuple[list[Job], list[Job]]:
        """Every job finished so far: (those to record on the current connection, those whose
        connection is gone and cannot be acked)."""
        current: list[Job] = []
        stale: list[Job] = []
        # Cleared before reading: a job finished after this is either read below or woken for by its finish().
        with self._wake_lock:
            self._wake_sent = False
        while True:
            try:
                job = self._finished.get_nowait()
            except queue.Empty:
                return current, stale
            self.running -= 1
            if job.lane == topology.BULK_KEY:
                self.running_bulk -= 1
            if not connected or job.generation != self.generation or job.delivery_tag not in self.held:
                self._let_go(job)
                stale.append(job)
            else:
                current.append(job)

    def release(self, job: Job) -> None:
        """The job is acked: no longer held."""
        del self.held[job.delivery_tag]
        self._let_go(job)

    def take_pending(self) -> list[Job]:
        """The jobs not started yet, no longer held or pending (the caller nacks them back to the broker)."""
        taken = [job for pending in self.pending.values() for job in pending]
        for pending in self.pending.values():
            pending.clear()
        for job in taken:
            del self.held[job.delivery_tag]
            self._let_go(job)
        return taken

    def abandon_held(self) -> None:
        """Forget the held jobs (nacked back to the broker at shutdown while still in their calls)."""
        for job in self.held.values():
            self._let_go(job)
        self.held.clear()

    def _let_go(self, job: Job) -> None:
        if job.in_hand:
            job.in_hand = False
            self.lane_bytes[job.lane] -= len(job.body)


def job_publishes(job: Job, settings: Settings) -> list[routing.Publish]:
    """What to publish for a finished job's outcome (routing.plan)."""
    assert job.outcome is not None
    return routing.plan(
        job.outcome, body=job.body, headers=job.headers, message_id=job.message_id, settings=settings, lane=job.lane
    )


def job_fields(job: Job) -> dict[str, Any]:
    """The log fields that identify a job."""
    return {
        "message_id": job.message_id,
        "request_id": job.request_id,
        "delivery_tag": job.delivery_tag,
        "x_attempt": job.attempt,
        "lane": job.lane,
    }


def log_recorded(job: Job) -> None:
    """The log line of a job whose outcome is published and acked."""
    outcome = job.outcome
    assert outcome is not None
    fields = {
        **job_fields(job),
        "email_id": outcome.email_id,
        "outcome": outcome.kind.value,
        "attempt": outcome.attempt,
        "status_code": outcome.status_code,
        "deliveries": len(outcome.delivery_ids),
        "duration_ms": round((time.monotonic() - job.started) * 1000) if job.started else 0,
    }
    if outcome.kind is OutcomeKind.SENT:
        log.info("sent", extra={**fields, "provider": outcome.provider})
    elif outcome.kind in (OutcomeKind.RETRY, OutcomeKind.RATE_LIMITED):
        log.warning(
            "will retry", extra={**fields, "reason": outcome.reason, "delay_s": round(outcome.delay_seconds, 2)}
        )
    else:
        log.error("dead-lettered", extra={**fields, "reason": outcome.reason})


def log_dropped(job: Job) -> None:
    """The log line of a job whose connection is gone, so it cannot be acked; the broker redelivers it."""
    outcome = job.outcome
    log.warning(
        "outcome from a closed connection dropped; the message will be redelivered",
        extra={**job_fields(job), "outcome": outcome.kind.value if outcome else None},
    )
