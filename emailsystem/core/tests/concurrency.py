"""Releasing several threads at once, for tests that prove something holds under concurrency."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

# Generous: the point is that the threads start together, not how fast a loaded machine gets
# them there. A thread still waiting after this raises BrokenBarrierError and fails the test.
BARRIER_SECONDS = 30
JOIN_SECONDS = 60


def run_concurrently(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` in `count` threads released together; their results, in thread order.

    Each thread closes its own database connection when done (Django opens one per thread
    that touches the ORM); threads that only make HTTP requests have none to close.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=BARRIER_SECONDS)
            results[index] = action(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    return results
