"""A circuit breaker per provider: closed, open after repeated definite failures, half-open for one probe.

Only definite failures of the provider count (5xx, 401/403, refused connection, TLS failure,
SMTP auth failure, timeouts); an answer about one message (a 400 for a bad address, an SMTP 550
for one mailbox) is a success for the breaker: the provider is working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from emailsender import metrics
from emailsender.settings import Settings

log = logging.getLogger("emailsender.breaker")

# Five failures in a row: one bad answer (a dropped connection) does not move all mail elsewhere,
# while an outage, seen by every worker thread at once, opens the breaker within a second.
FAILURE_THRESHOLD = 5
# Seconds between an open breaker's probes (BREAKER_COOL_DOWN_SECONDS), with its reason in settings.py.
COOL_DOWN_SECONDS = Settings.breaker_cool_down_seconds


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe; `allow()` before a call, then `success()` or `failure()` with what it answered."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int = FAILURE_THRESHOLD,
        cool_down: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cool_down = cool_down
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        metrics.record_breaker_state(name, self._state.value)

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """Whether a call may go to this provider now: always when closed; when open, one probe
        once the cool-down has passed (the breaker is half-open until the probe answers)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cool_down:
                self._move(BreakerState.HALF_OPEN, "cool-down over, probing")
            if self._state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probing = False
            if self._state is not BreakerState.CLOSED:
                self._move(BreakerState.CLOSED, "probe succeeded")

    def failure(self, reason: str) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN:
                self._probing = False
                self._opened_at = self._clock()
                self._move(BreakerState.OPEN, f"probe failed: {reason}")
            elif self._state is BreakerState.CLOSED and self._failures >= self.threshold:
                self._opened_at = self._clock()
                self._move(BreakerState.OPEN, f"{self._failures} failures in a row, last: {reason}")

    def _move(self, to: BreakerState, why: str) -> None:
        was, self._state = self._state, to
        metrics.record_breaker_state(self.name, to.value, was=was.value)
        log.warning(
            "provider %s breaker %s: %s",
            self.name,
            to.value,
            why,
            extra={"provider": self.name, "breaker_from": was.value, "breaker_to": to.value},
        )
