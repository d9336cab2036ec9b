"""A TCP forwarder whose connections a test cuts, as a server restart or a network fault would,
while the server behind it keeps running for everyone else (RabbitMQ in the sender's and the
relay's tests, the fake SendGrid in the fault injection)."""

import contextlib
import socket
import threading
from typing import Any


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 whose connections a test can cut, and whose port it can close and open again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self.listen()

    def listen(self) -> None:
        """Accept connections on the proxy's port (the same one each time), forwarding each to the target."""
        with self._lock:
            if self._listener is not None:
                return
            # create_server sets SO_REUSEADDR: the port is free again at once after refuse().
            self._listener = listener = socket.create_server(("127.0.0.1", self.port))
            self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="tcp-proxy").start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refuse() or close() shut the listener
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # refused meanwhile: this connection goes too
                    client.close()
                    upstream.close()
                    continue
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                # Shut down before closing: close() alone does not end the other direction's
                # recv() on another thread, so the broker would not see the connection go.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        """Drop every open connection at once (new connections are still accepted)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def refuse(self) -> None:
        """Close the port and drop every open connection: new connections are refused until listen()."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the port listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.cut()

    def close(self) -> None:
        self.refuse()
