"""A lean SendGrid stand-in for drains whose figure is the sender's own.

    python -m emailsender.testing.sendgrid_sink --port 8025

The fake SendGrid (fake_sendgrid.py) answers from a thread per connection, checks every request
against SendGrid's contract and keeps each one: at 1,500 requests per second that took 39 % of
a core, on the cores the sender runs on, which SendGrid's servers never share. The sink answers
mail/send from one asyncio thread: 202 with an X-Message-Id for a request with a bearer key and a
JSON body whose personalizations each have a `to`, 401 or 400 otherwise. It counts the requests
and their delivery ids (`custom_args.delivery_id`), so that a drain can check that every delivery
arrived exactly once. No latency, no forced errors, no events: the fake has those.

Routes: POST /v3/mail/send; GET /_fake/health; GET /_fake/requests?summary=1, answering
{"total": requests accepted, "deliveries": distinct delivery ids, "repeated": ids seen again};
POST /_fake/reset; POST /_fake/mode, which accepts {"latency_ms": 0} only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from emailsender.testing.sendgrid_contract import MAIL_SEND_PATH, MAX_BODY_BYTES, bearer_key_present

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Too Large"}


@dataclass
class Counts:
    total: int = 0
    repeated: int = 0
    delivery_ids: set[int] = field(default_factory=set)

    def summary(self) -> dict[str, int]:
        return {"total": self.total, "deliveries": len(self.delivery_ids), "repeated": self.repeated}


def _delivery_ids(payload: Any) -> list[int] | None:
    """The delivery ids of a mail/send body, or None when it is not one (no personalizations, one without `to`)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("personalizations"), list):
        return None
    ids = []
    for item in payload["personalizations"]:
        if not isinstance(item, dict) or not item.get("to"):
            return None
        args = item.get("custom_args")
        if isinstance(args, dict) and str(args.get("delivery_id", "")).isdigit():
            ids.append(int(args["delivery_id"]))
    return ids or None


class Sink:
    def __init__(self) -> None:
        self.counts = Counts()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | None]:
        """(status, JSON answer or None) for one request."""
        if method == "POST" and path == MAIL_SEND_PATH:
            return self._mail_send(headers, body)
        if method == "GET" and path == "/_fake/health":
            return 200, {"ok": True}
        if method == "GET" and path.startswith("/_fake/requests"):
            return 200, self.counts.summary()
        if method == "POST" and path == "/_fake/reset":
            self.counts = Counts()
            return 200, {"ok": True}
        if method == "POST" and path == "/_fake/mode":
            try:
                mode = json.loads(body or b"{}")
            except ValueError:
                mode = None
            if mode not in ({}, {"latency_ms": 0}):
                return 400, {"error": 'the sink answers at once: only {"latency_ms": 0}'}
            return 200, {"latency_ms": 0}
        return 404, {"errors": [{"message": "not found", "field": None}]}

    def _mail_send(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | None]:
        if not bearer_key_present(headers.get("authorization", "")):
            return 401, {"errors": [{"message": "no bearer key", "field": None}]}
        try:
            ids = _delivery_ids(json.loads(body))
        except ValueError:
            ids = None
        if ids is None:
            return 400, {"errors": [{"message": "not a mail/send body with recipients", "field": None}]}
        self.counts.total += 1
        for delivery_id in ids:
            if delivery_id in self.counts.delivery_ids:
                self.counts.repeated += 1
            self.counts.delivery_ids.add(delivery_id)
        return 202, None

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one kept-alive connection until the client closes it or asks to."""
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers = {}
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    writer.write(_response(413, None))
                    break
                body = await reader.readexactly(length) if length else b""
                writer.write(_response(*self.answer(method, target, headers, body)))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # the client went away, or sent something that is not HTTP: drop the connection
        finally:
            writer.close()


def _response(status: int, answer: dict[str, Any] | None) -> bytes:
    data = b"" if answer is None else json.dumps(answer).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Length: {len(data)}"]
    if status == 202:
        lines.append(f"X-Message-Id: {uuid.uuid4().hex[:22]}")
    if data:
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def serve(host: str, port: int) -> None:
    sink = Sink()
    server = await asyncio.start_server(sink.serve_connection, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emailsender.testing.sendgrid_sink", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
