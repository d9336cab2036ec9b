"""Readiness checks: what must answer before this process should receive traffic."""

from collections.abc import Callable

from django.db import DatabaseError, connection

ReadinessCheck = Callable[[], str | None]


def database_check() -> str | None:
    """None when a query succeeds, else the reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return f"database unreachable: {error.__class__.__name__}"
    return None


# Other apps append here (the broker check lives with the publisher).
READINESS_CHECKS: list[ReadinessCheck] = [database_check]


def readiness_failures() -> list[str]:
    return [reason for check in READINESS_CHECKS if (reason := check())]
