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
with an empty body and an `X-Message-Id`. Every mail/send request is recorded with the status
it got; `summary()["deliveries"]` counts the accepted (202) requests per delivery id taken
from `custom_args`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emailsender.testing.fake_events import EventEmitter, handle_events_get, handle_events_post

MAIL_SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's documented limit for one mail/send request
MAX_PERSONALIZATIONS = 1000
FORCEABLE_STATUSES = {202, 400, 401, 403, 413, 429, 500, 502, 503, 504}
ERROR_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}

# SendGrid's own wording, so error handling is tested against realistic bodies.
TO_REQUIRED = (
    "The to array is required for all personalization objects, "
    "and must have at least one email object with a valid email address."
)
SUBJECT_REQUIRED = (
    "The subject is required. You can get around this requirement if you use a template "
    "with a subject defined or if every personalization has a subject defined."
)
CONTENT_REQUIRED = (
    "Unless a valid template_id is provided, the content parameter is required. There must be at least one "
    "defined content block. We typically suggest both text/plain and text/html blocks are included, "
    "but only one block is required."
)


@dataclass
class RecordedRequest:
    index: int
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when bodies are not recorded or not JSON
    status: int | str  # the status answered, or "hang"
    delivery_ids: list[int] = field(default_factory=list)
    email_ids: list[int] = field(default_factory=list)


@dataclass
class Mode:
    status: int | str = 202  # forced status, or "hang"
    count: int | None = None  # how many more requests get `status`; None = until changed
    latency_ms: float = 0.0
    hang_seconds: float = 30.0
    reset_seconds: float = 1.0  # 429: X-RateLimit-Reset = now + this
    retry_after: float | None = None  # 429: also send Retry-After when set


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def validate(payload: Any) -> list[dict[str, Any]]:
    """SendGrid-style errors for a mail/send payload; empty when it would be accepted."""
    if not isinstance(payload, dict):
        return [{"message": "Bad Request", "field": None, "help": None}]
    errors: list[dict[str, Any]] = []

    def error(message: str, field_name: str | None) -> None:
        errors.append({"message": message, "field": field_name, "help": None})

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= MAX_PERSONALIZATIONS:
        error(
            f"The personalizations field is required and must have between 1 and {MAX_PERSONALIZATIONS} items.",
            "personalizations",
        )
        personalizations = []
    for i, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(t, dict) and "@" in str(t.get("email", "")) for t in to)
        ):
            error(
                TO_REQUIRED,
                f"personalizations.{i}.to",
            )
        args = item.get("custom_args", {}) if isinstance(item, dict) else {}
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            error("Custom args must be string values.", f"personalizations.{i}.custom_args")
    sender = payload.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        error(
            "The from object must be provided for every email send. It is an object that requires an email parameter.",
            "from.email",
        )
    if not payload.get("subject") and not (
        personalizations and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    ):
        error(
            SUBJECT_REQUIRED,
            "subject",
        )
    content = payload.get("content")
    if (
        not isinstance(content, list)
        or not content
        or not all(
            isinstance(c, dict) and c.get("type") and isinstance(c.get("value"), str) and c["value"] for c in content
        )
    ):
        error(
            CONTENT_REQUIRED,
            "content",
        )
    elif len(content) > 1 and any(c["type"] == "text/plain" for c in content) and content[0]["type"] != "text/plain":
        error("If present, text/plain content must be first, followed by text/html.", "content")
    return errors


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive for benchmark clients; urllib closes after each request anyway
    server_version = "FakeSendGrid/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # thousands of requests per second; recording is what tests look at

    # -- plumbing -------------------------------------------------------------------------

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = _int_or_none(self.headers.get("Content-Length")) or 0
        return self.rfile.read(length) if length > 0 else b""

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        fake = self.server.fake
        if url.path == "/_fake/requests":
            if query.get("summary", ["0"])[0] not in ("0", "", "false"):
                self._reply(200, fake.summary())
            else:
                since = _int_or_none(query.get("since", ["0"])[0]) or 0
                records = fake.requests_since(since)
                self._reply(200, {"count": since + len(records), "requests": [asdict(r) for r in records]})
        elif url.path == "/_fake/mode":
            self._reply(200, asdict(fake.mode))
        elif url.path == "/_fake/health":
            self._reply(200, {"ok": True})
        elif url.path.startswith("/_fake/events"):
            self._reply(*handle_events_get(fake.events, url.path))
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None}]})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        fake = self.server.fake
        raw = self._read_body()
        if url.path == "/_fake/mode":
            try:
                options = json.loads(raw or b"{}")
                fake.set_mode(**options)
            except (ValueError, TypeError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, asdict(fake.mode))
        elif url.path == "/_fake/reset":
            fake.reset()
            self._reply(200, {"ok": True})
        elif url.path == MAIL_SEND_PATH:
            self._mail_send(raw)
        elif url.path.startswith("/_fake/events"):
            self._reply(*handle_events_post(fake.events, url.path, raw))
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None}]})

    def _mail_send(self, raw: bytes) -> None:
        fake = self.server.fake
        arrived = time.time()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        auth = self.headers.get("Authorization", "")
        authorized = auth.startswith("Bearer ") and auth[len("Bearer ") :].strip() not in ("", "None")
        if not authorized:
            mode = fake.mode_snapshot()
            status: int | str = 401
        else:
            mode = fake.take_mode()
            status = mode.status
            if status == 202:
                if len(raw) > MAX_BODY_BYTES:
                    status = 413
                else:
                    errors = validate(payload)
                    if errors:
                        status = 400
        fake._record(arrived, self.path, dict(self.headers), payload, status)

        if mode.latency_ms:
            time.sleep(mode.latency_ms / 1000)
        if status == "hang":
            fake._hang(mode.hang_seconds)
            self.close_connection = True  # never answer: the client sees its timeout or a dropped connection
            return
        assert isinstance(status, int)
        if status == 202:
            self._reply(202, headers={"X-Message-Id": uuid.uuid4().hex[:22]})
        elif status == 400 and authorized and mode.status == 202:
            self._reply(400, {"errors": validate(payload)})
        elif status == 429:
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() + mode.reset_seconds + 0.999)),
            }
            if mode.retry_after is not None:
                headers["Retry-After"] = str(int(mode.retry_after))
            self._reply(429, {"errors": [{"message": ERROR_MESSAGES[429], "field": None, "help": None}]}, headers)
        else:
            self._reply(
                status, {"errors": [{"message": ERROR_MESSAGES.get(status, "error"), "field": None, "help": None}]}
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request must not keep the process (or a test run) alive
    request_queue_size = 1024  # listen backlog: benchmarks open many short connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeSendGrid) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Close kept-alive connections too, as a real server going away does."""
        super().server_close()
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.events = EventEmitter(self)  # signed Event Webhook batches (fake_events.py)
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
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
                    delivery_id = _int_or_none(args.get("delivery_id"))
                    email_id = _int_or_none(args.get("email_id"))
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
