"""The `results` process: consume the sender's results and apply them to the database in batches."""

import logging
import threading
from typing import NamedTuple

import pika
import pika.exceptions
from django.db import DatabaseError, close_old_connections
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from emailsender import brokers, routing, topology
from emailsender.liveness import LivenessFile
from emailsender.messages import InvalidMessage
from emailsender.reconnect import Backoff
from emailsender.result_messages import ResultMessage, parse_result
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.results import delivery_results_apply

logger = logging.getLogger(__name__)

# Results applied per transaction: large enough that statuses are written in bulk, small
# enough that one transaction stays short.
BATCH_SIZE = 500
# How long to wait for more results before applying a partial batch.
BATCH_WAIT_SECONDS = 0.05
# Reconnect backoff: starts small, doubles, capped; reset after a healthy connection.
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0


class Received(NamedTuple):
    """One result as it came off the queue, with the ids that tie it to its send."""

    delivery_tag: int
    body: bytes
    message_id: str | None
    work_message_id: str | None  # the result's correlation id: the work message it answers
    request_id: str | None  # the API request the send came from (x-request-id header)


def received(method: Basic.Deliver, properties: pika.BasicProperties, body: bytes) -> Received:
    assert method.delivery_tag is not None  # the broker numbers every delivery
    return Received(
        delivery_tag=method.delivery_tag,
        body=body,
        message_id=properties.message_id,
        work_message_id=properties.correlation_id,
        request_id=routing.request_id_from_headers(properties.headers),
    )


class ResultsConsumer:
    """Consume `<prefix>.results`; ack a batch only after its transaction commits.

    A result that cannot be parsed goes to the dead-letter queue with the reason. When the
    database is down the batch is returned to the queue (nack with requeue) and the consumer
    backs off, so results wait in RabbitMQ instead of being lost. Every pass and every wait
    touches LIVENESS_FILE, so only a consumer blocked in one call looks stuck (emailsender/liveness.py).
    """

    def __init__(self, *, stop: threading.Event | None = None) -> None:
        self.config = sender_settings()
        self.stop = stop or threading.Event()
        self.applied = 0
        self._consumed = False  # whether the current connection got as far as consuming
        self.liveness = LivenessFile(self.config.liveness_file)

    def run(self) -> None:
        """Consume until `stop` is set, reconnecting with a capped, jittered backoff (emailsender.reconnect)."""
        backoff = Backoff(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        while not self.stop.is_set():
            self.liveness.touch()
            try:
                self._consume()
                backoff.reset()
            except (pika.exceptions.AMQPError, OSError) as error:
                if self._consumed:  # the connection worked before it was lost: start over from the minimum
                    backoff.reset()
                delay = backoff.next_delay()
                logger.warning("results: broker connection failed (%s); retrying in %.1fs", error, delay)
                self.liveness.wait(self.stop, delay)

    def _consume(self) -> None:
        assert self.config.rabbitmq_url
        self._consumed = False
        connection = brokers.connect(self.config.rabbitmq_url, heartbeat=30)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            topology.declare(channel, self.config.queue_prefix, self.config.retry_delays_ms, self.config.queue_type)
            channel.basic_qos(prefetch_count=BATCH_SIZE * 2)
            queue = topology.results_queue(self.config.queue_prefix)
            logger.info("results: consuming %s", queue)
            self._consumed = True
            batch: list[Received] = []
            for method, properties, body in channel.consume(queue, inactivity_timeout=BATCH_WAIT_SECONDS):
                self.liveness.touch()
                if method is not None:
                    assert properties is not None and body is not None  # consume() yields all three or none
                    batch.append(received(method, properties, body))
                if batch and (method is None or len(batch) >= BATCH_SIZE):
                    self._flush(channel, batch)
                    batch = []
                if self.stop.is_set():
                    break
            else:
                # pika ends the generator when the broker cancels the consumer (queue deleted, leader
                # lost): run() connects again at once and declares the queue again.
                logger.warning("results: consumer cancelled by the broker; reconnecting")
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def _flush(self, channel: BlockingChannel, batch: list[Received]) -> None:
        """Apply the batch's results in one transaction, dead-letter its unreadable ones, then ack it all.

        The dead letters go out only after the commit: a batch the database refuses goes back to
        the queue whole, and its unreadable results must not reach the dead-letter queue once per retry.
        """
        readable: list[tuple[Received, ResultMessage]] = []
        unreadable: list[tuple[Received, str]] = []
        for item in batch:
            try:
                readable.append((item, parse_result(item.body)))
            except InvalidMessage as error:
                unreadable.append((item, error.reason))
        results = [result for _item, result in readable]
        last_tag = batch[-1].delivery_tag
        try:
            changed = delivery_results_apply(results=results)
        except DatabaseError:
            logger.exception("results: database error; returning %d results to the queue", len(batch))
            close_old_connections()
            channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
            self.liveness.wait(self.stop, RECONNECT_MIN_SECONDS * 4)
            return
        for item, reason in unreadable:
            self._dead_letter(channel, item, reason)
        channel.basic_ack(delivery_tag=last_tag, multiple=True)
        self.applied += len(results)
        for item, result in readable:
            logger.info(
                "result applied",
                extra={
                    "request_id": item.request_id,
                    "message_id": item.work_message_id,
                    "email_id": result.email_id,
                    "outcome": result.outcome,
                    "deliveries": len(result.deliveries),
                },
            )
        logger.info("results: applied %d results (%d recipients changed)", len(results), changed)

    def _dead_letter(self, channel: BlockingChannel, item: Received, reason: str) -> None:
        logger.error(
            "results: dead-lettering unreadable result %s: %s",
            item.message_id,
            reason,
            extra={"message_id": item.work_message_id, "request_id": item.request_id},
        )
        channel.basic_publish(
            exchange=topology.exchange_name(self.config.queue_prefix),
            routing_key=topology.DEAD_KEY,
            body=item.body,
            properties=pika.BasicProperties(
                delivery_mode=topology.PERSISTENT,
                message_id=item.message_id,
                headers={topology.DEATH_REASON_HEADER: f"unreadable result: {reason}"},
            ),
        )
