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


# Apps add theirs when they load (AppConfig.ready), so that core needs to know no app.
READINESS_CHECKS = [ReadinessCheck("database", database_check)]


def readiness_check_add(check: ReadinessCheck) -> None:
    if all(existing.name != check.name for existing in READINESS_CHECKS):
        READINESS_CHECKS.append(check)


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, {check name: "ok" or the reason})."""
    ready, report = True, {}
    for item in READINESS_CHECKS:
        reason = item.check()
        report[item.name] = reason or "ok"
        if reason and item.critical:
            ready = False
    return ready, report
