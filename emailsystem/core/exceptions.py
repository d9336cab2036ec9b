"""The project's one business-rule exception and the API's exception handler."""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, InternalError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# What a client should wait before retrying while the database is unreachable: about as long
# as a PostgreSQL restart or failover takes.
DATABASE_RETRY_AFTER_SECONDS = 5
# SQLSTATE read_only_sql_transaction: a write reached a server in recovery (a standby, or a
# primary being demoted in a switchover), which psycopg2 raises as an InternalError.
READ_ONLY_SQLSTATE = "25006"


class ApplicationError(Exception):
    """A business rule refused the request. Services raise it; the API answers `status_code`.

    `field` names the request field at fault, so clients get the same shape as a
    serializer error ({"field": ["message"]}); without it the answer is {"detail": message}.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code

    def headers(self) -> dict[str, str]:
        return {}


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ForbiddenError(ApplicationError):
    """The caller may not do this (a rule about who, not about the input): 403."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "forbidden"


class QuotaExceededError(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


def request_too_large_response(limit: int) -> dict[str, Any]:
    return {"detail": f"Request body is larger than the limit of {limit} bytes.", "code": "request_too_large"}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ApplicationError, oversized bodies and an unreachable database.

    A database that refuses connections, or only reads during a failover, is a 503 with
    Retry-After and a JSON body, not Django's HTML 500 page: the request changed nothing, and
    the client should retry.
    """
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
        body["code"] = exc.code
        return Response(body, status=exc.status_code, headers=exc.headers())
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        return Response(
            request_too_large_response(settings.REQUEST_MAX_BYTES), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if database_unavailable(exc):
        return Response(
            {"detail": "The database is unavailable; try again shortly.", "code": "database_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)


def database_unavailable(exc: Exception) -> bool:
    """The database cannot take this request now: unreachable, the connection lost, or (during a
    failover) a server that only reads. The request changed nothing; a retry may succeed."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, InternalError) and getattr(exc.__cause__, "pgcode", None) == READ_ONLY_SQLSTATE
