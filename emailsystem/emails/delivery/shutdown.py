"""Running a worker process's loop until Kubernetes (or Ctrl-C) asks it to stop."""

import logging
import signal
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


def run_until_signalled(loop: Callable[[threading.Event], None], name: str) -> None:
    """Run `loop(stop)` until SIGTERM or SIGINT; the handler only sets the flag."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("%s: signal %s, stopping", name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    loop(stop)
    logger.info("%s: stopped after %.0fs", name, time.monotonic() - started)
