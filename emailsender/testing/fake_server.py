"""The fake SendGrid's HTTP side: the request handler and the server that tracks its connections.

FakeSendGrid (fake_sendgrid.py) owns the state the handler reads and records.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from emailsender.testing.fake_events import handle_events_get, handle_events_post
from emailsender.testing.sendgrid_contract import (
    MAIL_SEND_PATH,
    MAX_BODY_BYTES,
    bearer_key_present,
    is_sandboxed,
    validate,
)

if TYPE_CHECKING:
    from emailsender.testing.fake_sendgrid import FakeSendGrid

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


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer
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
        length = int_or_none(self.headers.get("Content-Length")) or 0
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
                since = int_or_none(query.get("since", ["0"])[0]) or 0
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
        authorized = bearer_key_present(self.headers.get("Authorization", ""))
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
                    elif is_sandboxed(payload):
                        status = 200  # SendGrid's sandbox mode: validated, answered 200, delivered nothing
        fake._record(arrived, self.path, dict(self.headers), payload, status)

        if mode.latency_ms:
            time.sleep(mode.latency_ms / 1000)
        if status == "hang":
            fake._hang(mode.hang_seconds)
            self.close_connection = True  # never answer: the client sees its timeout or a dropped connection
            return
        assert isinstance(status, int)
        if status in (200, 202):
            self._reply(status, headers={} if status == 200 else {"X-Message-Id": uuid.uuid4().hex[:22]})
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


class FakeServer(ThreadingHTTPServer):
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
