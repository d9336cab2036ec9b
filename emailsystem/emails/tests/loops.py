"""A worker's loop (the results consumer, the relay, the webhooks worker) run on a thread of the test process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from django.db import connections

# How long a stopped loop may take to end.
STOP_SECONDS = 15


@contextlib.contextmanager
def loop_running(loop: Callable[[threading.Event], None]) -> Iterator[threading.Thread]:
    """Run `loop(stop)` on a thread, as run_until_signalled would; on leaving, set `stop` and wait
    for the loop to end, and fail if it has not within STOP_SECONDS. The thread's own database
    connections are closed when it ends, so the test database can be dropped."""
    stop = threading.Event()

    def run() -> None:
        try:
            loop(stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(STOP_SECONDS)
    assert not thread.is_alive(), "the loop did not stop"
