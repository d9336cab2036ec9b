"""A keep-alive transport under the `sendgrid` library's HTTP client.

python_http_client (which `sendgrid` uses) opens a new TCP (and TLS) connection for every
request through urllib; at hundreds of requests per second that is a third of the sender's
time. Its POST also builds a urllib opener and Request per call (a sixth of the sender's CPU
in a drain of one-recipient messages, most of it the proxy handler reading the environment).
`KeepAliveClient.post` sends the library's request (its URL, headers with auth and user agent,
JSON body) over one persistent `http.client` connection per thread, and answers with the
library's Response and HTTPError types.

It never retries by itself, so it adds no duplicate: a failure surfaces exactly as with
urllib and the sender's classification decides. A connection the server closed while idle
is noticed before reuse (the socket reads as ready at EOF) and replaced. Where the
environment sets a proxy for SendGrid's host (HTTPS_PROXY, read when the client is made),
requests go through the library's urllib path, which honours it.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import select
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import python_http_client
from python_http_client.exceptions import handle_error

# python_http_client's logger: its request lines, which `post` writes in its place.
_library_log = logging.getLogger("python_http_client.client")


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
        self._url: str = self._build_url(None)  # type: ignore[operator]  # private, not in the stubs
        parts = urlsplit(self._url)
        self._proxied = _proxied(parts.scheme, parts.hostname or "")

    def post(self, request_body: Any = None, timeout: float | None = None) -> python_http_client.client.Response:
        """The library's POST of `request_body` as JSON; raises its HTTPError types for 4xx and 5xx."""
        if self._proxied:
            # HTTP(S)_PROXY applies to this host: urllib honours it, a bare connection would not.
            # The stubs type the library's dynamic attributes as Client | Response; an HTTP verb is a request function.
            library_post = cast(Callable[..., Any], python_http_client.Client.__getattr__(self, "post"))
            return cast(python_http_client.client.Response, library_post(request_body=request_body, timeout=timeout))
        headers = dict(self.request_headers)
        headers.setdefault("Content-Type", "application/json")
        data = None if request_body is None else json.dumps(request_body).encode("utf-8")
        debug = _library_log.isEnabledFor(logging.DEBUG)
        if debug:  # the library's own request lines, on its logger (logs.redact_library_loggers masks the key)
            _library_log.debug("POST Request: %s", self._url)
            _library_log.debug("PAYLOAD: %s", data)
            _library_log.debug("HEADERS: %s", headers)
        answer = self._exchange(self._url, data, headers, timeout or self.timeout)
        response = python_http_client.client.Response(answer)  # type: ignore[arg-type]  # reads getcode, read, info
        if debug:
            _library_log.debug("POST Response: %s %s", response.status_code, response.body)
        return response

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

    def _exchange(self, url: str, data: bytes | None, headers: dict[str, str], timeout: float | None) -> _Answer:
        """One POST on this thread's connection: the answer, or the library's HTTPError for 4xx and 5xx."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(url, timeout)
        try:
            connection.request("POST", path, body=data, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except BaseException:
            self._drop()  # its state is unknown; the next request gets a fresh connection
            raise
        if response.will_close:
            self._drop()
        if response.status >= 400:
            error = urllib.error.HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(body))
            raised = handle_error(error)
            raised.__cause__ = None
            raise raised
        return _Answer(response.status, body, response.msg)
