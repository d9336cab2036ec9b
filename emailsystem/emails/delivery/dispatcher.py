"""Publishing committed sends off the request path (broker mode).

A request commits the send and its outbox row, hands the message to this process's
dispatcher thread and answers at once. The thread publishes what is queued as one batch
(waiting once for the broker's confirms of all of it) and deletes the published rows in one
statement. Whatever it has not
published when the process dies stays in the outbox, and the relay publishes it after
RELAY_GRACE: a crash delays those sends, it never loses them. A crash between the confirms
and the batch's delete re-publishes that batch (docs/delivery/crash-windows.md).

When the delete fails because the database is unreachable, the thread keeps the published
ids and retries the delete every DELETE_RETRY_SECONDS, so an outage shorter than
RELAY_GRACE re-publishes nothing; without the retry the relay sends such rows a second time
(`make chaos`, database_down, checks it).
"""

import atexit
import logging
import os
import queue
import threading
import time

from django.db import DatabaseError, close_old_connections

from emailsystem.core.metrics import QUEUE_PUBLISH_FAILURES
from emailsystem.emails.delivery.broker import PublishError, WorkPublish, publisher
from emailsystem.emails.delivery.outbox import UNCERTAIN_RELAY_GRACE, outbox_delete, outbox_publish_failed

logger = logging.getLogger(__name__)

# Messages per confirmed batch and rows per delete: large enough to amortise the waits,
# small enough that a crash re-publishes little.
BATCH = 100
# On a clean exit, how long to keep publishing what is queued before leaving it to the relay.
EXIT_DRAIN_SECONDS = 3.0
# While published rows could not be deleted, how often to try again: well inside RELAY_GRACE.
DELETE_RETRY_SECONDS = 0.5
# Published ids kept for another delete; past this the oldest are left to the relay (which
# publishes them once more), so a DELETE that never succeeds cannot grow memory without end.
UNDELETED_MAX = 10_000


class Dispatcher(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="outbox-dispatcher", daemon=True)
        self._queue: queue.SimpleQueue[tuple[int, WorkPublish]] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._undeleted: list[int] = []  # published, but the delete failed: retried by this thread

    def submit(self, outbox_id: int, message: WorkPublish) -> None:
        """Queue one committed send's message for publishing (its request id travels in its
        x-request-id header, and its lane is the routing key)."""
        with self._idle:
            self._pending += 1
        self._queue.put((outbox_id, message))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is published (or left to the relay)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=DELETE_RETRY_SECONDS if self._undeleted else None)
            except queue.Empty:
                self._delete_published([])
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._dispatch(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _dispatch(self, batch: list[tuple[int, WorkPublish]]) -> None:
        messages = [message for _, message in batch]
        try:
            unroutable = set(publisher().publish_many(messages))
        except PublishError as error:
            unroutable = {message.message_id for message in messages}
            reason = str(error)
            if error.uncertain:
                # The broker may hold them: the relay waits long enough for those copies to be sent first.
                self._delay_relay([outbox_id for outbox_id, *_rest in batch], error)
                reason = f"{reason} (confirms unanswered: the relay waits {UNCERTAIN_RELAY_GRACE.seconds} s)"
        else:
            reason = "the broker could not route it to the work queue"
        published = []
        for outbox_id, message in batch:
            message_id, request_id = message.message_id, message.request_id
            if message_id not in unroutable:
                published.append(outbox_id)
                continue
            QUEUE_PUBLISH_FAILURES.labels("dispatcher").inc()
            logger.warning(
                "publish of %s left for the relay: %s",
                message_id,
                reason,
                extra={"message_id": message_id, "request_id": request_id},
            )
        self._delete_published(published)

    def _delay_relay(self, outbox_ids: list[int], error: PublishError) -> None:
        try:
            outbox_publish_failed(outbox_ids=outbox_ids, error=error)
        except DatabaseError:
            # The rows keep their RELAY_GRACE: a copy the broker did store may then be sent twice.
            logger.exception("could not delay the relay of %d uncertain publishes", len(outbox_ids))
        finally:
            close_old_connections()

    def _delete_published(self, published: list[int]) -> None:
        """Delete the rows just published, and any whose earlier delete failed."""
        ids = self._undeleted + published
        if not ids:
            return
        try:
            outbox_delete(outbox_ids=ids)
        except DatabaseError as error:
            # Still in the outbox: retried here; if this process dies first, the relay publishes them once more.
            if not self._undeleted:
                logger.warning("could not delete %d published outbox rows (%s); retrying", len(ids), error)
            self._undeleted = ids[-UNDELETED_MAX:]
        else:
            if self._undeleted:
                logger.info("deleted %d published outbox rows after the database came back", len(self._undeleted))
            self._undeleted = []
        finally:
            close_old_connections()


_dispatcher: Dispatcher | None = None
_dispatcher_pid = 0
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """This process's dispatcher, started on first use (and again in a forked child)."""
    global _dispatcher, _dispatcher_pid
    with _lock:
        if _dispatcher is None or _dispatcher_pid != os.getpid() or not _dispatcher.is_alive():
            _dispatcher = Dispatcher()
            _dispatcher_pid = os.getpid()
            _dispatcher.start()
        return _dispatcher


@atexit.register
def _drain_on_exit() -> None:
    if _dispatcher is not None and _dispatcher_pid == os.getpid():
        started = time.monotonic()
        if not _dispatcher.flush(EXIT_DRAIN_SECONDS):
            logger.warning("exiting with unpublished sends; the relay will publish them")
        logger.debug("dispatcher drained in %.3fs", time.monotonic() - started)
