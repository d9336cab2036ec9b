"""The steady load during a scenario: sends at a fixed rate from a thread pool, every answer recorded.

Open loop: a request starts at its slot whether or not earlier ones have answered, so a fault
shows up as slow or failed answers instead of as a quietly lower rate. The load mixes the
three ways to send (LOAD_CYCLE): plain sends, sends scheduled a few seconds ahead, and
batches. A second thread polls /readyz so the run knows what the probe said at each moment.
"""

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A send that has not answered in this long is recorded as unanswered (gunicorn's own timeout is 30 s).
REQUEST_TIMEOUT_SECONDS = 20
# Enough threads that a few slow answers never lower the offered rate.
LOAD_THREADS = 24
READYZ_INTERVAL_SECONDS = 0.5
# Messages per batch request; a batch takes as many of the load's slots, so the recipients
# per second stay `rate` x `recipients` whatever the mix.
BATCH_MESSAGES = 5
# The kinds of request in turn: per 10 emails, 5 in one batch, 2 scheduled and 3 plain.
LOAD_CYCLE = ("batch", "plain", "scheduled", "plain", "scheduled", "plain")
# How far ahead scheduled sends are due, in turn: at least 3 s so that send_at is still in the
# future when the API reads it, at most 9 s so that those made before and during a fault come
# due while it lasts (the fault starts 5 s into the load).
SCHEDULE_AHEAD_SECONDS = (3.0, 5.0, 7.0, 9.0)
KINDS = ("plain", "scheduled", "batch")


@dataclass
class Answer:
    started: float  # time.time(), comparable with the fake's and the fault's timestamps
    ended: float
    status: int  # HTTP status, or 0 when there was no answer (connection error, timeout)
    email_ids: tuple[int, ...]  # the emails a 202 accepted: one, or a batch's in its order
    kind: str = "plain"  # one of KINDS
    messages: int = 1  # emails the request asked for
    send_at: float | None = None  # scheduled: when it is due, time.time()
    error: str = ""


class SteadyLoad:
    """Send `rate` emails per second with `recipients` recipients each, in LOAD_CYCLE's mix, until stop()."""

    def __init__(self, *, web: str, token: str, rate: float, recipients: int, label: str) -> None:
        self.web = web
        self.token = token
        self.rate = rate
        self.recipients = recipients
        self.label = label
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=LOAD_THREADS, thread_name_prefix=f"load-{label}")
        self._ticker = threading.Thread(target=self._tick, daemon=True, name=f"ticker-{label}")

    def start(self) -> "SteadyLoad":
        self._ticker.start()
        return self

    def stop(self) -> list[Answer]:
        """Stop offering sends and wait for every one in flight to answer (or time out)."""
        self._stop.set()
        self._ticker.join()
        self._pool.shutdown(wait=True)
        return self.answers

    def _tick(self) -> None:
        began = time.monotonic()
        slot = 0
        for n in itertools.count():
            kind = LOAD_CYCLE[n % len(LOAD_CYCLE)]
            delay = began + slot / self.rate - time.monotonic()
            if self._stop.wait(max(delay, 0)):
                return
            self._pool.submit(self._send, n, kind)
            slot += BATCH_MESSAGES if kind == "batch" else 1

    def _message(self, tag: str) -> dict[str, Any]:
        return {
            "recipients": [f"{self.label}-{tag}-{k}@example.com" for k in range(self.recipients)],
            "subject": f"chaos {self.label} {tag}",
            "body": "A send made while a fault was injected.",
        }

    def _send(self, n: int, kind: str) -> None:
        send_at = None
        if kind == "batch":
            path, messages = "batch/", BATCH_MESSAGES
            body: dict[str, Any] = {"messages": [self._message(f"{n}.{m}") for m in range(messages)]}
        else:
            path, messages, body = "sent-email/", 1, self._message(str(n))
        if kind == "scheduled":
            send_at = time.time() + SCHEDULE_AHEAD_SECONDS[n % len(SCHEDULE_AHEAD_SECONDS)]
            body["send_at"] = datetime.fromtimestamp(send_at, UTC).isoformat()
        request = urllib.request.Request(
            f"{self.web}/api/v1/emails/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Token {self.token}"},
        )
        started = time.time()
        status, email_ids, error = 0, (), ""
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                status = response.status
                answer = json.loads(response.read())
            results = answer["results"] if kind == "batch" else [answer]
            email_ids = tuple(result["id"] for result in results)
        except urllib.error.HTTPError as failure:
            status = failure.code
            error = failure.read()[:200].decode(errors="replace")
        except (OSError, ValueError, KeyError, TypeError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        with self._lock:
            self.answers.append(Answer(started, time.time(), status, email_ids, kind, messages, send_at, error))


class ReadyzProbe:
    """Poll /readyz like Kubernetes does and keep every (time, status)."""

    def __init__(self, web: str) -> None:
        self.url = f"{web}/readyz"
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="readyz")

    def start(self) -> "ReadyzProbe":
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as failure:
                status = failure.code
            except OSError:
                status = 0
            self.samples.append((started, status))
            self._stop.wait(READYZ_INTERVAL_SECONDS)
