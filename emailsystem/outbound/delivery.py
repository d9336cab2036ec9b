"""One HTTP attempt: POST the signed body to the endpoint, connecting to the address that was checked.

The host is resolved for every new connection and refused unless every address is public
(targets.target_resolve); the socket connects to that address while the request keeps the
URL's host in Host and, over TLS, in SNI and the certificate check. Redirects are never
followed (http.client does not follow them; a 3xx is a failed attempt).

Connections stay open between attempts (HTTP/1.1 keep-alive) in one set of idle connections
that every pool thread shares, keyed by the URL's scheme, host and port; each goes to the
address checked when it was opened, and a name that resolves elsewhere reaches its new address
with the next new connection. A new TCP (and TLS) connection per event cost most of an attempt
against a receiver that answers at once, and a resolution per event a DNS query each; shared
rather than per thread, an endpoint gets as many connections as it has attempts running at
once, not one per thread that ever called it.
"""

import http.client
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from emailsystem.outbound.signing import signature_header
from emailsystem.outbound.targets import TargetRefused, target_resolve, url_parts

# How long one attempt may wait for the endpoint, per connect and per read.
TIMEOUT_SECONDS = 10.0
# What is kept of an endpoint's answer for the attempt's record.
ERROR_MAX_CHARS = 500
# An answer body longer than this is not read to its end: the connection is closed instead of kept.
ANSWER_MAX_BYTES = 64 * 1024
# Idle connections kept in all; past it the one of the least recently used target is closed
# (the worker runs up to 128 attempts at once).
IDLE_CONNECTIONS = 256
USER_AGENT = "emailsystem-webhooks/1"

_TLS = ssl.create_default_context()

ConnectionKey = tuple[str, str, int]  # scheme, host, port


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    duration_ms: int
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _connection(key: ConnectionKey, timeout: float) -> http.client.HTTPConnection:
    """A new connection to the host's checked address; raises TargetRefused."""
    scheme, host, port = key
    address = target_resolve(host, port)
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=_TLS)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect_to_checked(
        _address: tuple[str, int], timeout: float | None = None, source: object = None
    ) -> socket.socket:
        sock = socket.create_connection((address, port), timeout)
        # A request is written whole (http.client sends headers and a bytes body together), so
        # Nagle's algorithm could only hold a kept connection's next request back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    # http.client connects through this attribute; the TLS wrap that follows still names `host`.
    connection._create_connection = connect_to_checked  # type: ignore[attr-defined]
    return connection


class _Idle:
    """Idle open connections shared by the threads, per target; the target kept most recently last."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.by_key: OrderedDict[ConnectionKey, list[http.client.HTTPConnection]] = OrderedDict()
        self.count = 0

    def take(self, key: ConnectionKey) -> http.client.HTTPConnection | None:
        with self.lock:
            connections = self.by_key.get(key)
            if not connections:
                return None
            self.count -= 1
            return connections.pop()

    def keep(self, key: ConnectionKey, connection: http.client.HTTPConnection) -> None:
        excess = []
        with self.lock:
            self.by_key.setdefault(key, []).append(connection)
            self.by_key.move_to_end(key)
            self.count += 1
            while self.count > self.limit:
                oldest_key, oldest = next(iter(self.by_key.items()))
                excess.append(oldest.pop(0))
                self.count -= 1
                if not oldest:
                    del self.by_key[oldest_key]
        for stale in excess:
            stale.close()


_idle = _Idle(IDLE_CONNECTIONS)


def _take(key: ConnectionKey, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
    """An idle open connection for `key` (True: reused), or a new one."""
    connection = _idle.take(key)
    if connection is not None:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection, True
    return _connection(key, timeout), False


def _post(key: ConnectionKey, path: str, payload: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST on a kept or new connection; (status, the start of the answer). A kept connection the
    receiver closed while idle fails before any answer: then once more on a new one."""
    connection, reused = _take(key, timeout)
    try:
        try:
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            connection.close()
            connection = _connection(key, timeout)
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
        answer = response.read(ANSWER_MAX_BYTES)
        keep = not response.will_close and len(answer) < ANSWER_MAX_BYTES
    except BaseException:
        connection.close()
        raise
    if keep:
        _idle.keep(key, connection)
    else:
        connection.close()
    return response.status, answer[:ERROR_MAX_CHARS].decode(errors="replace")


def attempt_post(
    *, url: str, secrets: list[str], webhook_id: str, body: str, timeout: float = TIMEOUT_SECONDS
) -> AttemptResult:
    """POST `body` signed with `secrets`; the status code, or the error that stopped the attempt."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        key = url_parts(url)
    except TargetRefused as error:
        return AttemptResult(None, elapsed(), f"refused: {error}")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timestamp = int(time.time())
    payload = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, payload),
    }
    try:
        status, answer = _post(key, path, payload, headers, timeout)
    except TargetRefused as error:
        return AttemptResult(None, elapsed(), f"refused: {error}")
    except TimeoutError:
        return AttemptResult(None, elapsed(), f"timed out after {timeout:.0f} s")
    except (OSError, http.client.HTTPException) as failure:
        return AttemptResult(None, elapsed(), f"{type(failure).__name__}: {failure}"[:ERROR_MAX_CHARS])
    problem = "" if 200 <= status < 300 else f"HTTP {status}: {answer}"[:ERROR_MAX_CHARS]
    return AttemptResult(status, elapsed(), problem)
