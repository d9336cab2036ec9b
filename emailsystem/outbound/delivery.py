"""One HTTP attempt: POST the signed body to the endpoint, connecting to the address that was checked.

The host is resolved once per attempt and refused unless every address is public
(targets.target_resolve); the socket then connects to that address while the request keeps
the URL's host in Host and, over TLS, in SNI and the certificate check. Redirects are never
followed (http.client does not follow them; a 3xx is a failed attempt).
"""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from emailsystem.outbound.signing import signature_header
from emailsystem.outbound.targets import TargetRefused, target_resolve, url_parts

# How long one attempt may wait for the endpoint, per connect and per read.
TIMEOUT_SECONDS = 10.0
# What is kept of an endpoint's answer for the attempt's record.
ERROR_MAX_CHARS = 500
USER_AGENT = "emailsystem-webhooks/1"

_TLS = ssl.create_default_context()


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    duration_ms: int
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _connection(scheme: str, host: str, port: int, address: str, timeout: float) -> http.client.HTTPConnection:
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=_TLS)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect_to_checked(
        _address: tuple[str, int], timeout: float | None = None, source: object = None
    ) -> socket.socket:
        return socket.create_connection((address, port), timeout)

    # http.client connects through this attribute; the TLS wrap that follows still names `host`.
    connection._create_connection = connect_to_checked  # type: ignore[attr-defined]
    return connection


def attempt_post(
    *, url: str, secrets: list[str], webhook_id: str, body: str, timeout: float = TIMEOUT_SECONDS
) -> AttemptResult:
    """POST `body` signed with `secrets`; the status code, or the error that stopped the attempt."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port = url_parts(url)
        address = target_resolve(host, port)
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
    connection = _connection(scheme, host, port, address, timeout)
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        answer = response.read(ERROR_MAX_CHARS).decode(errors="replace")
    except TimeoutError:
        return AttemptResult(None, elapsed(), f"timed out after {timeout:.0f} s")
    except (OSError, http.client.HTTPException) as failure:
        return AttemptResult(None, elapsed(), f"{type(failure).__name__}: {failure}"[:ERROR_MAX_CHARS])
    finally:
        connection.close()
    status = response.status
    problem = "" if 200 <= status < 300 else f"HTTP {status}: {answer}"[:ERROR_MAX_CHARS]
    return AttemptResult(status, elapsed(), problem)
