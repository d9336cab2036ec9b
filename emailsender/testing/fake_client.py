"""Calling the fake SendGrid (or any local JSON endpoint) over HTTP, as another process would."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from emailsender.testing.fake_sendgrid import FakeSendGrid


def call(
    url: str,
    data: Any = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 5,
) -> tuple[int, http.client.HTTPMessage, Any]:
    """(status, headers, parsed JSON body or None) for one HTTP request; POST when `data` is given."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in {url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        body = json.dumps(data).encode() if data is not None else None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method or ("POST" if body is not None else "GET"), target, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, response.headers, json.loads(raw) if raw else None
    finally:
        connection.close()


def mail_send(fake: FakeSendGrid, payload: Any, key: str | None = "SG.key") -> tuple[int, http.client.HTTPMessage, Any]:
    """POST `payload` to the fake's /v3/mail/send with `key` as the Bearer key (None: no Authorization)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return call(f"{fake.url}/v3/mail/send", payload, headers)
