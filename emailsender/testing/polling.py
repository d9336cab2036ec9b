"""Waiting on a condition with a deadline, for tests and harnesses (no sleep-then-assert)."""

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    what: str = "condition",
    diagnostics: Callable[[], str] | None = None,
) -> Any:
    """Poll until `predicate()` is truthy and return its value; past `timeout`, fail with `what`
    and, when given, `diagnostics()` (say, the last lines of the processes involved)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n{diagnostics()}" if diagnostics is not None else ""
            raise AssertionError(f"{what} not met within {timeout}s{details}")
        time.sleep(interval)
