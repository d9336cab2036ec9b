"""Embedded mode (no RABBITMQ_URL): the web process delivers in a background thread.

The outbox table is the queue: the worker claims available rows, runs the sender's own
`handle()` with the sender's client (SendGrid, or .eml files in OUTBOX_DIR without an API
key), and applies the outcome with the same service the `results` consumer uses. Retries wait
in the row (`available_at`), so a restart loses nothing. Meant for one process (`make run`);
with several, rows are still claimed atomically, so each is handled once.
"""

import datetime
import logging
import threading

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from emailsender.clients import Client
from emailsender.handler import handle, unexpected_error
from emailsender.logs import request_id_bound
from emailsender.outcomes import Outcome, OutcomeKind, results_for
from emailsender.providers import providers_from_settings
from emailsender.result_messages import result_message
from emailsender.settings import Settings
from emailsystem.emails.delivery.config import sender_settings
from emailsystem.emails.delivery.history import history_insert, taken_row
from emailsystem.emails.delivery.outbox import outbox_available, outbox_claim
from emailsystem.emails.delivery.results import delivery_results_apply
from emailsystem.emails.delivery.work import encode, message_id_for, work_message_for_outbox
from emailsystem.emails.models import OutboxMessage

logger = logging.getLogger(__name__)

# Rows looked at per pass; the worker loops until none is left.
BATCH = 20
# With nothing to do, look again this often even if no send woke us (retries coming due).
IDLE_POLL_SECONDS = 1.0


def outbox_process(*, client: Client, config: Settings, limit: int = BATCH) -> int:
    """Deliver up to `limit` available outbox rows in this thread. Returns how many were handled."""
    handled = 0
    for outbox_id in outbox_available(limit=limit):
        if not outbox_claim(outbox_id=outbox_id):
            continue
        outbox = OutboxMessage.objects.select_related("sent_email").filter(pk=outbox_id).first()
        if outbox is None:
            continue
        # Every line about this row (ours, the results service's) carries the send's request id.
        with request_id_bound(outbox.request_id):
            _deliver(outbox, client=client, config=config)
        handled += 1
    return handled


def _deliver(outbox: OutboxMessage, *, client: Client, config: Settings) -> None:
    """Send one claimed row's still-queued deliveries and record the outcome."""
    message = work_message_for_outbox(outbox)
    if not message.deliveries:
        outbox.delete()
        return
    body = encode(message)
    taken_at = timezone.now()
    try:
        outcome = handle(body, outbox.attempts, client, config)
    except Exception as error:  # a process boundary: a client bug must not kill the worker
        logger.exception("email %s: unexpected error while sending", outbox.sent_email_id, extra=_fields(outbox))
        outcome = unexpected_error(body, outbox.attempts, config, error)
    _apply(outbox, outcome, taken_at=taken_at)


def _fields(outbox: OutboxMessage) -> dict[str, object]:
    """The fields the sender and the results process log for the same work, under the same names.

    `request_id` comes from the context `outbox_process` binds, so it is omitted, not null, when
    the row has none.
    """
    return {"message_id": message_id_for(outbox.pk, outbox.sent_email_id), "email_id": outbox.sent_email_id}


def _apply(outbox: OutboxMessage, outcome: Outcome, *, taken_at: datetime.datetime) -> None:
    """Record the outcome as the results process would, then retire the row or schedule its retry.

    The first time a row is taken (no attempt failed, no 429 waited), the email's history
    also records that moment, in the same INSERT as the attempt's row.
    """
    fields = {**_fields(outbox), "outcome": outcome.kind.value}  # before delete() clears the row's pk
    results = [result_message(result) for result in results_for(outcome)]
    first_take = outbox.attempts == 0 and not outbox.last_error
    taken = [taken_row(email_id=outbox.sent_email_id, delivery_ids=outbox.delivery_ids, at=taken_at)]
    if results:
        delivery_results_apply(results=results, history=taken if first_take else ())
    elif first_take:  # a 429: no result to apply, but the row was taken
        history_insert(rows=taken, email_ids={outbox.sent_email_id})
    if outcome.kind in (OutcomeKind.RETRY, OutcomeKind.RATE_LIMITED):
        # A 429 waits without using an attempt; a retry counts the one just made.
        attempts = outcome.attempt if outcome.kind is OutcomeKind.RETRY else outbox.attempts
        OutboxMessage.objects.filter(pk=outbox.pk).update(
            attempts=attempts,
            last_error=outcome.reason,
            available_at=timezone.now() + datetime.timedelta(seconds=outcome.delay_seconds),
        )
    else:  # sent, failed, or a message we built ourselves that failed validation (recorded as failed)
        outbox.delete()
    logger.info(
        "email %s: %s (%s)",
        outbox.sent_email_id,
        outcome.kind,
        outcome.reason or outcome.status_code,
        extra=fields,
    )


class EmbeddedWorker(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="embedded-delivery", daemon=True)
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.client: Client | None = None

    def run(self) -> None:
        """Deliver until stopped; database errors are logged and retried on the next pass."""
        try:
            self._deliver_until_stopped()
        finally:
            connections.close_all()

    def _deliver_until_stopped(self) -> None:
        config = sender_settings()
        client = self.client = providers_from_settings(config)
        while not self.stopped.is_set():
            try:
                busy = outbox_process(client=client, config=config)
            except DatabaseError:
                logger.exception("embedded delivery: database error; retrying shortly")
                busy = 0
            finally:
                close_old_connections()
            if not busy:
                self.wake.wait(IDLE_POLL_SECONDS)
                self.wake.clear()

    def stop(self, timeout: float = 10) -> None:
        self.stopped.set()
        self.wake.set()
        self.join(timeout)


_worker: EmbeddedWorker | None = None
_worker_lock = threading.Lock()


def start_embedded_worker() -> EmbeddedWorker | None:
    """Start this process's worker, once, when there is no broker. Called from wsgi.py."""
    global _worker
    config = sender_settings()
    if config.rabbitmq_url:
        return None
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _log_where_emails_go(config)
            _worker = EmbeddedWorker()
            _worker.start()
        return _worker


def _log_where_emails_go(config: Settings) -> None:
    """One start-up line, through logging like every other (JSON in production, readable under `make run`)."""
    if config.email_providers:
        logger.info("Embedded delivery: sending through %s", ", then ".join(config.providers))
    elif config.uses_sendgrid:
        logger.info("Embedded delivery: sending through SendGrid at %s", config.sendgrid_api_host)
    else:
        logger.info("Embedded delivery: no SENDGRID_API_KEY, emails are written to %s", config.outbox_dir)


def worker_client() -> Client | None:
    """The providers this process's embedded worker sends through (None without a worker)."""
    return _worker.client if _worker is not None else None


def wake_embedded_worker() -> None:
    """After a send commits: deliver now rather than at the next poll (no-op without a worker)."""
    if _worker is not None:
        _worker.wake.set()
