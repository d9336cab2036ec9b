"""The sender's reconnect policy, apart from its connection handling (consumer.py): which broker
failures a new connection can fix, how long to wait before trying, and the loop that does it."""

from __future__ import annotations

import logging
import random
from typing import Protocol

import pika.exceptions

log = logging.getLogger("emailsender")

# Reconnect backoff doubles from 1 s up to 30 s (jittered), and resets once a connection is consuming again.
RECONNECT_MIN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0

# Broker answers that no reconnect will fix: wrong credentials or permissions, or a queue
# declared elsewhere with different arguments.
_FATAL_REPLY_CODES = {403, 406}


class FatalError(Exception):
    """An error the sender cannot recover from; the process exits non-zero and the orchestrator restarts it."""


class ConsumerCancelled(Exception):
    """The broker cancelled our consumer (the queue was deleted, or its node failed over)."""


# What a new connection may fix: the loop reconnects after these.
RECOVERABLE = (ConsumerCancelled, pika.exceptions.AMQPError, OSError)


def fatal_cause(error: BaseException) -> FatalError | None:
    """The FatalError a broker failure amounts to, or None when reconnecting may fix it."""
    if isinstance(
        error,
        pika.exceptions.ProbableAuthenticationError
        | pika.exceptions.ProbableAccessDeniedError
        | pika.exceptions.AuthenticationError,
    ):
        return FatalError(f"broker refused the login: {error!r}")
    closed = pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker
    if isinstance(error, closed) and error.reply_code in _FATAL_REPLY_CODES:
        hint = ""
        if "inequivalent arg" in str(error.reply_text):
            hint = (
                "; the queue exists with other arguments, such as another type than RABBITMQ_QUEUE_TYPE: "
                "set it to the type the queues have, or move them as docs/sender/messages.md says"
            )
        return FatalError(f"broker refused: {error.reply_code} {error.reply_text}{hint}")
    return None


class Backoff:
    """Capped exponential delays with jitter, back to the start after a connection that worked.

    Each delay is drawn from the upper half of its step (`step/2` to `step`), so a fleet that
    lost its broker at one moment does not reconnect in lockstep.
    """

    def __init__(self, minimum: float = RECONNECT_MIN_SECONDS, maximum: float = RECONNECT_MAX_SECONDS) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._step = minimum

    def reset(self) -> None:
        self._step = self.minimum

    def next_delay(self) -> float:
        delay = random.uniform(self._step / 2, self._step)  # noqa: S311 (spreading load, not security)
        self._step = min(self._step * 2, self.maximum)
        return delay


class Reconnectable(Protocol):
    """One consuming connection at a time, as consumer.Sender handles it."""

    @property
    def stop_requested(self) -> bool: ...

    def serve(self) -> None:
        """One connection's life; returns after a clean stop, raises when the connection ends otherwise."""

    def lost_connection(self, error: BaseException) -> None: ...

    def take_consumed(self) -> bool:
        """Whether the last connection got as far as consuming (then the backoff starts over)."""

    def wait(self, seconds: float) -> None: ...


def run_reconnecting(connection: Reconnectable) -> int:
    """Serve connections until a clean stop, waiting a jittered, capped, resetting backoff between
    them. Returns the exit code: 0 after a clean stop, 2 after a FatalError, 1 after a bug."""
    backoff = Backoff()
    try:
        while not connection.stop_requested:
            try:
                connection.serve()
            except RECOVERABLE as exc:
                fatal = fatal_cause(exc)
                if fatal is not None:
                    raise fatal from exc
                connection.lost_connection(exc)
            else:
                break
            if connection.take_consumed():  # the last connection worked: start over from the minimum
                backoff.reset()
            delay = backoff.next_delay()
            log.info("reconnecting", extra={"in_seconds": round(delay, 1)})
            connection.wait(delay)
    except FatalError as exc:
        log.error("cannot continue", extra={"error": str(exc)})
        return 2
    except Exception:  # process boundary: log and let the orchestrator restart us
        log.exception("sender crashed")
        return 1
    return 0
