"""HTTP clients that take one SendGrid v3 mail/send payload and return a `Response`.

`client.send(payload)` returns a `Response` for any HTTP answer (2xx or not) and raises
`TransportError` when there is no answer (timeout, refused or dropped connection). Both
clients are safe to call from many threads at once.
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import python_http_client
import sendgrid

from emailsender.logs import redact_library_loggers
from emailsender.mime import payload_mime
from emailsender.options import Attachment, attachments_from_payload, is_sandbox
from emailsender.settings import Settings
from emailsender.transport import KeepAliveClient

# Whatever process sends through SendGrid (sender, web in embedded mode) logs no API key.
redact_library_loggers()


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-cased
    body: bytes = b""
    # Which provider answered (providers.PROVIDER_NAMES); empty for a bare client.
    provider: str = ""
    # Deliveries this answer refused for good (delivery id -> reason); the others were accepted.
    refused: Mapping[int, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class TransportError(Exception):
    """No answer: `kind` is "timeout", "connection", or "deferred" (an SMTP relay's 4xx reply,
    which says to try again later and says nothing against the relay)."""

    provider = ""  # which provider gave no answer, set by providers.ProviderChain

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Client(Protocol):
    def send(self, payload: dict[str, Any]) -> Response: ...


def _lower_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


class SendGridClient:
    """Calls SendGrid's v3 mail/send through the `sendgrid` library with a timeout on every call.

    The library builds the request (URL, auth and user-agent headers, JSON body); it travels
    over a keep-alive connection per thread (transport.py) instead of a new connection each
    time. One library client per thread: python_http_client shares and mutates its
    `request_headers` dict on every call (`setdefault("Content-Type", ...)`), which is not safe
    while another thread builds a request from the same dict.
    """

    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com", timeout: float = 10.0) -> None:
        self._api_key = api_key
        self._host = host.rstrip("/")
        self._timeout = timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SendGridClient(host={self._host!r}, timeout={self._timeout!r}, api_key='***')"

    def _library_client(self) -> KeepAliveClient:
        client = getattr(self._local, "client", None)
        if client is None:
            library = sendgrid.SendGridAPIClient(api_key=self._api_key, host=self._host).client
            client = KeepAliveClient(
                host=library.host,
                request_headers=dict(library.request_headers),
                version=3,
                url_path=["mail", "send"],
                timeout=self._timeout,
            )
            self._local.client = client
        return client

    def send(self, payload: dict[str, Any]) -> Response:
        try:
            answer = self._library_client().post(request_body=payload, timeout=self._timeout)
        except python_http_client.exceptions.HTTPError as exc:
            body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
            return Response(status_code=int(exc.status_code), headers=_lower_headers(exc.headers), body=body)
        except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
            raise TransportError("timeout", f"no answer within {self._timeout:g}s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TransportError("timeout", f"no answer within {self._timeout:g}s") from exc
            raise TransportError("connection", str(exc.reason)[:200]) from exc
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, TLS, bad status line
            raise TransportError("connection", f"{type(exc).__name__}: {exc}"[:200]) from exc
        return Response(status_code=int(answer.status_code), headers=_lower_headers(answer.headers), body=answer.body)


class EmlFolderClient:
    """Writes one RFC 5322 .eml file per personalization (that is, per recipient) into `folder`,
    built by mime.build_mime.

    One file per recipient shows exactly what each recipient would receive, and the file name
    carries the email and delivery ids. Used in development and in embedded mode, when
    SENDGRID_API_KEY is unset. Answers 202 like SendGrid.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"EmlFolderClient(folder={str(self.folder)!r})"

    def send(self, payload: dict[str, Any]) -> Response:
        if is_sandbox(payload):
            return Response(status_code=200)  # SendGrid's sandbox answer: accepted, nothing delivered or written
        attachments = attachments_from_payload(payload)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            batch = uuid.uuid4().hex[:12]
            for personalization in payload["personalizations"]:
                self._write(payload, personalization, batch, attachments)
        except OSError as exc:
            # A full or read-only disk is the .eml folder's version of SendGrid being down.
            raise TransportError("connection", f".eml write failed: {exc}") from exc
        return Response(status_code=202, headers={"x-message-id": f"outbox-{batch}"})

    def _write(
        self, payload: dict[str, Any], personalization: dict[str, Any], batch: str, attachments: tuple[Attachment, ...]
    ) -> None:
        args = personalization.get("custom_args", {})
        message = payload_mime(payload, personalization, domain="outbox.invalid", attachments=attachments)

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-e{args.get('email_id', 'x')}-d{args.get('delivery_id', 'x')}-{batch}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(message)
        temporary.replace(self.folder / name)  # readers never see a half-written file


def client_from_settings(settings: Settings) -> SendGridClient | EmlFolderClient:
    """SendGrid when SENDGRID_API_KEY is set, otherwise .eml files in OUTBOX_DIR."""
    if settings.sendgrid_api_key:
        return SendGridClient(settings.sendgrid_api_key, settings.sendgrid_api_host, settings.sendgrid_timeout_seconds)
    return EmlFolderClient(settings.outbox_dir)
