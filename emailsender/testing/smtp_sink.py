"""An SMTP server on a background thread (aiosmtpd) that keeps what it receives, and when, for tests,
benches and the fault injection.

Recipients whose local part starts with `refuse` are refused for good (550), with `busy`
deferred (450). With `password` set, AUTH PLAIN/LOGIN is required over the plain connection.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    at: float  # time.time() when the sink accepted the message (the end of DATA)

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        local = address.split("@")[0]
        if local.startswith("refuse"):
            return "550 5.1.1 no such mailbox"
        if local.startswith("busy"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content), time.time())
        self.sink.record(received)
        return "250 Message accepted"


class SmtpSink:
    def __init__(self, *, username: str | None = None, password: str | None = None, keep: bool = True) -> None:
        self.username, self.password = username, password
        self.keep = keep  # False: count messages only (benchmarks send tens of thousands)
        self.count = 0
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        options: dict[str, Any] = {}
        if password is not None:
            options = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            getattr(data, "login", None) == (self.username or "").encode()
            and data.password == (self.password or "").encode()
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def url(self, security: str = "none") -> str:
        user = f"{self.username}:{self.password}@" if self.password is not None else ""
        return f"smtp://{user}127.0.0.1:{self.port}?security={security}"

    def record(self, received: Received) -> None:
        with self._lock:
            self.count += 1
            if self.keep:
                self.received.append(received)

    def received_since(self, index: int) -> list[Received]:
        """What arrived after the first `index` messages (kept messages only), oldest first."""
        with self._lock:
            return self.received[index:]

    def wait_until(self, predicate: Callable[[SmtpSink], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._controller.stop()
