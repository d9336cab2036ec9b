"""Readiness checks: what must answer before this process should receive traffic."""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connection


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    check: Callable[[], str | None]  # None when healthy, else the reason
    # A non-critical dependency is reported but keeps the process ready.
    critical: bool = True


def database_check() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return f"database unreachable: {error.__class__.__name__}"
    return None


def broker_check() -> str | None:
    from emailsystem.emails.delivery.broker import broker_readiness

    return broker_readiness()


READINESS_CHECKS = [
    ReadinessCheck("database", database_check),
    # Not critical: sends made while the broker is down wait in the outbox and the relay
    # publishes them later, so the API stays useful. Failing readiness here would turn a
    # broker outage into a full API outage.
    ReadinessCheck("broker", broker_check, critical=False),
]


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, {check name: "ok" or the reason})."""
    ready, report = True, {}
    for item in READINESS_CHECKS:
        reason = item.check()
        report[item.name] = reason or "ok"
        if reason and item.critical:
            ready = False
    return ready, report
