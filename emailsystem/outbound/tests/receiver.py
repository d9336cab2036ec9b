"""A real HTTP server on 127.0.0.1 that receives outbound webhooks in the test process.

Each instance records every request (headers and body) and answers from a script: a list of
status codes used in turn (the last one repeats), or `hang` to hold every request until the
test releases it (or 30 s pass); `drop_idle` closes each connection after its answer.
"""

import http.server
import json
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the sender's end of the connection: one port, one connection

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a sender opening its connections at once overflowed it,
    # and each dropped SYN came back after the kernel's 1 s (then 3 s) retransmission timeout.
    request_queue_size = 128


class Receiver:
    def __init__(self, statuses: list[int] | None = None, *, hang: bool = False, drop_idle: bool = False) -> None:
        self.statuses = list(statuses or [200])
        self.hang = hang
        self.drop_idle = drop_idle
        self.release = threading.Event()
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as most receivers answer
            # The status line and headers, then the body, are two writes: without this each kept
            # connection's answer waits for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: no request to answer
                    self.close_connection = True
                    return
                with owner.arrived:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    owner.received.append(Received(self.path, headers, body, self.client_address[1]))
                    index = len(owner.received) - 1
                    owner.arrived.notify_all()
                if owner.hang:
                    owner.release.wait(30)
                status = owner.statuses[min(index, len(owner.statuses) - 1)]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                # Closed without a `Connection: close`, as a server dropping idle connections does.
                self.close_connection = owner.drop_idle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have arrived; fails past `timeout`."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} webhooks arrived within {timeout}s")
            return list(self.received[:count])

    def events(self) -> list[tuple[str, str, str]]:
        """(type, recipient, webhook-id) of every request so far."""
        with self.arrived:
            return [(r.json["type"], r.json["data"]["recipient"], r.headers["webhook-id"]) for r in self.received]
