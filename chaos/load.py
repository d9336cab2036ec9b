"""The steady load during a scenario: sends at a fixed rate from a thread pool, every answer recorded.

Open loop: a send starts every 1/rate seconds whether or not earlier ones have answered, so
a fault shows up as slow or failed answers instead of as a quietly lower rate. A second
thread polls /readyz so the run knows what the probe said at each moment.
"""

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# A send that has not answered in this long is recorded as unanswered (gunicorn's own timeout is 30 s).
REQUEST_TIMEOUT_SECONDS = 20
# Enough threads that a few slow answers never lower the offered rate.
LOAD_THREADS = 24
READYZ_INTERVAL_SECONDS = 0.5


@dataclass
class Answer:
    started: float  # time.time(), comparable with the fake's and the fault's timestamps
    ended: float
    status: int  # HTTP status, or 0 when there was no answer (connection error, timeout)
    email_id: int | None
    error: str = ""


class SteadyLoad:
    """POST sent-email at `rate` per second with `recipients` recipients each, until stop()."""

    def __init__(self, *, web: str, token: str, rate: float, recipients: int, label: str) -> None:
        self.url = f"{web}/api/v1/emails/sent-email/"
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
        for n in itertools.count():
            delay = began + n / self.rate - time.monotonic()
            if self._stop.wait(max(delay, 0)):
                return
            self._pool.submit(self._send, n)

    def _send(self, n: int) -> None:
        body = {
            "recipients": [f"{self.label}-{n}-{k}@example.com" for k in range(self.recipients)],
            "subject": f"chaos {self.label} {n}",
            "body": "A send made while a fault was injected.",
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Token {self.token}"},
        )
        started = time.time()
        status, email_id, error = 0, None, ""
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                status = response.status
                email_id = json.loads(response.read()).get("id")
        except urllib.error.HTTPError as failure:
            status = failure.code
            error = failure.read()[:200].decode(errors="replace")
        except (OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        with self._lock:
            self.answers.append(Answer(started, time.time(), status, email_id, error))


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
