"""A keep-alive transport under the `sendgrid` library's HTTP client.

python_http_client (which `sendgrid` uses) opens a new TCP (and TLS) connection for every
request through urllib; at hundreds of requests per second that is a third of the sender's
time. It routes every request through `Client._make_request`, which this subclass replaces
with one persistent `http.client` connection per thread. Everything else stays the library's:
the URL, the headers (auth, user agent), the JSON body and its HTTPError types.

It never retries by itself, so it adds no duplicate: a failure surfaces exactly as with
urllib and the sender's classification decides. A connection the server closed while idle
is noticed before reuse (the socket reads as ready at EOF) and replaced. Where the
environment sets a proxy for SendGrid's host (HTTPS_PROXY), requests go through urllib as
before, which honours it.
"""

from __future__ import annotations

import http.client
import io
import select
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from python_http_client.exceptions import handle_error


class _Answer:
    """The part of a urllib response python_http_client.Response reads."""

    def __init__(self, status: int, body: bytes, headers: http.client.HTTPMessage) -> None:
        self._status, self._body, self._headers = status, body, headers

    def getcode(self) -> int:
        return self._status

    def read(self) -> bytes:
        return self._body

    def info(self) -> http.client.HTTPMessage:
        return self._headers


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """True when the idle socket has something to read: EOF (the server closed it) or stray data."""
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _proxied(scheme: str, hostname: str) -> bool:
    """True when the environment routes this URL through a proxy (HTTPS_PROXY, not NO_PROXY)."""
    return scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(hostname)


class KeepAliveClient(python_http_client.Client):
    """python_http_client.Client for one endpoint, with a persistent connection per thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self.connections_opened = 0  # for tests and logs: how often a new connection was needed

    def _connection(self, url: str, timeout: float | None) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and _closed_by_peer(connection):
            connection.close()
            connection = None
        if connection is None:
            parts = urlsplit(url)
            if parts.hostname is None:
                raise ValueError(f"no host in {url!r}")
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.hostname, parts.port, timeout=timeout)
            self._local.connection = connection
            self.connections_opened += 1
        elif connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.timeout = timeout
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def _make_request(self, opener: Any, request: urllib.request.Request, timeout: float | None = None) -> Any:
        timeout = timeout or self.timeout
        parts = urlsplit(request.full_url)
        if _proxied(parts.scheme, parts.hostname or ""):
            # HTTP(S)_PROXY applies to this host: urllib honours it, a bare connection would not.
            return super()._make_request(opener, request, timeout)  # type: ignore[misc]  # private, not in the stubs
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(request.full_url, timeout)
        try:
            connection.request(request.get_method(), path, body=request.data, headers=dict(request.header_items()))
            response = connection.getresponse()
            body = response.read()
        except BaseException:
            self._drop()  # its state is unknown; the next request gets a fresh connection
            raise
        if response.will_close:
            self._drop()
        if response.status >= 400:
            error = urllib.error.HTTPError(
                request.full_url, response.status, response.reason, response.msg, io.BytesIO(body)
            )
            raised = handle_error(error)
            raised.__cause__ = None
            raise raised
        return _Answer(response.status, body, response.msg)
