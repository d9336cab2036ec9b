"""A real HTTP server that answers like SendGrid's v3 mail/send, with switches for failures.

    python -m emailsender.testing.fake_sendgrid --port 8025 [--latency-ms 50] [--no-bodies]

    with FakeSendGrid() as fake:                  # port 0: any free port
        os.environ["SENDGRID_API_HOST"] = fake.url
        fake.set_mode(status=500, count=2)        # the next 2 requests get a 500, then 202 again
        fake.set_mode(status=429, reset_seconds=2)  # 429 with X-RateLimit-* until changed
        fake.set_mode(status="hang", hang_seconds=5, count=1)  # hold one request, never answer
        fake.set_mode(latency_ms=50)              # every answer waits 50 ms
        fake.requests, fake.summary(), fake.reset()

Other processes drive it over HTTP: `POST /_fake/mode` (the same keys as JSON), `GET /_fake/mode`,
`GET /_fake/requests[?since=N]`, `GET /_fake/requests?summary=1`, `POST /_fake/reset`.

It also plays SendGrid's Event Webhook: `fake.events` (fake_events.py) posts signed event
batches about the recipients it accepted (`POST /_fake/events`, `GET /_fake/events/public-key`).

`POST /v3/mail/send` needs `Authorization: Bearer <anything>` (401 otherwise), checks the
request's shape (400 with SendGrid's `{"errors": [{"message", "field"}]}`) and answers 202
with an empty body and an `X-Message-Id`; a request in sandbox mode (`mail_settings.sandbox_mode.enable`)
is validated the same way and answered 200, as SendGrid does, and delivers nothing: it is recorded
with status 200 and counts in neither `delivery_counts()` nor the Event Webhook. Every mail/send
request is recorded with the status it got; `summary()["deliveries"]` counts the accepted (202)
requests per delivery id taken from `custom_args`.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from emailsender.testing.fake_events import EventEmitter
from emailsender.testing.fake_server import (
    FORCEABLE_STATUSES,
    FakeServer,
    Mode,
    RecordedRequest,
    int_or_none,
)


class FakeSendGrid:
    """A fake SendGrid on a background thread. Use as a context manager or call start()/stop()."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, latency_ms: float = 0, record_bodies: bool = True
    ) -> None:
        self.host = host
        self.port = port
        self.record_bodies = record_bodies
        self._initial_latency_ms = latency_ms
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        self.events = EventEmitter(self)  # signed Event Webhook batches (fake_events.py)
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        self._stopping.clear()
        self._server = FakeServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="fake-sendgrid"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hung requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def open_connections(self) -> int:
        """Client connections still open. A client that died has had everything it sent answered
        once its connections are gone (the kernel closes them; the server reads up to the end)."""
        server = self._server
        if server is None:
            return 0
        with server._open_lock:
            return len(server._open)

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- switches -------------------------------------------------------------------------

    def set_mode(
        self,
        *,
        status: int | str | None = None,
        count: int | None = None,
        latency_ms: float | None = None,
        hang_seconds: float | None = None,
        reset_seconds: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Change how the next requests are answered; options not given keep their value.

        `status` (202, 400, 401, 403, 413, 429, 5xx or "hang") applies to the next `count`
        requests, or until changed when `count` is None; then answers go back to 202.
        """
        if status is not None and status != "hang" and status not in FORCEABLE_STATUSES:
            raise ValueError(f"status must be 'hang' or one of {sorted(FORCEABLE_STATUSES)}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        with self._lock:
            if status is not None:
                self.mode.status = int(status) if status != "hang" else "hang"
                self.mode.count = count
            if latency_ms is not None:
                self.mode.latency_ms = float(latency_ms)
            if hang_seconds is not None:
                self.mode.hang_seconds = float(hang_seconds)
            if reset_seconds is not None:
                self.mode.reset_seconds = float(reset_seconds)
            if retry_after is not None:
                self.mode.retry_after = float(retry_after)

    def reset(self) -> None:
        """Forget recorded requests and go back to answering 202 (latency back to the start value)."""
        with self._lock:
            self.mode = Mode(latency_ms=float(self._initial_latency_ms))
            self._requests: list[RecordedRequest] = []
            self._by_status: Counter[str] = Counter()
            self._deliveries: Counter[int] = Counter()

    def mode_snapshot(self) -> Mode:
        with self._lock:
            return Mode(**asdict(self.mode))

    def take_mode(self) -> Mode:
        """The mode for one mail/send request, counting it against a forced status."""
        with self._lock:
            snapshot = Mode(**asdict(self.mode))
            if self.mode.count is not None:
                self.mode.count -= 1
                if self.mode.count <= 0:
                    self.mode.status, self.mode.count = 202, None
            return snapshot

    # -- recording ------------------------------------------------------------------------

    def _record(self, at: float, path: str, headers: dict[str, str], payload: Any, status: int | str) -> None:
        delivery_ids: list[int] = []
        email_ids: list[int] = []
        if isinstance(payload, dict) and isinstance(payload.get("personalizations"), list):
            for item in payload["personalizations"]:
                args = item.get("custom_args") if isinstance(item, dict) else None
                if isinstance(args, dict):
                    delivery_id = int_or_none(args.get("delivery_id"))
                    email_id = int_or_none(args.get("email_id"))
                    if delivery_id is not None:
                        delivery_ids.append(delivery_id)
                    if email_id is not None and email_id not in email_ids:
                        email_ids.append(email_id)
        with self._changed:
            self._requests.append(
                RecordedRequest(
                    index=len(self._requests),
                    at=at,
                    path=path,
                    headers=headers,
                    body=payload if self.record_bodies else None,
                    status=status,
                    delivery_ids=delivery_ids,
                    email_ids=email_ids,
                )
            )
            self._by_status[str(status)] += 1
            if status == 202:
                self._deliveries.update(delivery_ids)
            self._changed.notify_all()

    def _hang(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every mail/send request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_since(self, index: int) -> list[RecordedRequest]:
        with self._lock:
            return self._requests[index:]

    def delivery_counts(self) -> Counter[int]:
        """How many accepted (202) requests carried each delivery id."""
        with self._lock:
            return Counter(self._deliveries)

    def summary(self) -> dict[str, Any]:
        """Counts only, for large runs: totals by status and accepted requests per delivery id."""
        with self._lock:
            first = self._requests[0].at if self._requests else None
            last = self._requests[-1].at if self._requests else None
            return {
                "total": len(self._requests),
                "by_status": dict(self._by_status),
                "accepted": self._by_status.get("202", 0),
                "accepted_deliveries": sum(self._deliveries.values()),
                "distinct_deliveries": len(self._deliveries),
                "deliveries": {str(k): v for k, v in self._deliveries.items()},
                "duplicates": {str(k): v for k, v in self._deliveries.items() if v > 1},
                "first_at": first,
                "last_at": last,
            }

    def wait_until(self, predicate: Callable[[FakeSendGrid], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate(self)` is true (re-checked on every request), or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emailsender.testing.fake_sendgrid", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before every answer")
    parser.add_argument("--no-bodies", action="store_true", help="record ids and statuses only (long benchmarks)")
    args = parser.parse_args(argv)

    fake = FakeSendGrid(args.host, args.port, latency_ms=args.latency_ms, record_bodies=not args.no_bodies)
    stop: list[int] = []  # a signal handler should only set a flag
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: stop.append(signum))
    with fake:
        print(f"fake SendGrid listening on {fake.url} (SENDGRID_API_HOST={fake.url})", flush=True)
        while not stop:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
