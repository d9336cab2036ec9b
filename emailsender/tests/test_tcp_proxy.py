"""TcpProxy: forwards, cuts, and closes and opens its port again on the same number."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from emailsender.testing.tcp_proxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends back whatever it reads; its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(1024):
                connection.sendall(data)

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()


def round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"ping")
        return client.recv(4)


def test_refuse_closes_the_port_and_its_connections_and_listen_opens_the_same_port(echo):
    proxy = TcpProxy("127.0.0.1", echo)
    try:
        assert round_trip(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"ping")
        assert held.recv(4) == b"ping"

        proxy.refuse()
        assert held.recv(4) == b""  # the open connection is gone
        held.close()
        with pytest.raises(ConnectionRefusedError):
            round_trip(proxy.port)

        port = proxy.port
        proxy.listen()
        assert proxy.port == port and round_trip(proxy.port) == b"ping"
    finally:
        proxy.close()
