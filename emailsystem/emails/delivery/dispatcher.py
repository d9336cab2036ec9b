"""Publishing committed sends off the request path (broker mode).

A request commits the send and its outbox row, hands the message to this process's
dispatcher thread and answers at once. The thread publishes (waiting for the broker's
confirm) and deletes the published rows in one statement per batch. Whatever it has not
published when the process dies stays in the outbox, and the relay publishes it after
RELAY_GRACE: a crash delays those sends, it never loses them. A crash between a confirm
and the batch's delete re-publishes that batch (README, "What a crash can duplicate").
"""

import atexit
import logging
import os
import queue
import threading
import time

from django.db import DatabaseError, close_old_connections

from emailsystem.core.metrics import QUEUE_PUBLISH_FAILURES
from emailsystem.emails.delivery.broker import PublishError, publisher
from emailsystem.emails.delivery.outbox import outbox_delete

logger = logging.getLogger(__name__)

# Rows deleted per statement: large enough to amortise the commit, small enough that a crash
# re-publishes little.
BATCH = 100
# On a clean exit, how long to keep publishing what is queued before leaving it to the relay.
EXIT_DRAIN_SECONDS = 3.0


class Dispatcher(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="outbox-dispatcher", daemon=True)
        self._queue: queue.SimpleQueue[tuple[int, str, bytes, str | None]] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, outbox_id: int, message_id: str, body: bytes, request_id: str | None = None) -> None:
        """Queue one committed send for publishing; `request_id` travels in its x-request-id header."""
        with self._idle:
            self._pending += 1
        self._queue.put((outbox_id, message_id, body, request_id))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is published (or left to the relay)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._dispatch(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _dispatch(self, batch: list[tuple[int, str, bytes, str | None]]) -> None:
        published = []
        for outbox_id, message_id, body, request_id in batch:
            try:
                publisher().publish(body, message_id=message_id, request_id=request_id)
            except PublishError as error:
                QUEUE_PUBLISH_FAILURES.labels("dispatcher").inc()
                logger.warning(
                    "publish of %s left for the relay: %s",
                    message_id,
                    error,
                    extra={"message_id": message_id, "request_id": request_id},
                )
                continue
            published.append(outbox_id)
        if not published:
            return
        try:
            outbox_delete(outbox_ids=published)
        except DatabaseError:
            # Published but still in the outbox: the relay will publish these once more.
            logger.exception("could not delete %d published outbox rows", len(published))
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
